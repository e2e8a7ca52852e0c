"""Mask families in the config (maskleak.mask_specs): ids, plan, drawing, checking, and
the errors that name the config key and the files."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from maskleak import mask_families
from maskleak.config import Plan
from maskleak.errors import InputError
from maskleak.mask_specs import (
    check_mask_file,
    draw_mask,
    read_masks,
    write_mask_files,
)
from maskleak.masks import circle_mask
from maskleak.provenance import read_png_record
from maskleak.schema import validate_config

ROOT = Path(__file__).resolve().parents[1]


def base_config() -> dict:
    config = yaml.safe_load((ROOT / ".test" / "config.yaml").read_text())
    config["experiments"].pop("mask_shape_sweep", None)
    return config


def test_ids_of_every_family(tmp_path: Path) -> None:
    user = tmp_path / "My mask.png"
    Image.new("L", (8, 8), 255).save(user)
    specs = read_masks(
        {
            "radius_pct": [80, 21.22449],
            "masks": [
                {"kind": "rectangle", "sizes": [[0.4, 0.5]], "boxes": [[0.1, 0, 0.5, 0.25]]},
                {"kind": "strokes", "presets": ["thin", "thick"], "seeds": [0, 2]},
                {"kind": "strokes", "seeds": [1], "name": "big", "dilate_px": 2},
                {"kind": "file", "path": str(user), "blur_px": 4},
                {"kind": "circle", "radius_pct": [50], "dilate_px": 3},
            ],
        },
        "experiments.e",
        ["a"],
    )
    assert list(specs) == [
        "r80",
        "r21.2245",
        "rect-40x50",
        "rect-10-0-50-25",
        "strokes-thin-s0",
        "strokes-thin-s2",
        "strokes-thick-s0",
        "strokes-thick-s2",
        "big-medium-s1-d2",
        "file-My_mask-b4",
        "r50-d3",
    ]
    assert specs["r80"].is_study_disc and not specs["r50-d3"].is_study_disc
    assert specs["rect-40x50"].settings == {"box": [0.3, 0.25, 0.7, 0.75]}
    assert specs["file-My_mask-b4"].blur_px == 4.0
    assert specs["big-medium-s1-d2"].key == "experiments.e.masks[2]"


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({}, "config key experiments.e: give radius_pct or masks"),
        (
            {"masks": [{"kind": "rectangle"}]},
            "config key experiments.e.masks[0]: a rectangle needs sizes or boxes",
        ),
        (
            {"masks": [{"kind": "rectangle", "boxes": [[0.5, 0, 0.4, 1]]}]},
            "config key experiments.e.masks[0].boxes[0]: need 0 <= x0 < x1 <= 1",
        ),
        (
            {"masks": [{"kind": "rectangle", "sizes": [[0, 0.5]]}]},
            "config key experiments.e.masks[0].sizes[0]: fractions must be in (0, 1]",
        ),
        (
            {"masks": [{"kind": "strokes", "seeds": [1, 1]}]},
            "config key experiments.e.masks[0].seeds: seeds repeat",
        ),
        (
            {"masks": [{"kind": "strokes", "seeds": [1], "area_frac": [0.5, 0.2]}]},
            "config key experiments.e.masks[0].area_frac: need 0 < low <= high < 1",
        ),
        (
            {"masks": [{"kind": "file", "path": "/no/such/mask.png"}]},
            "config key experiments.e.masks[0].path: /no/such/mask.png is not a file",
        ),
        (
            {"masks": [{"kind": "folder", "path": "/no/such/folder"}]},
            "config key experiments.e.masks[0].path: /no/such/folder is not a folder",
        ),
        (
            {"radius_pct": [80], "masks": [{"kind": "circle", "radius_pct": [80]}]},
            "config key experiments.e.masks[0]: mask 'r80' is also experiments.e's",
        ),
        (
            {"masks": [{"kind": "circle", "radius_pct": [120]}]},
            "config key experiments.e.masks[0].radius_pct: values must be in (0, 100]",
        ),
    ],
)
def test_bad_mask_entries_name_the_key(entry: dict, message: str) -> None:
    with pytest.raises(InputError) as err:
        read_masks(entry, "experiments.e", ["a"])
    assert str(err.value).startswith(message), str(err.value)


def test_folder_matches_masks_to_images_by_name(tmp_path: Path) -> None:
    folder = tmp_path / "hand"
    folder.mkdir()
    for name in ("a", "b", "unused"):
        Image.new("L", (8, 8)).save(folder / f"{name}.png")
    spec = read_masks({"masks": [{"kind": "folder", "path": str(folder)}]}, "k", ["a", "b"])
    (only,) = spec.values()
    assert only.mask_id == "file-hand" and only.kind == "file"
    assert only.user_files("b") == [str(folder / "b.png")]
    assert only.record("a")["path"] == str(folder / "a.png")
    with pytest.raises(InputError, match=r"config key k.masks\[0\]: mask folder .* no mask for"):
        read_masks({"masks": [{"kind": "folder", "path": str(folder)}]}, "k", ["a", "c"])


def test_plan_lists_masks_once_and_refuses_clashes() -> None:
    config = base_config()
    config["experiments"]["mask_shape_sweep"] = {
        "radius_pct": [60],
        "masks": [{"kind": "strokes", "presets": ["thin"], "seeds": [0]}],
        "strengths": [0.5],
        "seeds": [0],
    }
    validate_config(config)
    plan = Plan(config)
    # r80 (strength and mechanism sweeps), r30, r60 (mask-size and mask-shape sweeps):
    # one file each.
    assert [Path(p).name for p in plan.mask_paths("land")] == [
        "r80.png",
        "r30.png",
        "r60.png",
        "rect-50x50.png",  # the mask-size sweep's box
        "strokes-thin-s0.png",
    ]
    tasks = [t for t in plan.tasks("tiny4", "land") if t["experiment"] == "mask_shape_sweep"]
    assert [Path(t["inpainted_path"]).name for t in tasks] == [
        "r60_s0.5_seed0.png",
        "strokes-thin-s0_s0.5_seed0.png",
    ]
    assert tasks[1]["radius_pct"] is None and tasks[1]["mask"]["preset"] == "thin"
    clash = copy.deepcopy(config)
    clash["experiments"]["mask_size_sweep"]["masks"] = [
        {"kind": "strokes", "presets": ["thin"], "seeds": [0], "area_frac": [0.2, 0.3]}
    ]
    validate_config(clash)
    with pytest.raises(InputError, match="mask 'strokes-thin-s0' is also .* other settings"):
        Plan(clash)


def test_blur_is_refused_for_the_study_pipeline() -> None:
    config = base_config()
    config["experiments"]["mask_size_sweep"]["masks"] = [
        {"kind": "rectangle", "sizes": [[0.5, 0.5]], "blur_px": 3}
    ]
    validate_config(config)
    with pytest.raises(InputError) as err:
        Plan(config)
    assert str(err.value).startswith(
        "config key experiments.mask_size_sweep.masks[0].blur_px: model tiny4_study runs "
        "the study's pipeline, which has no mask blur"
    )
    config["experiments"]["mask_size_sweep"]["models"] = ["tiny4", "tiny9"]
    config["experiments"]["mechanism_sweep"]["models"] = ["tiny4", "tiny4_study"]
    Plan(config)  # diffusers-pipeline models only: accepted


def test_schema_checks_mask_entries() -> None:
    config = base_config()
    config["experiments"]["mask_size_sweep"]["masks"] = [{"kind": "strokes", "presets": ["x"]}]
    with pytest.raises(InputError, match=r"experiments.mask_size_sweep.masks\[0\]"):
        validate_config(config)


def test_drawn_masks_match_their_family_functions(tmp_path: Path) -> None:
    w, h = 64, 32
    record = {"mask_id": "r50", "mask_kind": "circle", "radius_pct": 50.0, "key": "k"}
    mask, info = draw_mask(record, w, h)
    assert np.array_equal(mask, np.asarray(circle_mask(w, h, 50.0)))
    assert info["radius_px"] == 8 and info["area_frac"] == (mask == 255).mean()
    strokes = {"mask_id": "s", "mask_kind": "strokes", "preset": "thin", "seed": 7, "key": "k"}
    mask, info = draw_mask({**strokes, "dilate_px": 1}, 48, 32)
    expected, _ = mask_families.strokes_mask(48, 32, 7, "thin")
    assert np.array_equal(mask, mask_families.dilate(expected, 1))
    assert info["dilate_px"] == 1 and info["strokes"]  # every stroke recorded
    box = {"mask_id": "b", "mask_kind": "rectangle", "box": [0, 0, 1, 1], "key": "k.x"}
    with pytest.raises(InputError):
        draw_mask(box, 16, 16)


def test_wrong_size_user_mask_names_both_files_and_writes_nothing(tmp_path: Path) -> None:
    image = tmp_path / "image.png"
    Image.new("RGB", (32, 16)).save(image)
    user = tmp_path / "user.png"
    Image.new("L", (64, 32), 255).save(user)
    records = [
        {"mask_id": "r50", "mask_kind": "circle", "radius_pct": 50.0, "key": "experiments.e"},
        {
            "mask_id": "file-user",
            "mask_kind": "file",
            "path": str(user),
            "resize": False,
            "key": "experiments.e.masks[0]",
        },
    ]
    outs = [str(tmp_path / "out" / "r50.png"), str(tmp_path / "out" / "file-user.png")]
    with pytest.raises(InputError) as err:
        write_mask_files(str(image), records, outs)
    assert str(err.value) == (
        f"config key experiments.e.masks[0]: user mask {user} is 64x32 px; set resize to "
        f"resize it (nearest), or give a mask of 32x16 px like its image (image {image})"
    )
    assert not (tmp_path / "out").exists()
    # With resize: nearest to 32x16; a half-white mask stays half white.
    half = np.zeros((32, 64), np.uint8)
    half[:, :32] = 255
    Image.fromarray(half).save(user)
    records[1]["resize"] = True
    write_mask_files(str(image), records, outs)
    drawn = np.asarray(Image.open(outs[1]))
    assert (drawn[:, :16] == 255).all() and (drawn[:, 16:] == 0).all()
    assert read_png_record(outs[1])["resized"] is True


def test_mask_check_refuses_a_changed_mask(tmp_path: Path) -> None:
    record = {"mask_id": "rect-50x50", "mask_kind": "rectangle", "box": [0.25, 0.25, 0.75, 0.75]}
    record["key"] = "k"
    mask, _ = draw_mask(record, 16, 8)
    check_mask_file(mask, record, "m.png", (16, 8))
    changed = mask.copy()
    changed[0, 0] = 255
    with pytest.raises(InputError) as err:
        check_mask_file(changed, record, "m.png", (16, 8))
    assert str(err.value) == (
        "m.png: not drawn by the mask rule for mask rect-50x50: 1 of 128 pixels differ; "
        "delete it to redraw it"
    )


def test_named_and_dilated_discs_in_an_experiments_radii() -> None:
    config = base_config()
    config["experiments"]["mask_size_sweep"]["masks"] = [
        {"kind": "circle", "name": "ring", "radius_pct": [45]},
        {"kind": "circle", "radius_pct": [50], "dilate_px": 2},
    ]
    validate_config(config)
    experiment = Plan(config).experiments["mask_size_sweep"]
    assert list(experiment.masks) == ["r30", "r60", "ring-r45", "r50-d2"]
    # A named disc is still the study's disc; a dilated one is not.
    assert experiment.radius_pct == {"30": 30.0, "60": 60.0, "45": 45.0}
    summary = Plan(config).summary()
    assert "mask_size_sweep: masks (4): r30, r60, ring-r45, r50-d2;" in summary
