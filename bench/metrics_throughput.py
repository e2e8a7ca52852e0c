"""Throughput of the metrics stage beside the raw PNG decode rate of the same files.

Makes N real inpaintings with run_job (the tiny model, few steps, procedural landscapes
with their region maps, several mask radii and strengths, as the workflow would), then
times maskleak.metrics.write_metrics, the function the workflow's metrics rule calls, at
1 and 2 threads, and times decoding the same inpainted PNGs alone with read_pixels (the
decoder write_metrics uses). The ratio says how close the metrics stage gets to the
speed of merely reading its inputs.

    python bench/metrics_throughput.py --n 96 --size 192x128
"""

from __future__ import annotations

import argparse
import itertools
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from _report import emit, quiet, spread, table, work_folder
from inpaint_throughput import build_model, parse_size

from maskleak.images import read_pixels
from maskleak.inpaint import Settings, Task, run_job
from maskleak.landscapes import generate_landscape, write_region_map
from maskleak.masks import write_masks
from maskleak.metrics import write_metrics
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


def measure(
    made: dict[str, Any], work: Path, threads: Sequence[int] = (1, 2), repeats: int = 3
) -> list[dict[str, Any]]:
    """Time write_metrics at each thread count and read_pixels alone over the same PNGs,
    best of ``repeats``; emits and returns one row each, plus a ratio row."""
    pngs: list[str] = made["pngs"]
    count = len(pngs)
    rows: list[dict[str, Any]] = []

    decode_times = []
    for _ in range(repeats):
        started = time.perf_counter()
        for path in pngs:
            read_pixels(path, "RGB")
        decode_times.append(time.perf_counter() - started)
    decode: dict[str, Any] = {"kind": "decode", "what": "read_pixels", "threads": 1, "pngs": count}
    decode |= spread(decode_times)
    decode["pngs_per_s"] = round(count / decode["best_s"], 1)
    emit(decode)

    for n_threads in threads:
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            table_ = write_metrics(
                made["manifests"],
                work / f"metrics-t{n_threads}.parquet",
                band_px=8,
                threads=n_threads,
                region_maps=made["region_maps"],
            )
            times.append(time.perf_counter() - started)
        if len(table_) != count:
            raise RuntimeError(f"write_metrics returned {len(table_)} rows for {count} PNGs")
        row: dict[str, Any] = {"kind": "metrics", "what": "write_metrics", "threads": n_threads}
        row["pngs"] = count
        row |= spread(times)
        row["pngs_per_s"] = round(count / row["best_s"], 1)
        # Metrics rate over decode rate: 1.0 would mean the stage costs no more than
        # decoding its inpaintings (it also decodes originals, masks and region maps once).
        row["ratio_to_decode"] = round(row["pngs_per_s"] / decode["pngs_per_s"], 3)
        emit(row)
        rows.append(row)
    return [decode, *rows]


METRICS_COLUMNS = [
    ("what", "what"),
    ("threads", "threads"),
    ("pngs", "PNGs"),
    ("best_s", "best s"),
    ("median_s", "median s"),
    ("pngs_per_s", "PNGs/s"),
    ("ratio_to_decode", "vs decode"),
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
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=24, help="inpainted PNGs to make and read")
    parser.add_argument("--size", default="192x128", help="WxH, multiples of 8")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workdir", default=None, help="reused: the model is built once")
    args = parser.parse_args()
    quiet()
    width, height = parse_size(args.size)
    with work_folder(args.workdir) as work:
        model_dir, _ = build_model(work, "tiny", 4)
        rows = run(model_dir, work / "metrics", args.n, width, height, args.steps, args.repeats)
    table(rows, METRICS_COLUMNS)


if __name__ == "__main__":
    main()
