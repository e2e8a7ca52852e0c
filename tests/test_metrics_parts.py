"""Per-image metrics parts and their merge, on real inpaintings made by run_job: the
merged table must equal the table built at once, exactly."""

from __future__ import annotations

import contextlib
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from maskleak.errors import InputError
from maskleak.inpaint import Settings, Task, run_job
from maskleak.landscapes import generate_landscape, write_region_map
from maskleak.masks import write_masks
from maskleak.metrics import (
    COLUMNS,
    DTYPES,
    merge_metrics,
    merge_profile,
    metrics_table,
    metrics_tables,
    write_image_metrics,
    write_metrics,
)
from maskleak.metrics.profile import COLUMNS as PROFILE_COLUMNS
from maskleak.provenance import read_parquet_record, save_png

SETTINGS = Settings(steps=2, batch_size=1)
RADII = {"40": 40.0, "80": 80.0}
STRENGTHS = (0.0, 0.5, 1.0)


def _make_image(name: str, seed: int) -> dict[str, object]:
    """One image as the workflow lays it out (paths relative to the working directory):
    a procedural landscape with its region map, or (seed 0) noise without one, its masks,
    and one run_job over radii x strengths."""
    image = f"results/images/{name}.png"
    if seed:
        rgb, _ = generate_landscape(seed, 96, 64)
    else:
        rgb = np.random.default_rng(7).integers(0, 256, (64, 96, 3), dtype=np.uint8)
    save_png(rgb, image, {"stage": "test"})
    region_map = None
    if seed:
        region_map = f"results/regions/{name}.png"
        spec = {"kind": "procedural", "seed": seed, "width": 96, "height": 64}
        write_region_map(spec, image, region_map)
    mask_paths = [f"results/masks/{name}/r{label}.png" for label in RADII]
    write_masks(image, RADII, mask_paths)
    tasks = [
        Task(
            "sweep",
            radius,
            strength,
            0,
            mask,
            f"results/inpainted/tiny/{name}/r{label}_s{strength}_seed0.png",
        )
        for (label, radius), mask in zip(RADII.items(), mask_paths, strict=True)
        for strength in STRENGTHS
    ]
    return {"image": image, "region_map": region_map, "tasks": tasks}


@pytest.fixture(scope="module")
def study(tiny_models: dict[int, Path], tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Two images (one with a region map), 6 real inpaintings each, one manifest each."""
    root = tmp_path_factory.mktemp("study")
    images = {}
    with contextlib.chdir(root):
        for name, seed in (("landscape", 3), ("noise", 0)):
            made = _make_image(name, seed)
            made["manifest"] = f"results/inpainted/tiny/{name}/manifest.json"
            summary = run_job(
                str(tiny_models[9]),
                "tiny",
                str(made["image"]),
                name,
                made["tasks"],  # type: ignore[arg-type]
                SETTINGS,
                str(made["manifest"]),
            )
            assert summary["computed"] == len(RADII) * len(STRENGTHS)
            images[name] = made
    return {"root": root, "images": images, "model": tiny_models[9]}


@pytest.fixture
def workdir(study: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """A private copy of the study, as the working directory (tests delete files)."""
    shutil.copytree(study["root"], tmp_path / "w")
    monkeypatch.chdir(tmp_path / "w")
    return study


def _manifests(study: dict) -> list[str]:
    return [made["manifest"] for made in study["images"].values()]


def _region_maps(study: dict) -> dict[str, str]:
    return {name: m["region_map"] for name, m in study["images"].items() if m["region_map"]}


def _profile_part(name: str) -> str:
    return f"results/profile/tiny/{name}.parquet"


def _write_parts(study: dict, band_px: int = 8) -> list[str]:
    """Each image's metrics part (returned) and profile part (:func:`_profile_part`)."""
    parts = []
    for name, made in study["images"].items():
        part = f"results/metrics/tiny/{name}.parquet"
        write_image_metrics(
            made["manifest"],
            part,
            band_px=band_px,
            region_map=made["region_map"],
            profile_path=_profile_part(name),
        )
        parts.append(part)
    return parts


def test_merged_parts_equal_metrics_table_exactly(workdir: dict) -> None:
    manifests, maps = _manifests(workdir), _region_maps(workdir)
    parts = _write_parts(workdir)
    merged = merge_metrics(parts, "results/metrics.parquet")

    expected = metrics_table(manifests, band_px=8, region_maps=maps)
    assert len(expected) == 12 and tuple(expected.columns) == COLUMNS
    # The landscape has a region map, the noise image none: both kinds of rows are here.
    assert set(expected.loc[expected["n_outside_flat"] > 0, "image"]) == {"landscape"}
    assert set(expected["mode"]) == {"denoise", "vae_roundtrip"}
    pd.testing.assert_frame_equal(merged, expected, check_exact=True)
    pd.testing.assert_frame_equal(
        pd.read_parquet("results/metrics.parquet"), expected, check_exact=True
    )
    # The single job of today's rule writes the same table.
    write_metrics(manifests, "results/metrics-at-once.parquet", band_px=8, region_maps=maps)
    pd.testing.assert_frame_equal(
        pd.read_parquet("results/metrics-at-once.parquet"), merged, check_exact=True
    )

    # Each part is the table of its own manifest.
    for part, (name, made) in zip(parts, workdir["images"].items(), strict=True):
        own = metrics_table([made["manifest"]], region_maps=maps)
        pd.testing.assert_frame_equal(pd.read_parquet(part), own, check_exact=True)
        record = read_parquet_record(part)
        assert record is not None
        assert (record["stage"], record["manifest"], record["band_px"]) == (
            "image_metrics",
            made["manifest"],
            8,
        )
        assert record["region_map"] == maps.get(name)
    record = read_parquet_record("results/metrics.parquet")
    assert record is not None
    assert (record["stage"], record["parts"], record["manifests"]) == ("metrics", parts, manifests)
    assert "numpy" in record["versions"]

    # Parts in any order merge to the same table, also a part that pandas rewrote (with
    # its own metadata: an index of 6 rows, pandas dtypes).
    pd.read_parquet(parts[1]).to_parquet(parts[1])
    pd.testing.assert_frame_equal(
        merge_metrics(parts[::-1], "results/metrics-reversed.parquet"), expected, check_exact=True
    )
    pd.testing.assert_frame_equal(
        pd.read_parquet("results/metrics-reversed.parquet"), expected, check_exact=True
    )


def test_merged_profile_parts_equal_the_profile_at_once(workdir: dict) -> None:
    """The profile written beside each metrics part, merged, is exactly the profile
    metrics_tables (and write_metrics) builds at once; and it splits each row."""
    manifests, maps = _manifests(workdir), _region_maps(workdir)
    _write_parts(workdir, band_px=4)
    names = list(workdir["images"])
    parts = [_profile_part(name) for name in names]
    merged = merge_profile(parts, "results/profile.parquet")
    table, expected = metrics_tables(manifests, band_px=4, region_maps=maps)
    assert tuple(expected.columns) == PROFILE_COLUMNS
    assert len(expected) == 17 * len(table) == 17 * 12
    pd.testing.assert_frame_equal(merged, expected, check_exact=True)
    pd.testing.assert_frame_equal(
        pd.read_parquet("results/profile.parquet"), expected, check_exact=True
    )
    pd.testing.assert_frame_equal(
        merge_profile(parts[::-1], "results/profile-reversed.parquet"), expected, check_exact=True
    )
    write_metrics(
        manifests,
        "results/at-once.parquet",
        band_px=4,
        region_maps=maps,
        profile_path="results/profile-at-once.parquet",
    )
    pd.testing.assert_frame_equal(
        pd.read_parquet("results/profile-at-once.parquet"), expected, check_exact=True
    )
    record = read_parquet_record("results/profile.parquet")
    assert record is not None
    assert (record["stage"], record["parts"], record["manifests"]) == ("profile", parts, manifests)
    for part, name in zip(parts, names, strict=True):
        own = metrics_tables([workdir["images"][name]["manifest"]], band_px=4, region_maps=maps)[1]
        pd.testing.assert_frame_equal(pd.read_parquet(part), own, check_exact=True)
        part_record = read_parquet_record(part)
        assert part_record is not None and part_record["stage"] == "image_profile"

    # Each kind's bins partition the row's outside pixels and its error.
    key = ["model", "image", "inpainted_path"]
    for kind, bins in merged.groupby("kind"):
        assert len(bins) == (7 if kind == "distance" else 10) * len(table)
        n = bins.groupby(key)["n_pixels"].sum()
        rows = table.set_index(key)
        assert (n == rows["n_outside"].loc[n.index]).all()
        filled = bins[bins["n_pixels"] > 0]
        sse = (filled["n_pixels"] * filled["mse"]).groupby([filled[k] for k in key]).sum()
        np.testing.assert_allclose(sse / n, rows["mse_outside"].loc[n.index], rtol=1e-12)
    # A metrics part is not a profile part.
    with pytest.raises(InputError, match="columns are not the profile table's") as info:
        merge_profile([parts[0], "results/metrics/tiny/noise.parquet"], "results/bad.parquet")
    assert "results/metrics/tiny/noise.parquet" in str(info.value)


def test_decomposition_of_real_inpaintings(workdir: dict) -> None:
    """On run_job's own manifests (9-channel model, real VAE round trips): the footprint
    is the whole image, the three parts add up to mse_outside, and each strength-0
    inpainting (the mode round trip itself) adds nothing over the floor."""
    table = metrics_table(_manifests(workdir), region_maps=_region_maps(workdir))
    assert set(table["unet_in_channels"]) == {9}
    assert (table["n_outside_footprint"] == table["n_outside"]).all()
    assert (table["mse_outside_part_beyond"] == 0).all()
    parts = table[["mse_outside_part_vae", "mse_outside_part_footprint", "mse_outside_part_beyond"]]
    np.testing.assert_allclose(parts.sum(axis=1), table["mse_outside"], rtol=1e-14)
    assert (table["mse_outside_part_vae"] == table["mse_outside_vae"]).all()
    zero = table[table["strength"] == 0.0]
    assert (zero["excess_over_floor"] == 0).all() and len(zero) == len(RADII) * 2
    np.testing.assert_allclose(
        table["bb_mse_outside"], 3 * table["mse_outside"] / 255**2, rtol=1e-15
    )
    assert set(table["variant"]) == {"baseline"} and set(table["pass"]) == {1}
    assert table["ssim_outside"].between(-1, 1).all() and (table["delta_e_outside"] >= 0).all()


def test_vae_floor_of_real_round_trips(workdir: dict) -> None:
    """The floor columns from the round trip run_job saved: the plain definition on its
    PNG, and at strength 0 (today's pipeline: the inpainting IS the round trip, mode
    vae_roundtrip) exactly the inpainting's own error."""
    table = metrics_table(_manifests(workdir), region_maps=_region_maps(workdir))
    for name, made in workdir["images"].items():
        manifest = json.loads(Path(made["manifest"]).read_text())
        roundtrip_path = manifest["vae_roundtrip_path"]
        assert roundtrip_path == f"results/inpainted/tiny/{name}/vae_roundtrip.png"
        original = np.asarray(Image.open(made["image"]).convert("RGB")).astype(np.int64)
        roundtrip = np.asarray(Image.open(roundtrip_path).convert("RGB")).astype(np.int64)
        square = ((original - roundtrip) ** 2).sum(axis=2)
        rows = table[table["image"] == name]
        assert set(rows["vae_roundtrip_path"]) == {roundtrip_path}
        for _, row in rows.iterrows():
            outside = np.asarray(Image.open(row["mask_path"]).convert("L")) <= 127
            assert row["mse_outside_vae"] == square[outside].sum() / (3 * outside.sum())
        zero = rows[rows["strength"] == 0.0]
        assert set(zero["mode"]) == {"vae_roundtrip"} and len(zero) == len(RADII)
        for key in ("mse_outside", "mse_outside_band", "mse_outside_far"):
            assert (zero[key] == zero[f"{key}_vae"]).all(), key
        # Denoised rows (9-channel model: every latent regenerated) lie above the floor.
        denoised = rows[rows["strength"] > 0]
        assert (denoised["mse_outside_far"] > denoised["mse_outside_far_vae"]).all()
        assert (rows["mse_outside_vae"] > 0).all()


def test_band_px_reaches_parts(workdir: dict) -> None:
    parts = _write_parts(workdir, band_px=2)
    merged = merge_metrics(parts, "results/metrics.parquet")
    expected = metrics_table(_manifests(workdir), band_px=2, region_maps=_region_maps(workdir))
    pd.testing.assert_frame_equal(merged, expected, check_exact=True)
    assert set(merged["band_px"]) == {2}


def test_missing_inpainting_says_which_command_recomputes_it(workdir: dict) -> None:
    made = workdir["images"]["landscape"]
    manifest = made["manifest"]
    missing = made["tasks"][4].inpainted_path
    before = write_image_metrics(
        manifest, "results/metrics/before.parquet", region_map=made["region_map"]
    )
    Path(missing).unlink()

    with pytest.raises(InputError) as info:
        write_image_metrics(manifest, "results/metrics/part.parquet", region_map=made["region_map"])
    message = str(info.value)
    assert "\n" not in message
    assert f"inpainted image {missing} not found" in message
    assert f"manifest {manifest}" in message
    assert message.endswith(
        f"rerun the inpaint rule: `snakemake --forcerun {manifest}` with the same "
        "--configfile recomputes only the missing inpaintings"
    )
    assert not Path("results/metrics/part.parquet").exists()
    # metrics_table (today's single job) says the same.
    with pytest.raises(InputError, match="--forcerun"):
        metrics_table(_manifests(workdir), threads=2)

    # What the forced rerun does: run_job again on the same tasks recomputes just the
    # missing PNG, after which the part is complete again.
    summary = run_job(
        str(workdir["model"]),
        "tiny",
        made["image"],
        "landscape",
        made["tasks"],
        SETTINGS,
        manifest,
    )
    assert summary["computed"] == 1
    after = write_image_metrics(
        manifest, "results/metrics/part.parquet", region_map=made["region_map"]
    )
    pd.testing.assert_frame_equal(after, before, check_exact=True)


@pytest.mark.parametrize(
    ("damage", "match"),
    [
        (lambda df: df.drop(columns=["psnr_outside"]), "columns are not the metrics table's"),
        (lambda df: df[list(COLUMNS[::-1])], "columns are not the metrics table's"),
        (lambda df: df.assign(extra=1), "columns are not the metrics table's"),
        (lambda df: df.astype({"seed": "float64"}), r"wrong column types \{'seed': 'double'\}"),
        (lambda df: df.astype({"n_outside": "int32"}), "wrong column types"),
        (lambda df: df.astype({"mse_outside": "float32"}), "wrong column types"),
        (lambda df: df.astype({"model": "category"}), "wrong column types"),
    ],
)
def test_merge_rejects_a_part_with_wrong_columns_or_dtypes(workdir: dict, damage, match) -> None:
    good, bad = _write_parts(workdir)
    damage(pd.read_parquet(bad)).to_parquet(bad)
    with pytest.raises(InputError, match=match) as info:
        merge_metrics([good, bad], "results/metrics.parquet")
    assert bad in str(info.value)
    assert not Path("results/metrics.parquet").exists()


def test_merge_rejects_missing_or_unreadable_parts(workdir: dict) -> None:
    good, bad = _write_parts(workdir)
    Path(bad).write_bytes(b"not parquet at all")
    with pytest.raises(InputError, match="not a readable Parquet file") as info:
        merge_metrics([good, bad], "results/metrics.parquet")
    assert bad in str(info.value)
    with pytest.raises(InputError, match="not found") as info:
        merge_metrics([good, "results/metrics/nothing.parquet"], "results/metrics.parquet")
    assert "results/metrics/nothing.parquet" in str(info.value)


def test_empty_parts(workdir: dict) -> None:
    empty = "results/inpainted/tiny/none/manifest.json"
    Path(empty).parent.mkdir(parents=True)
    manifest = json.loads(Path(_manifests(workdir)[0]).read_text())
    Path(empty).write_text(json.dumps({**manifest, "image": "none", "inpaintings": []}))
    part = write_image_metrics(empty, "results/metrics/none.parquet")
    assert len(part) == 0 and tuple(part.columns) == COLUMNS

    only_empty = merge_metrics(["results/metrics/none.parquet"], "results/empty.parquet")
    pd.testing.assert_frame_equal(only_empty, metrics_table([empty]), check_exact=True)
    assert {c: str(t) for c, t in only_empty.dtypes.items()} == {
        c: str(pd.Series([], dtype=d).dtype) for c, d in DTYPES.items()
    }

    parts = [*_write_parts(workdir), "results/metrics/none.parquet"]
    merged = merge_metrics(parts, "results/metrics.parquet")
    expected = metrics_table([*_manifests(workdir), empty], region_maps=_region_maps(workdir))
    pd.testing.assert_frame_equal(merged, expected, check_exact=True)
