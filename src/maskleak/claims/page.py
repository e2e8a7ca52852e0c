"""The verdict page: the claims table as one self-contained HTML file (inline CSS, no
scripts), which the Snakemake report shows first. One block per claim, one line per model
and metric, the verdict colour-coded, the evidence sentence and the figures that show it.
Deterministic: the same table gives the same bytes (no timestamps)."""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from maskleak.claims.verdicts import (
    DOES_NOT_HOLD,
    HOLDS,
    INCONCLUSIVE,
    NOT_TESTABLE,
    PRACTICAL_REL,
    number,
    plain,
)
from maskleak.provenance import atomic_path

#: Verdict -> (background, text) colour of its cell.
COLOURS: dict[str, tuple[str, str]] = {
    HOLDS: ("#c8e6c9", "#1b5e20"),
    DOES_NOT_HOLD: ("#ffcdd2", "#b71c1c"),
    INCONCLUSIVE: ("#fff3c4", "#7a5c00"),
    NOT_TESTABLE: ("#e0e0e0", "#424242"),
}

METRIC_NAMES = {
    "mse_outside": "true MSE",
    "mse_outside_thesis": "study's wrapped uint8 number",
}

_CSS = """
body { font-family: system-ui, sans-serif; font-size: 14px; margin: 1em; color: #222; }
table { border-collapse: collapse; width: 100%; }
th, td { border: 1px solid #bbb; padding: 4px 6px; vertical-align: top; text-align: left; }
th { background: #f0f0f0; }
td.claim { font-weight: 600; background: #fafafa; }
td.value { white-space: nowrap; font-variant-numeric: tabular-nums; }
td.verdict { font-weight: 600; white-space: nowrap; }
p.rules { max-width: 60em; }
span.key { padding: 1px 6px; border-radius: 3px; font-weight: 600; }
"""


def _escape(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _value_cell(row: Mapping[str, Any]) -> str:
    value = float(row["value"])
    if math.isnan(value):
        return "–"
    text = number(value)
    low, high = float(row["ci_low"]), float(row["ci_high"])
    if not (math.isnan(low) or math.isnan(high)):
        text += f"<br><small>[{number(low)}, {number(high)}]</small>"
    unit = str(row["unit"])
    if unit:
        text += f"<br><small>{_escape(unit)}</small>"
    return text


def _verdict_cell(verdict: str) -> str:
    background, colour = COLOURS.get(verdict, ("#ffffff", "#000000"))
    return (
        f'<td class="verdict" style="background:{background};color:{colour}">'
        f"{_escape(verdict)}</td>"
    )


def _legend() -> str:
    keys = " ".join(
        f'<span class="key" style="background:{bg};color:{fg}">{_escape(v)}</span>'
        for v, (bg, fg) in COLOURS.items()
    )
    share = f"{plain(100 * PRACTICAL_REL)} %"
    return (
        f"<p>{keys}</p>"
        '<p class="rules">A claim <b>holds</b> when the 95 % interval of its statistic lies'
        " entirely on the claimed side of the reference value (0 for a change or slope, 1"
        " for a ratio, "
        f"{share} for the mask-size effect); it <b>does not hold</b> when the interval lies"
        " entirely on the other side, or inside the practical margin around the reference"
        f" (a change smaller than {share} of its level, or a ratio within"
        f" {plain(1 - PRACTICAL_REL)}–{plain(1 + PRACTICAL_REL)}); otherwise it is"
        " <b>inconclusive</b>. Intervals: hierarchical bootstrap, images drawn with"
        " replacement, then seeds within each drawn image. Each claim is tested with the"
        " true MSE and with the study's wrapped uint8 number, which is not an MSE (see"
        " metrics.columns.yaml).</p>"
    )


def page_html(table: pd.DataFrame, record: Mapping[str, Any], table_path: str) -> str:
    """The verdict page for a claims table (see the module docstring)."""
    lines = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>maskleak: verdicts on the study's claims</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>The study's claims, tested on this run</h1>",
        f"<p>From <code>{_escape(record.get('metrics', ''))}</code>;"
        f" {_escape(record.get('n_resamples', ''))} bootstrap resamples (seed"
        f" {_escape(record.get('bootstrap_seed', ''))}); every number is in"
        f" <code>{_escape(table_path)}</code>.</p>",
        _legend(),
        "<table><thead><tr><th>Claim</th><th>Model (pipeline)</th><th>Metric</th>"
        "<th>Statistic</th><th>Value<br><small>[95 % CI]</small></th><th>Verdict</th>"
        "<th>Evidence</th><th>Figures</th></tr></thead><tbody>",
    ]
    for number_, claim in table.groupby("claim", sort=True):
        first = True
        for _, row in claim.iterrows():
            cells = []
            if first:
                text = f"{int(number_)}. {row['claim_text']}"
                cells.append(f'<td class="claim" rowspan="{len(claim)}">{_escape(text)}</td>')
                first = False
            cells += [
                f"<td>{_escape(row['model'])} ({_escape(row['pipeline'])})</td>",
                f"<td>{_escape(METRIC_NAMES.get(row['metric'], row['metric']))}</td>",
                f"<td>{_escape(row['statistic'])}</td>",
                f'<td class="value">{_value_cell(row)}</td>',
                _verdict_cell(str(row["verdict"])),
                f"<td>{_escape(row['evidence'])}</td>",
                f"<td>{_escape(row['figures'])}</td>",
            ]
            lines.append("<tr>" + "".join(cells) + "</tr>")
    if table.empty:
        lines.append('<tr><td colspan="8">The metrics table has no rows.</td></tr>')
    lines += ["</tbody></table>", "</body></html>", ""]
    return "\n".join(lines)


def write_page(table: pd.DataFrame, path: Path, record: Mapping[str, Any], table_path: str) -> None:
    """Write :func:`page_html` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(page_html(table, record, table_path), encoding="utf-8")
