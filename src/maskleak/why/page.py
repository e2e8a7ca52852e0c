"""The report's "Why it leaks" page: the why table as one self-contained HTML file (inline
CSS, no scripts). Per model and pipeline, sentences that say which mechanism accounts for
which share of the outside error, what each variant changes (its gain and the seam it
leaves at the mask edge) and what each repeated pass changes, each with its 95 %
interval, then the numbers per strength and the figures that show them.
Deterministic: the same table gives the same bytes (no timestamps)."""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from maskleak.bootstrap import LEVEL
from maskleak.claims.verdicts import counted, number, percent, plain
from maskleak.provenance import atomic_path
from maskleak.why import columns as cols
from maskleak.why.labels import variant_label

_CSS = """
body { font-family: system-ui, sans-serif; font-size: 14px; margin: 1em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1em 0; }
th, td { border: 1px solid #bbb; padding: 3px 6px; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
td.value { white-space: nowrap; font-variant-numeric: tabular-nums; }
p { max-width: 60em; }
li { max-width: 60em; margin-bottom: 0.3em; }
"""

_LEVEL = f"{LEVEL * 100:g} % CI"


def _escape(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _bounds(row: Mapping[str, Any], fmt) -> str:
    low, high = float(row["ci_low"]), float(row["ci_high"])
    if math.isnan(low) or math.isnan(high):
        return "no interval: one image and one seed"
    return f"{_LEVEL} {fmt(low)} to {fmt(high)}"


def _share(value: float) -> str:
    return f"{number(100 * value)} %"


def _signed(value: float) -> str:
    return ("+" if value > 0 else "") + number(value)


def _excludes_zero(row: Mapping[str, Any]) -> bool | None:
    """Whether the interval lies on one side of 0 (None: no interval)."""
    low, high = float(row["ci_low"]), float(row["ci_high"])
    if math.isnan(low) or math.isnan(high):
        return None
    return low > 0 or high < 0


def _strength_text(strength: float, n_strengths: int) -> str:
    if not math.isnan(strength):
        return f"strength {plain(strength)}"
    return "the only strength" if n_strengths == 1 else f"the {n_strengths} strengths pooled"


def _pooled(rows: pd.DataFrame) -> pd.DataFrame:
    return rows.loc[rows["strength"].isna()]


def _attribution_sentence(rows: pd.DataFrame, model: str, pipeline: str, n_strengths: int) -> str:
    """Which part accounts for which share, pooled over strengths, largest first."""
    pooled = _pooled(rows).sort_values("value", ascending=False, kind="stable")
    if pooled.empty or pooled["value"].isna().all():
        return (
            f"<p>{_escape(model)} ({_escape(pipeline)} pipeline): its baseline has no outside"
            " error to split (mean mse_outside 0, or no rows).</p>"
        )
    first = pooled.iloc[0]
    parts = [
        f"{cols.PART_NAMES[r['part']]}{' accounts' if i == 0 else ''} for"
        f" <b>{_share(r['value'])}</b> ({_bounds(r, _share)})"
        for i, (_, r) in enumerate(pooled.iterrows())
    ]
    listed = ", ".join(parts[:-1]) + f" and {parts[-1]}" if len(parts) > 1 else parts[0]
    return (
        f"<p>Of the outside error of <b>{_escape(model)}</b> ({_escape(pipeline)} pipeline,"
        f" as it ships, pass 1, {_strength_text(math.nan, n_strengths)}: mean mse_outside"
        f" {number(first['reference_mean'])} (8-bit level)² over"
        f" {counted(int(first['n_images']), 'image')} and"
        f" {counted(int(first['n_seeds']), 'seed')}),"
        f" {listed}. The largest share is <b>{cols.PART_NAMES[first['part']]}</b>.</p>"
    )


def _attribution_table(rows: pd.DataFrame, n_strengths: int) -> str:
    lines = [
        "<table><thead><tr><th>strength</th><th>mean mse_outside</th>"
        + "".join(f"<th>share: {cols.PART_NAMES[p]}</th>" for p in cols.PARTS)
        + "</tr></thead><tbody>"
    ]
    for strength, at in rows.groupby("strength", sort=True, dropna=False):
        cells = [
            f"<td>{_escape(_strength_text(float(strength), n_strengths))}</td>",
            f'<td class="value">{number(float(at["reference_mean"].iloc[0]))}</td>',
        ]
        for part in cols.PARTS:
            row = at.loc[at["part"] == part].iloc[0]
            value = "–" if math.isnan(row["value"]) else _share(row["value"])
            cells.append(f'<td class="value">{value}<br><small>{_bounds(row, _share)}</small></td>')
        lines.append("<tr>" + "".join(cells) + "</tr>")
    lines.append("</tbody></table>")
    return "\n".join(lines)


def _change_sentence(
    change: Mapping[str, Any], relative: Mapping[str, Any], what: str, reference: str, at: str
) -> str:
    """``<what> by +1.2 (8-bit level)² (95 % CI …), +12 % (…) of <reference> 10.0 (<at>);
    the interval excludes 0.``"""
    if change["value"] == 0 and change["ci_low"] == 0 and change["ci_high"] == 0:
        same = f"inpainting for inpainting, the same outside error as {reference}"
        return f"{what} by exactly 0 ({at}): {same}."
    side = _excludes_zero(change)
    verdict = {
        True: "the interval excludes 0",
        False: "the interval includes 0: no change this run can tell apart from none",
        None: "nothing to resample",
    }[side]
    rel = (
        f"{percent(relative['value'])} ({_bounds(relative, percent)})"
        if not math.isnan(relative["value"])
        else "no relative change (the reference is 0)"
    )
    return (
        f"{what} by <b>{_signed(change['value'])}</b> (8-bit level)²"
        f" ({_bounds(change, _signed)}), {rel} of {reference} {number(change['reference_mean'])}"
        f" ({at}); {verdict}."
    )


def _seam_sentence(seam: Mapping[str, Any] | None) -> str:
    """`` At the mask edge its seam: seam_step_excess by +7 levels (95 % CI …), from the
    baseline's 0.4 to 7.4; the interval excludes 0.`` ("" without a seam_cost row)."""
    if seam is None:
        return ""
    if math.isnan(seam["value"]):
        return " At the mask edge: no seam measure (no pixel pair across the edge)."
    what = "At the mask edge, the step across it beyond the original's own (seam_step_excess)"
    if seam["value"] == 0 and seam["ci_low"] == 0 and seam["ci_high"] == 0:
        return f" {what} changes by exactly 0: no seam."
    verdict = {
        True: "the interval excludes 0",
        False: "the interval includes 0",
        None: "nothing to resample",
    }[_excludes_zero(seam)]
    sharper = "a seam" if seam["value"] > 0 else "no seam"
    return (
        f" {what} changes by <b>{_signed(seam['value'])}</b> 8-bit levels"
        f" ({_bounds(seam, _signed)}), from the baseline's {number(seam['reference_mean'])}"
        f" to {number(seam['compared_mean'])}: {sharper}; {verdict}."
    )


def _changes_list(
    rows: pd.DataFrame, n_strengths: int, growth: bool, seams: pd.DataFrame | None = None
) -> str:
    """One item per variant (pooled strengths); for pass growth, per variant its last
    pass. ``seams``: the seam_cost rows, whose pooled change follows each variant's."""
    items = []
    pooled = _pooled(rows)
    seam_of = {} if seams is None else {str(r["variant"]): r for _, r in _pooled(seams).iterrows()}
    for variant, mine in pooled.groupby("variant", sort=False):
        if growth:
            mine = mine.loc[mine["pass"] == mine["pass"].max()]
        change = mine.loc[mine["quantity"] == cols.CHANGE].iloc[0]
        relative = mine.loc[mine["quantity"] == cols.RELATIVE_CHANGE].iloc[0]
        label = _escape(variant_label(str(variant), str(change["changes"])))
        if growth:
            what = (
                f"<b>{label}</b>: from pass 1 to pass {int(change['pass'])} the outside error grows"
            )
            ref = "pass 1's"
        else:
            what = f"<b>{label}</b> changes the outside error against the baseline"
            ref = "the baseline's"
        at = _strength_text(math.nan, n_strengths)
        seam = _seam_sentence(seam_of.get(str(variant)))
        items.append(f"<li>{_change_sentence(change, relative, what, ref, at)}{seam}</li>")
    return "<ul>" + "".join(items) + "</ul>" if items else "<p>None in this run.</p>"


def _seam_cell(seams: pd.DataFrame, variant: str, strength: float) -> str:
    """The seam_cost change of ``variant`` at ``strength`` (NaN: pooled) as a cell."""
    same = seams["variant"] == variant
    same &= seams["strength"].isna() if math.isnan(strength) else seams["strength"] == strength
    found = seams.loc[same]
    if found.empty or math.isnan(found.iloc[0]["value"]):
        return '<td class="value">–</td>'
    seam = found.iloc[0]
    return (
        f'<td class="value">{_signed(seam["value"])}<br>'
        f"<small>{_bounds(seam, _signed)}</small></td>"
    )


def _changes_table(rows: pd.DataFrame, n_strengths: int, seams: pd.DataFrame | None = None) -> str:
    """The changes per variant, pass and strength; with ``seams`` (seam_cost rows) a
    column of the seam_step_excess change beside them."""
    seam_head = "" if seams is None else "<th>seam: seam_step_excess change (8-bit level)</th>"
    lines = [
        "<table><thead><tr><th>variant</th><th>pass</th><th>strength</th>"
        "<th>reference mse_outside</th><th>change ((8-bit level)²)</th>"
        f"<th>relative change</th>{seam_head}</tr></thead><tbody>"
    ]
    keys = ["variant", "pass", "strength"]
    for (variant, pass_, strength), at in rows.groupby(keys, sort=False, dropna=False):
        change = at.loc[at["quantity"] == cols.CHANGE].iloc[0]
        relative = at.loc[at["quantity"] == cols.RELATIVE_CHANGE].iloc[0]
        rel = "–" if math.isnan(relative["value"]) else percent(relative["value"])
        seam_cell = "" if seams is None else _seam_cell(seams, str(variant), float(strength))
        lines.append(
            f"<tr><td>{_escape(variant_label(str(variant), str(change['changes'])))}</td>"
            f"<td>{int(pass_)}</td>"
            f"<td>{_escape(_strength_text(float(strength), n_strengths))}</td>"
            f'<td class="value">{number(change["reference_mean"])}</td>'
            f'<td class="value">{_signed(change["value"])}<br>'
            f"<small>{_bounds(change, _signed)}</small></td>"
            f'<td class="value">{rel}<br><small>{_bounds(relative, percent)}</small></td>'
            f"{seam_cell}</tr>"
        )
    lines.append("</tbody></table>")
    return "\n".join(lines)


def _figures(model: str, figures: Mapping[str, Sequence[tuple[str, str]]]) -> str:
    shown = figures.get(model) or []
    if not shown:
        return ""
    items = ", ".join(f"“{_escape(label)}” (<code>{_escape(path)}</code>)" for label, path in shown)
    return (
        f'<p>Figures of {_escape(model)} (report section "Why it leaks", {_escape(model)}):'
        f" {items}.</p>"
    )


def _model_section(
    rows: pd.DataFrame, model: str, pipeline: str, figures: Mapping[str, Any]
) -> list[str]:
    attribution = rows.loc[rows["analysis"] == cols.ATTRIBUTION]
    base = attribution.loc[attribution["variant"] == "baseline"]
    n_strengths = int(base["strength"].dropna().nunique())
    effects = rows.loc[rows["analysis"] == cols.VARIANT_EFFECT]
    seams = rows.loc[rows["analysis"] == cols.SEAM_COST]
    growth = rows.loc[rows["analysis"] == cols.PASS_GROWTH]
    return [
        f"<h2>{_escape(model)} ({_escape(pipeline)} pipeline)</h2>",
        _attribution_sentence(base, model, pipeline, n_strengths),
        _attribution_table(base, n_strengths),
        "<h3>Each switch against the baseline (pass 1)</h3>",
        _changes_list(effects, n_strengths, growth=False, seams=seams),
        _changes_table(effects, n_strengths, seams) if not effects.empty else "",
        "<h3>Repeated passes</h3>",
        _changes_list(growth, n_strengths, growth=True),
        _changes_table(growth, n_strengths) if not growth.empty else "",
        _figures(model, figures),
    ]


def page_html(
    table: pd.DataFrame,
    record: Mapping[str, Any],
    table_path: str,
    figures: Mapping[str, Sequence[tuple[str, str]]],
) -> str:
    """The "Why it leaks" page for a why table (see the module docstring). ``figures``:
    per model, (report label, path) of each figure that shows it."""
    lines = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>maskleak: why it leaks</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>Why it leaks: the outside error taken apart, on this run</h1>",
        "<p>Each outside-mask error (mse_outside) is split into three parts that sum to it:"
        " <b>the VAE floor</b> (what the image's own VAE encode/decode already costs),"
        " <b>the latent footprint</b> (the rest of the error on kept pixels whose latent"
        " cell the pipeline's mask repaints) and <b>pixels beyond the footprint</b> (the"
        " rest farther out: noise left on the kept latents, the decoder spreading repainted"
        " latents). A share is a ratio of means (seeds first, then images); every switch is"
        " compared with the baseline on the same image, mask, strength and seed, by its"
        " outside error and by the seam it leaves at the mask edge: <b>seam_step_excess</b>,"
        " the mean step across the edge (each inside pixel against its outside"
        " 4-neighbours, 8-bit levels) minus the original's own step there. Pasting the"
        " original back removes the outside error and leaves such a seam; its error"
        " against the original inside the edge cannot show it."
        f" Intervals: {_LEVEL}, hierarchical bootstrap (images drawn with replacement, then"
        f" seeds within each drawn image), {_escape(record.get('n_resamples', ''))}"
        f" resamples (seed {_escape(record.get('bootstrap_seed', ''))}).</p>",
        f"<p>From <code>{_escape(record.get('metrics', ''))}</code>, experiment"
        f" {cols.EXPERIMENT}; every number is in <code>{_escape(table_path)}</code>.</p>",
    ]
    if table.empty:
        lines.append(f"<p>The metrics table has no {cols.EXPERIMENT} rows.</p>")
    for (model, pipeline), rows in table.groupby(["model", "pipeline"], sort=True):
        lines += _model_section(rows, str(model), str(pipeline), figures)
    lines += ["</body></html>", ""]
    return "\n".join(line for line in lines if line)


def write_page(
    table: pd.DataFrame,
    path: str | Path,
    record: Mapping[str, Any],
    table_path: str,
    figures: Mapping[str, Sequence[tuple[str, str]]],
) -> None:
    """Write :func:`page_html` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(page_html(table, record, table_path, figures), encoding="utf-8")
