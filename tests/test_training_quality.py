"""Quality report of an inpainting folder (issue 12's UNet bars), on the untrained tiny
models: every number recomputed here with plain numpy from the pipeline's own output, the
mean-fill baseline on a hand-made array, the VAE floor from a direct encode/decode, the
files and their records, and bad input refused before any pipeline runs.

One 64x48 landscape and two masks keep it to a handful of pipeline calls."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from maskleak.errors import InputError
from maskleak.landscapes import generate_landscape
from maskleak.masks import circle_mask
from maskleak.provenance import read_parquet_record
from maskleak.training import quality
from maskleak.training.quality import (
    COLUMNS,
    bb_psnr_db,
    bb_psnr_to_mse,
    inside_fill_report,
    mean_fill,
    outside_report,
    quality_report,
    study_masks,
    write_quality,
)

WIDTH, HEIGHT = 64, 48


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    pixels, _ = generate_landscape(3, WIDTH, HEIGHT)
    return pixels


@pytest.fixture(scope="module")
def masks() -> dict[str, np.ndarray]:
    """The study's r80 disc (drawn as the study drew it) and a placed box."""
    box = np.zeros((HEIGHT, WIDTH), bool)
    box[8:24, 40:56] = True
    return {"r80": np.asarray(circle_mask(WIDTH, HEIGHT, 80)) > 127, "box": box}


@pytest.fixture(scope="module")
def report(
    tiny_models: dict[int, Path], image: np.ndarray, masks: dict[str, np.ndarray]
) -> tuple[list[dict[str, Any]], dict[Any, np.ndarray]]:
    """The 9-channel model against the 4-channel one as its reference, outputs kept."""
    outputs: dict[Any, np.ndarray] = {}
    rows = quality_report(
        tiny_models[9], {"ls3": image}, masks, seeds=[5], reference=tiny_models[4], outputs=outputs
    )
    return rows, outputs


def mse(a: np.ndarray, b: np.ndarray, where: np.ndarray) -> float:
    diff = a.astype(float) - b.astype(float)
    return float((diff[where] ** 2).mean())


def test_mean_fill_by_hand() -> None:
    # Kept pixels of channel 0: 10, 11, 20, 30 -> mean 17.75 -> 18; channel 1: 0, 0, 1, 2
    # -> 0.75 -> 1; channel 2: 1, 2, 2, 2 -> 1.75 -> 2; and a half: 2.5 rounds to even 2.
    img = np.zeros((2, 3, 3), np.uint8)
    img[..., 0] = [[10, 11, 20], [30, 99, 99]]
    img[..., 1] = [[0, 0, 1], [2, 99, 99]]
    img[..., 2] = [[1, 2, 2], [2, 99, 99]]
    hole = np.array([[False, False, False], [False, True, True]])
    filled = mean_fill(img, hole)
    assert filled[1, 1].tolist() == [18, 1, 2] and filled[1, 2].tolist() == [18, 1, 2]
    assert np.array_equal(filled[~hole], img[~hole])
    # The inside MSE of that fill: (99-18)^2, (99-1)^2, (99-2)^2 per hole pixel.
    expected = (81**2 + 98**2 + 97**2) / 3
    assert quality.masked_mse(filled, img, hole) == expected
    halves = np.array([[[2, 0, 0], [3, 0, 0], [50, 0, 0]]], np.uint8)
    assert mean_fill(halves, np.array([[False, False, True]]))[0, 2, 0] == 2


def test_inside_columns_recomputed(
    report: tuple[list[dict[str, Any]], dict[Any, np.ndarray]],
    image: np.ndarray,
    masks: dict[str, np.ndarray],
) -> None:
    rows, outputs = report
    assert [(r["model"], r["mask_id"], r["seed"]) for r in rows] == [
        ("tiny9", "r80", 5),
        ("tiny9", "box", 5),
    ]
    for row in rows:
        hole = masks[row["mask_id"]]
        out = outputs[("tiny9", "ls3", row["mask_id"], 5)]
        ref = outputs[("tiny4", "ls3", row["mask_id"], 5)]
        assert out.dtype == np.uint8 and out.shape == image.shape
        assert row["n_inside"] == hole.sum() and row["n_outside"] == (~hole).sum()
        assert row["mse_inside"] == pytest.approx(mse(out, image, hole), rel=1e-12)
        fill = image.astype(float)
        fill[hole] = np.round(image[~hole].astype(float).mean(axis=0))
        assert row["mse_inside_mean_fill"] == pytest.approx(mse(fill, image, hole), rel=1e-12)
        assert row["mse_inside_reference"] == pytest.approx(mse(ref, image, hole), rel=1e-12)
        assert row["inside_over_reference"] == row["mse_inside"] / row["mse_inside_reference"]
        assert row["inside_over_mean_fill"] == row["mse_inside"] / row["mse_inside_mean_fill"]
        # Untrained: the 9-channel model's hole is coloured noise, many times the mean fill's.
        assert row["inside_over_mean_fill"] > quality.INSIDE_OVER_MEAN_FILL_BAR
        assert row["reference"] == "tiny4" and row["unet_in_channels"] == 9


def test_outside_columns_and_vae_floor(
    report: tuple[list[dict[str, Any]], dict[Any, np.ndarray]],
    tiny_models: dict[int, Path],
    image: np.ndarray,
    masks: dict[str, np.ndarray],
) -> None:
    from diffusers import AutoencoderKL

    rows, outputs = report
    vae = AutoencoderKL.from_pretrained(tiny_models[9] / "vae", local_files_only=True)
    with torch.no_grad():
        pixels = torch.from_numpy(image.astype(np.float32)).permute(2, 0, 1)[None] / 127.5 - 1
        decoded = vae.decode(vae.encode(pixels).latent_dist.mode()).sample
    unit = (decoded / 2 + 0.5).clamp(0, 1)[0].permute(1, 2, 0).numpy()
    roundtrip = np.round(unit * 255).astype(np.uint8)
    for row in rows:
        keep = ~masks[row["mask_id"]]
        out = outputs[("tiny9", "ls3", row["mask_id"], 5)]
        assert row["mse_outside"] == pytest.approx(mse(out, image, keep), rel=1e-12)
        assert row["mse_outside_vae"] == pytest.approx(mse(roundtrip, image, keep), rel=1e-12)
        assert row["excess_over_floor"] == row["mse_outside"] - row["mse_outside_vae"]
        assert row["psnr_outside"] == pytest.approx(10 * math.log10(255**2 / row["mse_outside"]))
        bb_mse = (((out.astype(float) - image) / 255) ** 2).sum(axis=-1)[keep].mean()
        assert row["bb_psnr_outside"] == pytest.approx(-10 * math.log10(bb_mse), rel=1e-12)
        assert row["psnr_outside"] - row["bb_psnr_outside"] == pytest.approx(10 * math.log10(3))
        # Untrained 9-channel UNet: it regenerates the kept pixels far beyond the floor.
        assert row["mse_outside"] > 10 * row["mse_outside_vae"]
    assert bb_psnr_db(bb_psnr_to_mse(18.0)) == pytest.approx(18.0)
    assert bb_psnr_db(0.0) == quality.BB_PSNR_IDENTICAL


def test_same_seed_same_numbers(
    report: tuple[list[dict[str, Any]], dict[Any, np.ndarray]],
    tiny_models: dict[int, Path],
    image: np.ndarray,
    masks: dict[str, np.ndarray],
) -> None:
    """A second, separate run of each report function gives the same rows as the joint
    one (one pipeline call per row, same seeds), and the reference's output is the same
    when it is the measured model."""
    rows, outputs = report
    box = {"box": masks["box"]}
    inside = inside_fill_report(tiny_models[9], {"ls3": image}, box, seeds=[5])
    outside = outside_report(tiny_models[9], {"ls3": image}, box, seeds=[5])
    joint = rows[1]
    assert inside[0] == {k: v for k, v in joint.items() if k in inside[0]}
    assert outside[0] == {k: v for k, v in joint.items() if k in outside[0]}
    assert "mse_outside" not in inside[0] and "mse_inside" not in outside[0]
    again: dict[Any, np.ndarray] = {}
    outside_report(tiny_models[4], {"ls3": image}, box, seeds=[5], outputs=again)
    assert np.array_equal(again[("tiny4", "ls3", "box", 5)], outputs[("tiny4", "ls3", "box", 5)])


def test_write_quality_files(
    report: tuple[list[dict[str, Any]], dict[Any, np.ndarray]], tmp_path: Path
) -> None:
    import pandas as pd

    rows, _ = report
    path = tmp_path / "quality.parquet"
    summary = write_quality(rows, path, {"images": ["ls3"]})
    frame = pd.read_parquet(path)
    assert list(frame.columns) == list(rows[0]) and set(frame.columns) <= set(COLUMNS)
    assert frame["mse_inside"].tolist() == [r["mse_inside"] for r in rows]
    record = read_parquet_record(path)
    assert record is not None
    assert record["settings"]["steps"] == 10 and record["settings"]["strength"] == 1.0
    assert record["parameters"] == {"images": ["ls3"]}
    assert record["columns"]["bb_psnr_outside"] == COLUMNS["bb_psnr_outside"]
    assert record["columns"]["bb_psnr_outside"].startswith("dB: BrushBench")
    on_disk = json.loads(path.with_suffix(".json").read_text())
    entry = on_disk["models"]["tiny9"]
    inside = entry["inside_vs_mean_fill"]
    mean_inside = np.mean([r["mse_inside"] for r in rows])
    mean_fill_mse = np.mean([r["mse_inside_mean_fill"] for r in rows])
    assert inside["ratio_of_means"] == pytest.approx(mean_inside / mean_fill_mse)
    assert inside["passes"] is False and inside["bar"] == 2.0
    assert entry["outside"]["position"] == "below"  # untrained: far under 18 dB
    assert summary["models"]["tiny9"]["inside_vs_reference"]["reference"] == "tiny4"
    with pytest.raises(InputError, match="'surprise'"):
        write_quality([{**rows[0], "surprise": 1}], tmp_path / "x.parquet")


def test_study_masks_drawn_by_the_mask_rule() -> None:
    drawn = study_masks(WIDTH, HEIGHT)
    assert list(drawn) == ["r40", "r80", "rect-40x40", "strokes-medium-s0"]
    assert np.array_equal(drawn["r80"], np.asarray(circle_mask(WIDTH, HEIGHT, 80)) > 127)
    rect = np.zeros((HEIGHT, WIDTH), bool)
    rect[14:34, 19:45] = True  # floor(0.3 * 48 + 0.5) = 14 .. floor(0.7 * 48 + 0.5) = 34
    assert np.array_equal(drawn["rect-40x40"], rect)


def test_bad_input_named(tiny_models: dict[int, Path], image: np.ndarray) -> None:
    """Refused before any pipeline is loaded or run (a missing folder would fail later)."""
    missing = tiny_models[9].parent / "no-such-model"
    wrong = {"r80": np.asarray(circle_mask(WIDTH, HEIGHT + 8, 80)) > 127}
    with pytest.raises(InputError, match=r"mask 'r80' for held-out image 'ls3'.*64x56.*64x48"):
        inside_fill_report(missing, {"ls3": image}, wrong)
    with pytest.raises(InputError, match=r"held-out image 'odd'.*multiples of 8.*60x48"):
        outside_report(missing, {"odd": image[:, :60]})
    with pytest.raises(InputError, match="held-out image 'grey' must be uint8"):
        outside_report(missing, {"grey": image[..., 0]})
    empty = {"none": np.zeros((HEIGHT, WIDTH), bool)}
    with pytest.raises(InputError, match="mask 'none'.*inpaint some pixels and keep some"):
        outside_report(missing, {"ls3": image}, empty)
    with pytest.raises(InputError, match="model folder .*no-such-model"):
        outside_report(missing, {"ls3": image}, seeds=[0])


def test_columns_come_from_the_schema_yaml() -> None:
    """One source of truth: every reported column is documented in
    workflow/schemas/inpaint_quality.columns.yaml, with a unit and a definition."""
    import yaml

    schema = yaml.safe_load(
        (
            Path(__file__).resolve().parents[1] / "workflow/schemas/inpaint_quality.columns.yaml"
        ).read_text()
    )
    names = [c["name"] for c in schema["columns"]]
    assert schema["table"] == "inpaint_quality"
    assert list(COLUMNS) == names
    assert all(c["definition"].strip() and c["dtype"] for c in schema["columns"])
