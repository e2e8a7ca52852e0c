import copy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from maskleak.config import Plan, expand_values, number_label
from maskleak.errors import InputError

REPO = Path(__file__).resolve().parents[1]


def default_config():
    return yaml.safe_load((REPO / "config/config.yaml").read_text())


@pytest.mark.parametrize(
    ("value", "label"),
    [(80.0, "80"), (0.5, "0.5"), (1 / 99, "0.0101"), (20 + 60 / 49, "21.2245"), (0.0, "0")],
)
def test_number_label(value, label):
    assert number_label(value) == label


def test_expand_values_linspace_matches_study():
    # The study: 100 strengths over [0, 1] and 50 radius percentages over [20, 80].
    strengths = expand_values({"start": 0, "stop": 1, "num": 100}, "k")
    assert len(strengths) == 100 and strengths[0] == 0.0 and strengths[-1] == 1.0
    assert strengths[1] == pytest.approx(1 / 99)
    radii = expand_values({"start": 20, "stop": 80, "num": 50}, "k")
    assert radii == list(np.linspace(20, 80, 50))


def test_expand_values_errors_name_the_key():
    with pytest.raises(InputError, match="experiments.x.strengths"):
        expand_values("0.5", "experiments.x.strengths")
    with pytest.raises(InputError, match="experiments.x.strengths"):
        expand_values([], "experiments.x.strengths")


def test_plan_tasks_and_counts():
    plan = Plan(default_config())
    # 6 strengths x 1 radius + 3 strengths x 4 radii = 18 per model and image.
    tasks = plan.tasks("tiny9", "astronaut")
    assert len(tasks) == 18
    assert plan.n_inpaintings() == 18 * 8 * 2
    first = tasks[0]
    assert first["experiment"] == "strength_sweep"
    assert first["inpainted_path"] == "results/default/inpainted/tiny9/astronaut/r80_s0_seed0.png"
    assert first["mask_path"] == "results/default/masks/astronaut/r80.png"
    assert set(plan.radius_pct) == {"80", "20", "40", "60"}


def test_thesis_config_has_5000_inpaintings():
    plan = Plan(yaml.safe_load((REPO / "config/thesis.yaml").read_text()))
    assert plan.n_inpaintings() == 5000
    assert len(plan.manifests()) == 20


def test_label_clash_is_rejected():
    config = default_config()
    config["experiments"]["strength_sweep"]["strengths"] = [0.10001, 0.100012]
    with pytest.raises(InputError, match="experiments.strength_sweep.strengths"):
        Plan(config)


def test_unknown_figure_image_names_key():
    config = default_config()
    config["figures"]["worst_case_images"] = ["astronaut", "nope"]
    with pytest.raises(InputError, match=r"figures.worst_case_images\[1\]"):
        Plan(config)


def test_strength_out_of_range_names_key():
    config = copy.deepcopy(default_config())
    config["experiments"]["mask_size_sweep"]["strengths"] = [0.5, 1.5]
    with pytest.raises(InputError, match="experiments.mask_size_sweep.strengths"):
        Plan(config)


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        ("inpaint:\n  steps: -3\n", "steps"),
        ("downsample:\n  max_side: 192\n  multiple: 30\n", "multiple"),
        ("models:\n  tiny9: {kind: tiny, unet_in_channels: 5, seed: 0}\n", "unet_in_channels"),
        ("images:\n  x: {kind: url, url: 'https://example.org/a.png'}\n", "sha256"),
        ("colour: blue\n", "colour"),
    ],
)
def test_schema_rejects_bad_values_before_any_job(tmp_path, edit, needle):
    """A real dry run of the workflow with one bad key: it fails at parse time, names the
    key, and creates nothing."""
    config = default_config()
    config.update(yaml.safe_load(edit))
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(yaml.safe_dump(config))
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "-s",
            str(REPO / "Snakefile"),
            "-d",
            str(tmp_path),
            "--configfile",
            str(cfg),
            "-n",
            "--cores",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode != 0
    assert needle in run.stdout + run.stderr
    assert not (tmp_path / "results").exists() and not (tmp_path / "resources").exists()


def test_folder_source_expands_to_one_file_image_each(tmp_path):
    from PIL import Image

    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("b shot.jpg", "a.png"):
        Image.new("RGB", (8, 8)).save(folder / name)
    (folder / "notes.txt").write_text("not picked up")
    config = default_config()
    config["images"] = {"mine": {"kind": "folder", "path": str(folder)}}
    config["figures"] = {}
    plan = Plan(config)
    assert plan.images == ["mine_a", "mine_b_shot"]
    assert plan.image_source("mine_b_shot") == {"kind": "file", "path": str(folder / "b shot.jpg")}


def test_missing_or_empty_folder_names_key(tmp_path):
    config = default_config()
    config["figures"] = {}
    config["images"] = {"mine": {"kind": "folder", "path": str(tmp_path / "nope")}}
    with pytest.raises(InputError, match="images.mine.path"):
        Plan(config)
    config["images"] = {"mine": {"kind": "folder", "path": str(tmp_path)}}
    with pytest.raises(InputError, match="images.mine"):
        Plan(config)
