import copy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from maskleak.config import Plan
from maskleak.errors import InputError
from maskleak.sweeps import expand_values, number_label

REPO = Path(__file__).resolve().parents[1]


def default_config():
    return yaml.safe_load((REPO / "config/config.yaml").read_text())


def small_config():
    from test_workflow import small_config as small

    return small()


def dry_run(workdir: Path, config: dict) -> subprocess.CompletedProcess[str]:
    """``snakemake -n`` of the real workflow on ``config``, in ``workdir``."""
    cfg = workdir / "run.yaml"
    cfg.write_text(yaml.safe_dump(config))
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "-s",
            str(REPO / "Snakefile"),
            "-d",
            str(workdir),
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
    assert radii == [round(float(r), 9) for r in np.linspace(20, 80, 50)]


def test_expand_values_rounds_to_nine_decimals():
    """One canonical float per value, whichever notation wrote it: linspace's
    0.6000000000000001 is 0.6, and -0.0 is 0.0."""
    assert expand_values({"start": 0, "stop": 1, "num": 6}, "k") == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert expand_values([0.30000000000000004, 1 / 3], "k") == [0.3, 0.333333333]
    values = expand_values({"start": -1, "stop": 0, "num": 3}, "k") + expand_values([-0.0], "k")
    assert values == [-1.0, -0.5, 0.0, 0.0]
    assert all(str(v) != "-0.0" for v in values)


def test_linspace_and_list_notations_give_identical_tasks():
    """Same file names must mean same values: the cache key of an inpainting (its
    strength and radius) may not depend on how the config wrote the sweep."""
    by_range = default_config()
    by_range["experiments"]["strength_sweep"]["strengths"] = {"start": 0, "stop": 1, "num": 6}
    by_range["experiments"]["mask_size_sweep"]["radius_pct"] = {"start": 20, "stop": 80, "num": 4}
    by_list = default_config()
    by_list["experiments"]["strength_sweep"]["strengths"] = [0, 0.2, 0.4, 0.6, 0.8, 1]
    by_list["experiments"]["mask_size_sweep"]["radius_pct"] = [20, 40, 60, 80]
    a, b = Plan(by_range), Plan(by_list)
    assert a.tasks("tiny9", "astronaut") == b.tasks("tiny9", "astronaut")
    assert list(a.masks) == list(b.masks)
    strengths = {t["strength"] for t in a.tasks("tiny9", "astronaut")}
    assert 0.6 in strengths and 0.6000000000000001 not in strengths


def test_expand_values_errors_name_the_key():
    with pytest.raises(InputError, match="experiments.x.strengths"):
        expand_values("0.5", "experiments.x.strengths")
    with pytest.raises(InputError, match="experiments.x.strengths"):
        expand_values([], "experiments.x.strengths")


def test_plan_tasks_and_counts():
    plan = Plan(default_config())
    # 6 strengths x 1 radius x 2 seeds + 3 strengths x 4 radii x 1 seed = 24 per model and
    # image, and the mask-shape sweep's (4 discs + 2 boxes + 4 strokes) x 1 strength x 1
    # seed = 10; tiny9 is not in the mechanism sweep. The block-mean control runs the
    # strength sweep only (12).
    tasks = plan.tasks("tiny9", "astronaut")
    assert len(tasks) == 24 + 10
    assert len(plan.tasks("blockmean4", "astronaut")) == 12
    # The mechanism sweep adds 3 strengths x 1 seed x 7 variants = 21 tasks for tiny4, and
    # 3 x 1 x 9 PNGs (passes_3 lists 3) = 27 inpaintings.
    tiny4 = plan.tasks("tiny4", "astronaut")
    mechanism = [t for t in tiny4 if t["experiment"] == "mechanism_sweep"]
    assert len(mechanism) == 21
    assert sum(1 + len(t["pass_paths"]) for t in mechanism) == 27
    assert plan.n_inpaintings() == (24 + 10) * 6 * 3 + 12 * 6 + 27 * 6 * 2
    first = tasks[0]
    assert first["experiment"] == "strength_sweep"
    assert first["inpainted_path"] == "results/default/inpainted/tiny9/astronaut/r80_s0_seed0.png"
    assert first["mask_path"] == "results/default/masks/astronaut/r80.png"
    assert list(plan.masks) == [
        "r80",
        "r20",
        "r40",
        "r60",
        "rect-40x40",
        "rect-70x50",
        *(f"strokes-{p}-s{k}" for p in ("thin", "thick") for k in (0, 1)),
    ]


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


def test_max_side_below_multiple_names_key():
    config = default_config()
    config["downsample"] = {"max_side": 16, "multiple": 32}
    with pytest.raises(InputError, match=r"^config key downsample\.max_side: 16 is less than "):
        Plan(config)


def test_procedural_image_too_small_after_downsampling_names_image_key():
    config = small_config()  # max_side 64, multiple 32
    config["experiments"].pop("mask_shape_sweep")  # its mask folder has no mask for strip
    config["images"]["strip"] = {"kind": "procedural", "seed": 0, "width": 640, "height": 40}
    with pytest.raises(InputError) as info:
        Plan(config)
    message = str(info.value)
    assert message.startswith("config key images.strip: 640x40 px is too small for ")
    assert "downsample.multiple=32" in message and "64x0" in message


def test_upper_and_lower_case_checksums_are_one_source():
    upper, lower = small_config(), small_config()
    for config in (upper, lower):  # its mask folder has no mask for photo
        config["experiments"].pop("mask_shape_sweep")
    upper["images"]["photo"] = {"kind": "url", "url": "https://x.org/a.png", "sha256": "AB" * 32}
    lower["images"]["photo"] = {"kind": "url", "url": "https://x.org/a.png", "sha256": "ab" * 32}
    plan = Plan(upper)
    assert plan.image_source("photo")["sha256"] == "ab" * 32
    assert plan.source_key("photo") == Plan(lower).source_key("photo")


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
    run = dry_run(tmp_path, config)
    assert run.returncode != 0
    assert needle in run.stdout + run.stderr
    assert not (tmp_path / "results").exists() and not (tmp_path / "resources").exists()


def _visible_error(run: subprocess.CompletedProcess[str]) -> list[str]:
    """What the user sees of a failed dry run, as lines."""
    return (run.stdout + run.stderr).splitlines()


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            {"images": {"photo": {"kind": "url", "url": "https://x.org/a.png"}}},
            "config key images.photo.sha256: required for kind url",
        ),
        (
            {"images": {"photo": {"kind": "url", "url": "https://x.org/a", "sha265": "0" * 64}}},
            "config key images.photo: unknown key 'sha265' (a url source takes kind, url, sha256)",
        ),
        (
            {"downsample": {"max_side": 16, "multiple": 32}},
            "config key downsample.max_side: 16 is less than downsample.multiple (32): "
            "every side would be floored to 0 px",
        ),
        (
            {"images": {"strip": {"kind": "procedural", "seed": 0, "width": 640, "height": 40}}},
            "config key images.strip: 640x40 px is too small for downsample.multiple=32 "
            "(downsample.max_side=64): it would become 64x0 px",
        ),
    ],
)
def test_bad_config_is_one_line_naming_the_key(tmp_path, edit, message):
    """A real dry run: the error is the line right under Snakemake's
    'InputError in file ...' header, and no schema dump follows."""
    config = small_config()
    for section, value in edit.items():
        config[section] = value
    config["figures"] = {}
    run = dry_run(tmp_path, config)
    assert run.returncode != 0
    lines = _visible_error(run)
    assert message in lines, run.stdout + run.stderr
    header = lines[lines.index(message) - 1]
    assert header.startswith("InputError in file "), header
    assert "Failed validating" not in run.stdout + run.stderr
    assert len(run.stdout + run.stderr) < 1000, run.stdout + run.stderr


def test_upper_case_sha256_passes_a_real_dry_run(tmp_path):
    config = small_config()
    config["experiments"].pop("mask_shape_sweep")  # its mask folder has no mask for photo
    config["images"]["photo"] = {"kind": "url", "url": "https://x.org/a.png", "sha256": "AB" * 32}
    run = dry_run(tmp_path, config)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "download_image" in run.stdout


def test_local_model_folder_passes_validation_and_plans_inpaint_jobs(tmp_path):
    """``kind: local`` used to fail validation (Snakemake's validate filled in the hub
    branch's default ``revision``); now a real dry run plans one inpaint job per image
    for it, reading the model from the folder itself."""
    folder = tmp_path / "my model"
    folder.mkdir()
    (folder / "model_index.json").write_text("{}")
    config = small_config()
    config["models"] = {"mine": {"kind": "local", "path": str(folder)}}
    del config["experiments"]["mechanism_sweep"]  # it names the test config's models
    for experiment in config["experiments"].values():
        experiment.pop("models", None)  # so do these: here they run every model
    run = dry_run(tmp_path, config)
    assert run.returncode == 0, run.stdout + run.stderr
    jobs = [line.split() for line in run.stdout.splitlines() if line.startswith("inpaint ")]
    assert jobs and jobs[0][1] == "2"  # one inpaint job per image (astronaut, land)
    assert "get_model" not in run.stdout  # nothing to build or download
    assert "results/run/inpainted/mine/land/manifest.json" in run.stdout


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


def test_thesis_sweeps_are_the_studys_rounded_values_exactly():
    plan = Plan(yaml.safe_load((REPO / "config/thesis.yaml").read_text()))
    strengths = list(plan.experiments["strength_sweep"].strengths.values())
    radii = list(plan.experiments["mask_size_sweep"].radius_pct.values())
    assert strengths == [float(v) for v in np.round(np.linspace(0, 1, 100), 2)]
    assert radii == [float(v) for v in np.round(np.linspace(20, 80, 50), 2)]
    assert 0.5 not in strengths and 0.49 in strengths and 0.51 in strengths
    assert "strengths (100): 0, 0.01, " in plan.summary() and ", 0.49, 0.51, " in plan.summary()
    # ... run by the study's own pipeline, and the default config shows both pipelines.
    assert [plan.model_pipeline(m) for m in plan.models] == ["study"]
    assert "sd15 (study pipeline)" in plan.summary()
    default = Plan(default_config())
    assert {default.model_pipeline(m) for m in default.models} == {"diffusers", "study"}
    assert default.model_dir("tiny4") == default.model_dir("tiny4_study")
    # Bands and intervals need several seeds; the strength sweep, the thesis' main one,
    # has 2 (the study drew one sample per point). The other sweeps' intervals are over
    # their 6 images (one point per image and mask, or per image and variant-baseline
    # pair), so they run one seed to keep the default run near 5 minutes with trained
    # models (whose VAE costs 5x the block mean's per call).
    one_seed = ("mask_shape_sweep", "mask_size_sweep", "mechanism_sweep")
    seeded = {n: e for n, e in default.experiments.items() if n not in one_seed}
    assert all(len(e.seeds) >= 2 for e in seeded.values())
    assert len(default.images) >= 6
    assert all(default.experiments[n].seeds == [0] for n in one_seed)
    assert len(default.experiments["strength_sweep"].seeds) == 2


def test_rounding_that_makes_values_repeat_is_refused():
    with pytest.raises(InputError, match=r"experiments.x.strengths.round: rounding to 1 decimals"):
        expand_values({"start": 0, "stop": 1, "num": 100, "round": 1}, "experiments.x.strengths")


def test_a_pipeline_variant_of_a_model_shares_its_folder_and_is_its_own_model():
    config = small_config()
    config["models"] = {
        "tiny4": {"kind": "tiny", "unet_in_channels": 4, "seed": 0},
        "tiny4_study": {"kind": "tiny", "unet_in_channels": 4, "seed": 0, "pipeline": "study"},
    }
    for experiment in config["experiments"].values():
        experiment.pop("models", None)  # the test config's lists name its other models
    config["inpaint"]["pipeline"] = "diffusers"
    plan = Plan(config)
    assert plan.model_dir("tiny4") == plan.model_dir("tiny4_study")
    # The shared folder is built from the weights' spec alone.
    assert plan.built_models() == {
        plan.model_key("tiny4"): {"kind": "tiny", "unet_in_channels": 4, "seed": 0}
    }
    assert [plan.model_pipeline(m) for m in plan.models] == ["diffusers", "study"]
    assert plan.inpaint_settings("tiny4_study")["pipeline"] == "study"
    assert plan.inpaint_settings("tiny4")["steps"] == config["inpaint"]["steps"]
    assert "tiny4 (diffusers pipeline), tiny4_study (study pipeline)" in plan.summary()
    # Without a pipeline of its own a model takes inpaint.pipeline.
    config["inpaint"]["pipeline"] = "study"
    assert Plan(config).model_pipeline("tiny4") == "study"


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("model", "config key models.tiny9.pipeline: the study pipeline needs a 4-channel UNet"),
        ("inpaint", "config key models.tiny9.(inpaint.pipeline): the study pipeline needs a 4-ch"),
    ],
)
def test_the_study_pipeline_on_a_9_channel_model_is_a_config_error(where, message):
    config = small_config()
    if where == "model":
        config["models"]["tiny9"]["pipeline"] = "study"
    else:
        config["inpaint"]["pipeline"] = "study"
    with pytest.raises(InputError) as err:
        Plan(config)
    assert str(err.value).startswith(message)
    assert "9-channel" in str(err.value)
