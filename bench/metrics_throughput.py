"""Throughput of the metrics stage beside the raw PNG decode rate of the same files.

Makes N real inpaintings with run_job (the tiny model, few steps, procedural landscapes
with their region maps, several mask radii and strengths, as the workflow would), then
times, on one thread:

* decode: ``read_pixels`` of every PNG the metrics stage reads: the N inpaintings plus
  each image's original, masks and region map (and, for reference, of the N
  inpaintings alone);
* per-image + merge: ``write_image_metrics`` over each inpaint manifest (one light job
  per model and image in the workflow, each writing a metrics part and a profile part)
  and then ``merge_metrics`` and ``merge_profile`` of the parts: decoding, arithmetic,
  Parquet writes and reads, all counted;
* the same without the decomposition (``decompose=False``: the metrics as they were
  before the outside error was taken apart, no profile), and the ratio of the two: what
  the new columns cost, as a multiple of the old metrics' time;
* write_metrics: the single job of all manifests, at 1 and 2 threads.

Rates are inpaintings per second of wall time, best of ``--repeats`` taken in turns
(each round times every variant once, so load from other processes hits all alike);
outputs are deleted before each timed run, as Snakemake deletes a job's outputs before
running it. "% of decode" is a rate over the decode rate of all the files that stage
reads (the share of the stage's time that decoding alone would take), and "% of inp.
decode" over decoding the N inpainted PNGs alone. Each per-image job and the merge also
have a fixed cost (manifest, Parquet write and read: a few ms each), so the share rises
with the inpaintings per manifest (N / 2 here) and with the image size.

    python bench/metrics_throughput.py --n 48 --size 640x416
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from _report import emit, quiet, spread, table, work_folder
from inpaint_throughput import build_model, parse_size

from maskleak.images import read_pixels
from maskleak.inpaint import Settings, Task, run_job
from maskleak.landscapes import generate_landscape, write_region_map
from maskleak.masks import write_masks
from maskleak.metrics import merge_metrics, merge_profile, write_image_metrics, write_metrics
from maskleak.provenance import save_png

# The default config's mask-size sweep: strength 0.1 at few steps runs no denoising step
# (a VAE round trip), so both of run_job's modes appear among the PNGs.
RADII = (20.0, 40.0, 60.0, 80.0)
STRENGTHS = (0.1, 0.5, 0.9)


def make_inpaintings(
    model_dir: Path,
    work: Path,
    n: int,
    width: int,
    height: int,
    steps: int = 4,
    n_images: int = 2,
    threads: int | None = 1,
) -> dict[str, Any]:
    """N inpaintings over ``n_images`` landscapes, one run_job (and manifest) per image,
    as the workflow's inpaint rule makes them. Returns the manifests, region maps and
    inpainted PNG paths, and the seconds it took."""
    started = time.perf_counter()
    per_image = math.ceil(n / n_images)
    manifests: list[str] = []
    region_maps: dict[str, str] = {}
    pngs: list[str] = []
    made = 0
    for i in range(n_images):
        name = f"landscape_{i + 1}"
        folder = work / name
        image_path = folder / "image.png"
        folder.mkdir(parents=True, exist_ok=True)
        rgb, _ = generate_landscape(i + 1, width, height)
        save_png(rgb, image_path, {"stage": "bench"})
        spec = {"kind": "procedural", "seed": i + 1, "width": width, "height": height}
        write_region_map(spec, image_path, folder / "regions.png")
        region_maps[name] = str(folder / "regions.png")
        mask_paths = [str(folder / f"mask-{int(r)}.png") for r in RADII]
        write_masks(str(image_path), {str(r): r for r in RADII}, mask_paths)

        tasks = _tasks(folder, mask_paths, min(per_image, n - made))
        made += len(tasks)
        manifest = str(folder / "manifest.json")
        settings = Settings(steps=steps, batch_size=1)
        run_job(
            str(model_dir),
            "tiny",
            str(image_path),
            name,
            tasks,
            settings,
            manifest,
            threads=threads,
        )
        manifests.append(manifest)
        pngs += [task.inpainted_path for task in tasks]
    return {
        "manifests": manifests,
        "region_maps": region_maps,
        "pngs": pngs,
        "make_s": time.perf_counter() - started,
    }


def _tasks(folder: Path, mask_paths: Sequence[str], count: int) -> list[Task]:
    """The first ``count`` of seeds x radii x strengths, seeds varying slowest."""
    seeds = range(math.ceil(count / (len(RADII) * len(STRENGTHS))))
    combos = itertools.product(seeds, zip(RADII, mask_paths, strict=True), STRENGTHS)
    return [
        Task("bench", radius, strength, seed, mask, str(folder / f"{seed}-{radius}-{strength}.png"))
        for seed, (radius, mask), strength in itertools.islice(combos, count)
    ]


def _inputs(manifests: Sequence[str]) -> dict[str, list[str]]:
    """The PNGs the metrics stage reads, by kind, as the manifests list them."""
    found: dict[str, dict[str, None]] = {"inpainted": {}, "image": {}, "mask": {}}
    for manifest in manifests:
        data = json.loads(Path(manifest).read_text())
        found["image"][data["image_path"]] = None
        for item in data["inpaintings"]:
            found["inpainted"][item["inpainted_path"]] = None
            found["mask"][item["mask_path"]] = None
    return {kind: list(paths) for kind, paths in found.items()}


def _best(
    runs: dict[str, Callable[[], Any]], repeats: int, outputs: dict[str, list[Path]]
) -> dict[str, dict[str, float]]:
    """Best and median wall time of each run, taken in turns (one of each per round) so
    that load from other processes falls on all of them alike. A run's ``outputs`` are
    deleted before it, untimed, as Snakemake deletes a job's outputs before running it
    (replacing an existing file can cost a flush that a fresh one does not)."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            for path in outputs.get(name, []):
                path.unlink(missing_ok=True)
            started = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - started)
    return {name: spread(values) for name, values in times.items()}


def _rate(row: dict[str, Any], count: int, decode: dict[str, Any] | None = None) -> None:
    row["pngs_per_s"] = round(count / row["best_s"], 1)
    if decode is not None:
        # Rate over the decode rate of the same inputs: 1.0 (100 %) would mean the stage
        # costs no more than decoding the PNGs it reads.
        row["ratio_to_decode"] = round(row["pngs_per_s"] / decode["all"]["pngs_per_s"], 3)
        row["pct_of_decode"] = round(100 * row["ratio_to_decode"], 1)
        inpainted_rate = decode["inpainted"]["pngs_per_s"]
        row["pct_of_inpainted_decode"] = round(100 * row["pngs_per_s"] / inpainted_rate, 1)


def measure(
    made: dict[str, Any], work: Path, threads: Sequence[int] = (1, 2), repeats: int = 3
) -> list[dict[str, Any]]:
    """Time decoding the stage's inputs, the per-image jobs plus merge (1 thread) and
    write_metrics at each thread count, best of ``repeats``; emits and returns one row
    each."""
    manifests: list[str] = made["manifests"]
    region_maps: dict[str, str] = made["region_maps"]
    files = _inputs(manifests)
    count = len(files["inpainted"])
    if count != len(made["pngs"]):
        raise RuntimeError(f"manifests list {count} inpaintings, {len(made['pngs'])} made")
    rgb = files["inpainted"] + files["image"]
    gray = files["mask"] + list(region_maps.values())

    def decode_all() -> None:
        for path in rgb:
            read_pixels(path, "RGB")
        for path in gray:
            read_pixels(path, "L")

    def decode_inpainted() -> None:
        for path in files["inpainted"]:
            read_pixels(path, "RGB")

    parts = [work / f"part-{i}.parquet" for i in range(len(manifests))]
    profiles = [work / f"profile-{i}.parquet" for i in range(len(manifests))]
    merged = work / "metrics-merged.parquet"
    merged_profile = work / "profile-merged.parquet"
    # The workflow knows each job's image (a wildcard), so its region map is no cost here.
    maps = [region_maps.get(json.loads(Path(m).read_text())["image"]) for m in manifests]
    split: dict[str, dict[str, float]] = {"jobs": {}, "bare": {}}

    def per_image(decompose: bool) -> None:
        best = split["jobs" if decompose else "bare"]
        started = time.perf_counter()
        for manifest, part, profile, region_map in zip(
            manifests, parts, profiles, maps, strict=True
        ):
            write_image_metrics(
                manifest,
                part,
                band_px=8,
                region_map=region_map,
                profile_path=profile if decompose else None,
                decompose=decompose,
            )
        merging = time.perf_counter()
        table_ = merge_metrics(parts, merged)
        if decompose:
            merge_profile(profiles, merged_profile)
        done = time.perf_counter()
        if len(table_) != count:
            raise RuntimeError(f"merge_metrics returned {len(table_)} rows for {count} PNGs")
        if not best or done - started < best["total"]:
            best.update(total=done - started, merge=done - merging)

    n_files = len(rgb) + len(gray)
    inputs = (
        f"{count} inpainted + {len(files['image'])} originals + "
        f"{len(files['mask'])} masks + {len(region_maps)} region maps"
    )
    runs: dict[str, Callable[[], Any]] = {
        "all": decode_all,
        "inpainted": decode_inpainted,
        "jobs": lambda: per_image(True),
        "bare": lambda: per_image(False),
    }
    outputs = {"jobs": [*parts, *profiles, merged, merged_profile], "bare": [*parts, merged]}
    counts: dict[int, list[int]] = {}
    for n_threads in threads:
        out = work / f"metrics-t{n_threads}.parquet"
        outputs[f"t{n_threads}"] = [out]
        lengths = counts.setdefault(n_threads, [])
        runs[f"t{n_threads}"] = lambda n=n_threads, o=out, got=lengths: got.append(
            len(write_metrics(manifests, o, 8, threads=n, region_maps=region_maps))
        )
    timed = _best(runs, repeats, outputs)

    decode = {
        "all": {"kind": "decode", "what": f"read_pixels: {inputs}", "files": n_files},
        "inpainted": {"kind": "decode", "what": "read_pixels: inpainted only", "files": count},
    }
    for name, row in decode.items():
        row |= {"threads": 1, "pngs": count} | timed[name]
        _rate(row, count)

    rows: list[dict[str, Any]] = [decode["all"], decode["inpainted"]]
    what = {
        "jobs": f"write_image_metrics x{len(manifests)} + merges",
        "bare": "the same without the decomposition (old metrics)",
    }
    for name in ("bare", "jobs"):
        jobs: dict[str, Any] = {
            "kind": "metrics",
            "what": what[name],
            "threads": 1,
            "pngs": count,
            "files": n_files,
        }
        jobs |= timed[name]
        jobs["merge_s"] = round(split[name]["merge"], 4)
        _rate(jobs, count, decode)
        rows.append(jobs)
    for n_threads in threads:
        if set(counts[n_threads]) != {count}:
            raise RuntimeError(f"write_metrics returned {counts[n_threads]} rows for {count}")
        row: dict[str, Any] = {"kind": "metrics", "what": "write_metrics", "threads": n_threads}
        row |= {"pngs": count, "files": n_files} | timed[f"t{n_threads}"]
        _rate(row, count, decode)
        rows.append(row)
    for row in rows:
        emit(row)
    emit(decomposition_cost(rows))
    return rows


def decomposition_cost(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """What the new columns cost, from :func:`measure`'s per-image rows with and without
    the decomposition: ms per inpainting, and as a multiple of the old metrics' time
    (the target is at most 2)."""
    old, new = (
        next(r for r in rows if r["what"].startswith(start))
        for start in ("the same", "write_image")
    )
    count = new["pngs"]
    extra = new["best_s"] - old["best_s"]
    return {
        "kind": "decomposition_cost",
        "what": "new columns' time / old metrics' time",
        "pngs": count,
        "old_ms_per_inpainting": round(1000 * old["best_s"] / count, 3),
        "new_columns_ms_per_inpainting": round(1000 * extra / count, 3),
        "cost_ratio": round(extra / old["best_s"], 2),
    }


METRICS_COLUMNS = [
    ("what", "what"),
    ("threads", "threads"),
    ("pngs", "inpaintings"),
    ("files", "PNGs read"),
    ("best_s", "best s"),
    ("median_s", "median s"),
    ("merge_s", "merge s"),
    ("pngs_per_s", "inpaintings/s"),
    ("pct_of_decode", "% of decode"),
    ("pct_of_inpainted_decode", "% of inp. decode"),
]


def run(
    model_dir: Path, work: Path, n: int, width: int, height: int, steps: int, repeats: int
) -> list[dict[str, Any]]:
    made = make_inpaintings(model_dir, work, n, width, height, steps)
    emit(
        {
            "kind": "metrics_inputs",
            "pngs": len(made["pngs"]),
            "size": f"{width}x{height}",
            "steps": steps,
            "manifests": len(made["manifests"]),
            "make_s": round(made["make_s"], 2),
        }
    )
    return measure(made, work, repeats=repeats)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=48, help="inpainted PNGs to make and read")
    parser.add_argument(
        "--size",
        default="640x416",
        help="WxH, multiples of 8 (default: the study's downsampled photographs)",
    )
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--workdir", default=None, help="reused: the model is built once")
    args = parser.parse_args()
    quiet()
    width, height = parse_size(args.size)
    with work_folder(args.workdir) as work:
        model_dir, _ = build_model(work, "tiny", 4)
        rows = run(model_dir, work / "metrics", args.n, width, height, args.steps, args.repeats)
    table(rows, METRICS_COLUMNS)
    cost = decomposition_cost(rows)
    print(
        f"\nnew columns: {cost['new_columns_ms_per_inpainting']} ms per inpainting, "
        f"{cost['cost_ratio']}x the old metrics' {cost['old_ms_per_inpainting']} ms "
        f"({width}x{height}, target <= 2x)"
    )


if __name__ == "__main__":
    main()
