"""The mechanism switches (maskleak.mechanisms) on the real tiny 4-channel pipeline.

The tiny models' VAE is an exact 8x8 block-mean autoencoder: its decoder maps each latent
cell to its own 8x8 pixel block, so a pixel whose latent cell the pipeline keeps comes out
exactly as the job's VAE round trip when the kept latents are the clean posterior mode.
That makes each switch's effect on the outside pixels an exact, checkable statement."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage

from maskleak import latent_mask
from maskleak.errors import InputError
from maskleak.inpaint import Settings, Task, run_job
from maskleak.masks import circle_mask
from maskleak.mechanisms import Mechanisms, effective
from maskleak.provenance import read_png_record

STRENGTH = 0.6
RADIUS_PCT = 80.0
SETTINGS = Settings(steps=10, batch_size=1)
#: A posterior sample moves a decoded block by about half a level (tiny_models.POSTERIOR_STD),
#: so rounding moves some pixels; measured: at most 2 levels.
SAMPLE_LEVELS = 3


# --- latent_mask: the four rules against torch, PIL and a plain loop -------------------


def _block_loop(inpaint: np.ndarray, reduce: Any) -> np.ndarray:
    """any/all over each 8x8 block, one block at a time."""
    h, w = inpaint.shape
    out = np.zeros((h // 8, w // 8), dtype=bool)
    for i in range(h // 8):
        for j in range(w // 8):
            out[i, j] = reduce(inpaint[8 * i : 8 * i + 8, 8 * j : 8 * j + 8])
    return out


@pytest.mark.parametrize("shape", [(8, 8), (16, 16), (64, 96), (40, 24), (96, 64)])
def test_latent_mask_rules_match_torch_pil_and_a_loop(shape):
    h, w = shape
    rng = np.random.default_rng(h * 1000 + w)
    for density in (0.02, 0.5, 0.98):
        inpaint = rng.random((h, w)) < density
        mask = torch.from_numpy(inpaint.astype(np.float32))[None, None].repeat(2, 3, 1, 1)
        size = (h // 8, w // 8)
        torch_cells = latent_mask.latent_mask_torch(mask, "torch_nearest")
        assert torch.equal(torch_cells, torch.nn.functional.interpolate(mask, size))
        pil = Image.fromarray(inpaint.astype(np.uint8) * 255).resize(
            (w // 8, h // 8), resample=Image.Resampling.NEAREST
        )
        expected = {
            "torch_nearest": torch.nn.functional.interpolate(mask, size)[0, 0].numpy() > 0.5,
            "pil_nearest": np.asarray(pil) > 127,
            "cover": _block_loop(inpaint, np.any),
            "inner": _block_loop(inpaint, np.all),
        }
        for rule, cells in expected.items():
            small = latent_mask.latent_mask_torch(mask, rule)
            assert small.shape == (2, 3, *size) and small.dtype == mask.dtype
            assert set(torch.unique(small).tolist()) <= {0.0, 1.0}
            for b in range(2):
                for c in range(3):
                    assert np.array_equal(small[b, c].numpy() > 0.5, cells), (rule, b, c)
            numpy_cells = latent_mask.latent_cells(inpaint, rule)
            assert numpy_cells.dtype == bool and np.array_equal(numpy_cells, cells), rule
            foot = latent_mask.footprint(inpaint, rule)
            assert foot.shape == (h, w)
            assert np.array_equal(foot, np.kron(cells, np.ones((8, 8), dtype=bool))), rule


def test_a_hand_built_mask_where_the_four_rules_disagree():
    """16x16 px = 2x2 cells: cell (0, 0) all inpaint; (0, 1) only its top-left pixel;
    (1, 0) only its pixel (4, 4), just past the centre; (1, 1) only its last pixel."""
    inpaint = np.zeros((16, 16), dtype=bool)
    inpaint[0:8, 0:8] = True
    inpaint[0, 8] = True
    inpaint[8 + 4, 4] = True
    inpaint[15, 15] = True
    expected = {
        "torch_nearest": [[True, True], [False, False]],
        "pil_nearest": [[True, False], [True, False]],
        "cover": [[True, True], [True, True]],
        "inner": [[True, False], [False, False]],
    }
    mask = torch.from_numpy(inpaint.astype(np.float32))[None, None]
    for rule, cells in expected.items():
        assert latent_mask.latent_cells(inpaint, rule).tolist() == cells, rule
        assert (latent_mask.latent_mask_torch(mask, rule)[0, 0] > 0.5).tolist() == cells, rule


def test_latent_mask_refuses_unknown_rules_and_sides_off_the_grid():
    with pytest.raises(InputError, match="unknown latent mask rule 'bilinear'"):
        latent_mask.latent_cells(np.zeros((8, 8), dtype=bool), "bilinear")
    with pytest.raises(InputError, match="12x8 px, not a multiple of the latent factor 8"):
        latent_mask.latent_cells(np.zeros((8, 12), dtype=bool), "cover")
    with pytest.raises(InputError, match="not a multiple"):
        latent_mask.latent_mask_torch(torch.zeros(1, 1, 8, 12), "torch_nearest")


# --- run_job with the switches on the 4-channel tiny model -----------------------------


#: Variant name -> the mechanisms it changes from today's diffusers pipeline.
VARIANTS: dict[str, dict[str, Any]] = {
    "baseline": {},
    # The pipeline's own values, spelled out: the same inpainting as baseline.
    "own": {"latent_mask": "torch_nearest", "final_latent_paste": True},
    "mode": {"latent_encoding": "mode"},
    "pil": {"latent_mask": "pil_nearest"},
    "cover": {"latent_mask": "cover"},
    "inner": {"latent_mask": "inner"},
    "mode_pil": {"latent_encoding": "mode", "latent_mask": "pil_nearest"},
    "mode_cover": {"latent_encoding": "mode", "latent_mask": "cover"},
    "mode_inner": {"latent_encoding": "mode", "latent_mask": "inner"},
    "no_final_paste": {"final_latent_paste": False},
    "hard": {"paste_back": "hard"},
    "soft": {"paste_back": "soft", "paste_blur_px": 4.0},
    "passes3": {"passes": 3},
}
#: The latent mask rule each variant's pipeline blends with.
RULE = {name: changes.get("latent_mask", "torch_nearest") for name, changes in VARIANTS.items()}


def _task(folder: Path, mask: str, name: str, changes: dict[str, Any], pipeline: str) -> Task:
    mech = effective(pipeline, changes)
    paths = [str(folder / f"{name}_pass{k}.png") for k in range(1, mech.passes + 1)]
    return Task(
        "mechanism_sweep",
        RADIUS_PCT,
        STRENGTH,
        0,
        mask,
        paths[0],
        variant=name,
        mechanisms=mech,
        pass_paths=tuple(paths[1:]),
    )


def _pixels(path: str | Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB")).astype(np.int64)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A 96x64 noise image and its r = 80 % disc mask (as conftest's scene)."""
    root = tmp_path_factory.mktemp("mechanism_scene")
    rng = np.random.default_rng(7)
    image = root / "image.png"
    Image.fromarray(rng.integers(0, 256, (64, 96, 3), dtype=np.uint8)).save(image)
    mask = root / "mask80.png"
    circle_mask(96, 64, RADIUS_PCT).save(mask)
    return {"image": str(image), "mask": str(mask), "root": str(root)}


def _run(model: Path, files: dict[str, str], tasks: list[Task], manifest: Path, settings=SETTINGS):
    return run_job(str(model), "tiny4", files["image"], "image", tasks, settings, str(manifest))


@pytest.fixture(scope="module")
def sweep(tiny_models, files, tmp_path_factory) -> dict[str, Any]:
    """Every variant of VARIANTS in one diffusers job."""
    folder = tmp_path_factory.mktemp("mechanism_sweep")
    tasks = [_task(folder, files["mask"], n, c, "diffusers") for n, c in VARIANTS.items()]
    manifest = folder / "manifest.json"
    summary = _run(tiny_models[4], files, tasks, manifest)
    data = json.loads(manifest.read_text())
    inpaint = _pixels(files["mask"])[..., 0] > 127
    return {
        "summary": summary,
        "manifest": data,
        "tasks": {t.variant: t for t in tasks},
        "out": {n: _pixels(t.inpainted_path) for n, t in zip(VARIANTS, tasks, strict=True)},
        "roundtrip": _pixels(data["vae_roundtrip_path"]),
        "original": _pixels(files["image"]),
        "inpaint": inpaint,
        "footprint": {r: latent_mask.footprint(inpaint, r) for r in latent_mask.RULES},
    }


def test_variants_differing_only_in_paste_back_share_one_pipeline_call(sweep):
    # 13 variants, passes3 with 2 more PNGs: 15 PNGs. Pipeline results: baseline, own,
    # hard, soft and passes3's first pass are one; 8 other first passes; passes 2 and 3.
    assert sweep["summary"]["computed"] == 15
    assert sweep["summary"]["pipeline_calls"] == 1 + 8 + 2


@pytest.mark.parametrize("name", ["mode", "mode_pil", "mode_cover", "mode_inner"])
def test_mode_with_final_paste_keeps_every_pixel_outside_the_footprint_exactly(sweep, name):
    """Kept latents = the clean posterior mode, and the decoder is block-local: every
    pixel whose cell the rule does not repaint is the round trip's, to the level."""
    kept = ~sweep["footprint"][RULE[name]]
    assert np.array_equal(sweep["out"][name][kept], sweep["roundtrip"][kept])
    # The repainted cells outside the mask do change (the leak the footprint measures).
    leak = sweep["footprint"][RULE[name]] & ~sweep["inpaint"]
    if leak.any():
        assert (sweep["out"][name][leak] != sweep["roundtrip"][leak]).any()


def test_each_rule_repaints_its_own_cells(sweep):
    """The hook applies the rule: cells cover repaints and torch's nearest does not change
    under cover (and pil's only cells under pil); cells only torch repaints stay the round
    trip's under inner and pil."""
    fp, out, rt = sweep["footprint"], sweep["out"], sweep["roundtrip"]
    only_cover = fp["cover"] & ~fp["torch_nearest"]
    assert only_cover.any() and (out["mode_cover"][only_cover] != rt[only_cover]).any()
    assert np.array_equal(out["mode"][only_cover], rt[only_cover])
    only_pil = fp["pil_nearest"] & ~fp["torch_nearest"]
    assert only_pil.any() and (out["mode_pil"][only_pil] != rt[only_pil]).any()
    only_torch = fp["torch_nearest"] & ~fp["pil_nearest"] & ~sweep["inpaint"]
    assert only_torch.any() and (out["mode"][only_torch] != rt[only_torch]).any()
    assert np.array_equal(out["mode_pil"][only_torch], rt[only_torch])


@pytest.mark.parametrize("name", ["baseline", "pil", "cover", "inner"])
def test_posterior_sample_moves_kept_pixels_by_a_level_or_two(sweep, name):
    """The same with the posterior sample (the pipeline's default): close to the round
    trip outside the footprint, but not equal."""
    kept = ~sweep["footprint"][RULE[name]]
    diff = np.abs(sweep["out"][name][kept] - sweep["roundtrip"][kept])
    assert 0 < diff.max() <= SAMPLE_LEVELS


def test_without_the_final_paste_the_kept_pixels_drift_further(sweep):
    kept = ~sweep["footprint"]["torch_nearest"]
    rt = sweep["roundtrip"][kept]
    off = np.abs(sweep["out"]["no_final_paste"][kept] - rt)
    on = np.abs(sweep["out"]["baseline"][kept] - rt)
    assert (off > 0).any(axis=-1).sum() > (on > 0).any(axis=-1).sum() > 0
    assert off.max() > on.max() and ((off**2).mean() > (on**2).mean())


def test_hard_paste_back_keeps_the_original_outside_exactly(sweep):
    inpaint, out = sweep["inpaint"], sweep["out"]
    assert np.array_equal(out["hard"][~inpaint], sweep["original"][~inpaint])
    # Inside: the pipeline's result, shared with baseline (same pipeline, one call).
    assert np.array_equal(out["hard"][inpaint], out["baseline"][inpaint])
    assert (out["baseline"][~inpaint] != sweep["original"][~inpaint]).any()


def test_soft_paste_back_fades_over_the_blur(sweep):
    inpaint, original, base = sweep["inpaint"], sweep["original"], sweep["out"]["baseline"]
    soft = sweep["out"]["soft"]
    outside_distance = ndimage.distance_transform_edt(~inpaint)
    far = outside_distance > 3 * 4
    assert far.any() and np.array_equal(soft[far], original[far])
    near = (~inpaint) & (outside_distance <= 4)
    # Blended there: not the original (some channel moved towards the inpainting) ...
    assert (soft[near] != original[near]).any(axis=-1).mean() > 0.9
    # ... and between original and inpainted, up to PIL's premultiplied-alpha rounding
    # (RGBa), which puts some values one level outside.
    low, high = np.minimum(original, base), np.maximum(original, base)
    assert (soft[near] >= low[near] - 1).all() and (soft[near] <= high[near] + 1).all()
    # Deep inside, the inpainting as it came.
    deep = ndimage.distance_transform_edt(inpaint) > 3 * 4
    assert deep.any() and np.array_equal(soft[deep], base[deep])


def test_passes_chain_and_each_pass_is_kept(sweep):
    task = sweep["tasks"]["passes3"]
    paths = [task.inpainted_path, *task.pass_paths]
    assert len(paths) == 3 and all(Path(p).exists() for p in paths)
    first, second, third = (_pixels(p) for p in paths)
    assert np.array_equal(first, sweep["out"]["baseline"])
    baseline_key = read_png_record(sweep["tasks"]["baseline"].inpainted_path)["key"]
    records = [read_png_record(p) for p in paths]
    assert records[0]["key"] == baseline_key
    assert len({r["key"] for r in records}) == 3
    assert [r["pass"] for r in records] == [1, 2, 3]
    assert [r["pass_seed"] for r in records] == [0, 1_000_000, 2_000_000]
    assert (second != first).any() and (third != second).any() and (third != first).any()


def test_a_variant_with_the_pipelines_own_mechanisms_has_the_baseline_key(sweep):
    entries = {e["variant"]: e for e in sweep["manifest"]["inpaintings"] if e["pass"] == 1}
    assert entries["own"]["key"] == entries["baseline"]["key"]
    assert np.array_equal(sweep["out"]["own"], sweep["out"]["baseline"])
    others = {e["key"] for v, e in entries.items() if v not in ("baseline", "own", "passes3")}
    assert entries["baseline"]["key"] not in others and len(others) == len(entries) - 3


def test_manifest_records_variant_pass_and_mechanisms(sweep):
    manifest = sweep["manifest"]
    assert manifest["unet_in_channels"] == 4
    assert len(manifest["inpaintings"]) == 15
    for entry in manifest["inpaintings"]:
        task = sweep["tasks"][entry["variant"]]
        assert task.mechanisms is not None
        assert entry["mechanisms"] == task.mechanisms.record()
        assert read_png_record(entry["inpainted_path"])["mechanisms"] == entry["mechanisms"]
    passes = [e for e in manifest["inpaintings"] if e["variant"] == "passes3"]
    assert [e["pass"] for e in passes] == [1, 2, 3]
    assert [e["inpainted_path"] for e in passes] == [
        sweep["tasks"]["passes3"].inpainted_path,
        *sweep["tasks"]["passes3"].pass_paths,
    ]
    assert {e["mechanisms"]["latent_mask"] for e in manifest["inpaintings"]} == set(
        latent_mask.RULES
    )
    # The posterior-sample floor: within a level or two of the mode's, not equal.
    sample = _pixels(manifest["vae_roundtrip_sample_path"])
    diff = np.abs(sample - sweep["roundtrip"])
    assert 0 < diff.max() <= SAMPLE_LEVELS


def test_merged_calls_give_every_variant_the_same_pixels(sweep, tiny_models, files, tmp_path):
    """Batch size 4 merges the job's calls (each with its own switches, on its own call
    copy of the pipeline) and shares UNet evaluations: every PNG is the same as one call
    at a time."""
    tasks = [_task(tmp_path, files["mask"], n, c, "diffusers") for n, c in VARIANTS.items()]
    settings = Settings(steps=10, batch_size=4)
    summary = _run(tiny_models[4], files, tasks, tmp_path / "manifest.json", settings)
    assert summary["pipeline_calls"] == 11 and summary["unet_evaluations"] < 6 * 11
    for task in tasks:
        alone = sweep["tasks"][task.variant]
        for merged, single in zip(
            (task.inpainted_path, *task.pass_paths),
            (alone.inpainted_path, *alone.pass_paths),
            strict=True,
        ):
            assert np.array_equal(_pixels(merged), _pixels(single)), merged
            assert read_png_record(merged)["key"] == read_png_record(single)["key"]


def test_rerun_reuses_and_a_deleted_pass_recomputes_the_ones_after_it(tiny_models, files, tmp_path):
    tasks = [
        _task(tmp_path, files["mask"], "baseline", {}, "diffusers"),
        _task(tmp_path, files["mask"], "passes3", {"passes": 3}, "diffusers"),
    ]
    manifest = tmp_path / "manifest.json"
    assert _run(tiny_models[4], files, tasks, manifest)["computed"] == 4
    passes = [tasks[1].inpainted_path, *tasks[1].pass_paths]
    before = {p: Path(p).read_bytes() for p in passes}
    again = _run(tiny_models[4], files, tasks, manifest)
    assert again["computed"] == 0 and again["model_load_s"] == 0.0
    Path(passes[1]).unlink()
    mtime_first = Path(passes[0]).stat().st_mtime_ns
    # Pass 3 starts from pass 2: both are made again (pass 1 is read from its PNG).
    assert _run(tiny_models[4], files, tasks, manifest)["computed"] == 2
    assert Path(passes[0]).stat().st_mtime_ns == mtime_first
    assert {p: Path(p).read_bytes() for p in passes} == before


def test_study_pipeline_own_mechanisms_have_the_baseline_key(tiny_models, files, tmp_path):
    settings = Settings(steps=4, batch_size=1, pipeline="study")
    tasks = [
        _task(tmp_path, files["mask"], "baseline", {}, "study"),
        _task(tmp_path, files["mask"], "no_final_paste", {"final_latent_paste": False}, "study"),
        _task(tmp_path, files["mask"], "pil", {"latent_mask": "pil_nearest"}, "study"),
    ]
    summary = _run(tiny_models[4], files, tasks, tmp_path / "manifest.json", settings)
    assert summary["pipeline_calls"] == 1
    keys = [read_png_record(t.inpainted_path)["key"] for t in tasks]
    assert keys[0] == keys[1] == keys[2]
    base = _pixels(tasks[0].inpainted_path)
    assert all(np.array_equal(_pixels(t.inpainted_path), base) for t in tasks[1:])
    # Without mechanisms the task is the pipeline as it ships: the same key again.
    plain = Task("strength_sweep", RADIUS_PCT, STRENGTH, 0, files["mask"], str(tmp_path / "p.png"))
    _run(tiny_models[4], files, [plain], tmp_path / "plain.json", settings)
    assert read_png_record(plain.inpainted_path)["key"] == keys[0]


def test_study_pipeline_final_paste_and_mode_keep_the_round_trip(tiny_models, files, tmp_path):
    """The study's pipeline leaves the kept latents noised at its last timestep; with the
    final paste and the posterior mode, every pixel outside PIL-nearest's footprint is the
    round trip's exactly."""
    settings = Settings(steps=10, batch_size=1, pipeline="study")
    fixed = {"final_latent_paste": True, "latent_encoding": "mode"}
    tasks = [
        _task(tmp_path, files["mask"], "baseline", {}, "study"),
        _task(tmp_path, files["mask"], "fixed", fixed, "study"),
    ]
    manifest = tmp_path / "manifest.json"
    _run(tiny_models[4], files, tasks, manifest, settings)
    roundtrip = _pixels(json.loads(manifest.read_text())["vae_roundtrip_path"])
    inpaint = _pixels(files["mask"])[..., 0] > 127
    kept = ~latent_mask.footprint(inpaint, "pil_nearest")
    assert np.array_equal(_pixels(tasks[1].inpainted_path)[kept], roundtrip[kept])
    baseline = _pixels(tasks[0].inpainted_path)[kept]
    diff = np.abs(baseline - roundtrip[kept])
    assert (diff > 0).any(axis=-1).sum() > kept.sum() // 2 and diff.max() > SAMPLE_LEVELS


def test_float16_on_a_cpu_is_refused_before_anything_is_computed(tiny_models, files, tmp_path):
    tasks = [
        _task(tmp_path / "out", files["mask"], "baseline", {}, "diffusers"),
        _task(tmp_path / "out", files["mask"], "half", {"dtype": "float16"}, "diffusers"),
    ]
    manifest = tmp_path / "manifest.json"
    with pytest.raises(InputError, match=r"^config key variants\.half\.dtype: float16 needs"):
        _run(tiny_models[4], files, tasks, manifest)
    assert not list(tmp_path.rglob("*.png")) and not manifest.exists()


def test_a_bfloat16_variant_runs_in_bfloat16(tiny_models, files, tmp_path):
    settings = Settings(steps=3, batch_size=1)
    tasks = [
        _task(tmp_path, files["mask"], "baseline", {}, "diffusers"),
        _task(tmp_path, files["mask"], "bf16", {"dtype": "bfloat16"}, "diffusers"),
    ]
    _run(tiny_models[4], files, tasks, tmp_path / "manifest.json", settings)
    assert read_png_record(tasks[1].inpainted_path)["pipeline"]["dtype"] == "bfloat16"
    assert not np.array_equal(_pixels(tasks[1].inpainted_path), _pixels(tasks[0].inpainted_path))


def test_mechanisms_record_is_plain_values():
    record = Mechanisms().record()
    assert record == {
        "latent_encoding": "sample",
        "latent_mask": "torch_nearest",
        "final_latent_paste": True,
        "paste_back": "none",
        "paste_blur_px": 0.0,
        "passes": 1,
        "dtype": None,
    }
    assert json.loads(json.dumps(record)) == record
