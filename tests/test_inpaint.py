"""The inpaint stage on the real tiny pipeline, loaded through from_pretrained."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from maskleak.errors import InputError
from maskleak.inpaint import (
    MODE_DENOISE,
    MODE_VAE_ROUNDTRIP,
    Settings,
    Task,
    run_job,
)
from maskleak.masks import circle_mask
from maskleak.models import describe, load_pipeline, model_fingerprint
from maskleak.pipeline_choice import steps_run
from maskleak.provenance import read_png_record
from maskleak.tiny_models import LATENT_GAIN, POSTERIOR_STD

SETTINGS = Settings(steps=4)


def tasks_for(out: Path, scene: dict[str, str], strengths=(0.0, 0.5, 1.0), seeds=(0,)):
    return [
        Task(
            "strength_sweep", 80.0, s, seed, scene["mask80"], str(out / f"r80_s{s}_seed{seed}.png")
        )
        for s in strengths
        for seed in seeds
    ]


def job(model: Path, scene, tasks, manifest: Path, settings: Settings = SETTINGS):
    return run_job(str(model), "tiny", scene["image"], "image", tasks, settings, str(manifest))


def test_steps_run_matches_diffusers(tiny_models):
    """Including float truncation: int(100 * 0.29) is 28, not 29."""
    pipe = load_pipeline(tiny_models[9])
    for steps in (4, 10, 100, 200):
        pipe.scheduler.set_timesteps(steps)
        for strength in (0.0, 0.01, 0.1, 0.25, 0.29, 0.3, 0.5, 0.57, 0.99, 1.0):
            _, n = pipe.get_timesteps(steps, strength, "cpu")
            assert steps_run(steps, strength) == n, (steps, strength)
    assert steps_run(100, 0.29) == 28


def test_pipeline_loads_like_a_checkpoint(tiny_models):
    for channels, folder in tiny_models.items():
        info = describe(load_pipeline(folder))
        assert info["unet_in_channels"] == channels
        assert info["vae_scale_factor"] == 8
        assert info["scheduler"] == "PNDMScheduler"
        assert info["dtype"] == "float32"
    assert describe(load_pipeline(tiny_models[9], scheduler="ddim"))["scheduler"] == "DDIMScheduler"


def test_not_a_model_folder_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match=str(tmp_path)):
        load_pipeline(tmp_path)


def test_job_outputs_manifest_and_provenance(tiny_models, scene, tmp_path):
    out = tmp_path / "out"
    tasks = tasks_for(out, scene)
    summary = job(tiny_models[9], scene, tasks, tmp_path / "manifest.json")
    assert summary["computed"] == 3
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    entries = manifest["inpaintings"]
    assert [e["steps_run"] for e in entries] == [0, 2, 4]
    assert [e["mode"] for e in entries] == [MODE_VAE_ROUNDTRIP, MODE_DENOISE, MODE_DENOISE]
    for entry in entries:
        png = Image.open(entry["inpainted_path"])
        assert png.size == (96, 64) and png.mode == "RGB"
        record = read_png_record(entry["inpainted_path"])
        assert record["key"] == entry["key"]
        assert record["model_fingerprint"] == model_fingerprint(tiny_models[9])
        assert record["pipeline"]["unet_in_channels"] == 9
        assert record["settings"]["steps"] == 4
        assert "diffusers" in record["versions"]


def test_strength_zero_is_the_vae_round_trip(tiny_models, scene, tmp_path):
    out = tmp_path / "out"
    job(tiny_models[4], scene, tasks_for(out, scene, strengths=(0.0,)), tmp_path / "m.json")
    pipe = load_pipeline(tiny_models[4])
    image = Image.open(scene["image"]).convert("RGB")
    with torch.inference_mode():
        x = pipe.image_processor.preprocess(image, height=64, width=96)
        decoded = pipe.vae.decode(pipe.vae.encode(x).latent_dist.mode()).sample
    expected = pipe.image_processor.postprocess(decoded, output_type="np")[0]
    expected = (expected * 255).round().astype(np.uint8)
    assert (np.asarray(Image.open(out / "r80_s0.0_seed0.png")) == expected).all()


def test_same_inputs_give_byte_identical_pngs(tiny_models, scene, tmp_path):
    runs = []
    for name in ("a", "b"):
        out = tmp_path / name
        job(tiny_models[9], scene, tasks_for(out, scene), tmp_path / f"{name}.json")
        runs.append({p.name: p.read_bytes() for p in out.glob("*.png")})
    assert runs[0] == runs[1] and len(runs[0]) == 3


def test_seed_changes_the_result(tiny_models, scene, tmp_path):
    out = tmp_path / "out"
    job(
        tiny_models[9], scene, tasks_for(out, scene, strengths=(1.0,), seeds=(0, 1)), tmp_path / "m"
    )
    a = np.asarray(Image.open(out / "r80_s1.0_seed0.png"))
    b = np.asarray(Image.open(out / "r80_s1.0_seed1.png"))
    assert (a != b).any()


def test_rerun_reuses_finished_and_computes_only_new(tiny_models, scene, tmp_path):
    out = tmp_path / "out"
    first = tasks_for(out, scene)
    assert job(tiny_models[9], scene, first, tmp_path / "m.json")["computed"] == 3
    before = {p: p.stat().st_mtime_ns for p in out.glob("*.png")}
    again = job(tiny_models[9], scene, first, tmp_path / "m.json")
    assert again["computed"] == 0 and again["model_load_s"] == 0.0
    # One more strength and one more seed: only the new inpaintings are computed.
    grown = tasks_for(out, scene, strengths=(0.0, 0.5, 1.0, 0.75), seeds=(0, 3))
    assert job(tiny_models[9], scene, grown, tmp_path / "m.json")["computed"] == 5
    assert all(p.stat().st_mtime_ns == t for p, t in before.items())


def test_stale_or_damaged_pngs_are_recomputed(tiny_models, scene, tmp_path):
    out = tmp_path / "out"
    tasks = tasks_for(out, scene, strengths=(0.5, 1.0))
    job(tiny_models[9], scene, tasks, tmp_path / "m.json")
    good = (out / "r80_s1.0_seed0.png").read_bytes()
    (out / "r80_s1.0_seed0.png").write_bytes(good[: len(good) // 2])
    assert job(tiny_models[9], scene, tasks, tmp_path / "m.json")["computed"] == 1
    assert (out / "r80_s1.0_seed0.png").read_bytes() == good
    # Other settings or another model: every key changes, so everything is recomputed.
    assert (
        job(tiny_models[9], scene, tasks, tmp_path / "m.json", Settings(steps=5))["computed"] == 2
    )
    assert (
        job(tiny_models[4], scene, tasks, tmp_path / "m.json", Settings(steps=5))["computed"] == 2
    )


def test_4_channel_unet_keeps_outside_latents(tiny_models, scene, tmp_path):
    """With a 4-channel UNet the pipeline pastes image latents back outside the latent
    mask, so outside the mask it must leak less than the 9-channel model, which
    regenerates every latent."""
    errors = {}
    for channels in (4, 9):
        out = tmp_path / f"c{channels}"
        job(tiny_models[channels], scene, tasks_for(out, scene, strengths=(1.0,)), out / "m")
        a = np.asarray(Image.open(scene["image"])).astype(float)
        b = np.asarray(Image.open(out / "r80_s1.0_seed0.png")).astype(float)
        keep = np.asarray(Image.open(scene["mask80"])) == 0
        errors[channels] = ((a - b) ** 2)[keep].mean()
    assert errors[4] < errors[9]


def test_mask_size_mismatch_names_the_mask(tiny_models, scene, tmp_path):
    wrong = tmp_path / "wrong.png"
    circle_mask(32, 32, 50).save(wrong)
    task = Task("strength_sweep", 50.0, 0.5, 0, str(wrong), str(tmp_path / "o.png"))
    with pytest.raises(InputError, match="wrong.png"):
        job(tiny_models[9], scene, [task], tmp_path / "m.json")
    assert not (tmp_path / "m.json").exists() and not (tmp_path / "o.png").exists()


def test_broken_model_folder_fails_before_anything_is_written(tiny_models, scene, tmp_path):
    model = tmp_path / "model"
    shutil.copytree(tiny_models[9], model)
    shutil.rmtree(model / "unet")
    out = tmp_path / "out"
    with pytest.raises(InputError, match=f"model folder {model}: missing unet/ "):
        job(model, scene, tasks_for(out, scene), tmp_path / "m.json")
    assert not out.exists() and not (tmp_path / "m.json").exists()


def test_tiny_vae_round_trip_is_the_8x8_block_mean(tiny_models, scene, tmp_path):
    """The tiny models' VAE is exact by construction: strength 0 (no denoising) returns
    every 8x8 block filled with its mean colour, rounded like the pipeline rounds."""
    out = tmp_path / "out"
    job(tiny_models[9], scene, tasks_for(out, scene, strengths=(0.0,)), tmp_path / "m.json")
    original = np.asarray(Image.open(scene["image"])).astype(np.float64)
    means = original.reshape(8, 8, 12, 8, 3).mean(axis=(1, 3))
    expected = np.repeat(np.repeat(means, 8, axis=0), 8, axis=1)
    result = np.asarray(Image.open(out / "r80_s0.0_seed0.png")).astype(np.float64)
    assert np.abs(result - expected).max() <= 0.5 + 1e-6
    # A flat image survives the round trip exactly.
    flat = tmp_path / "flat.png"
    Image.new("RGB", (96, 64), (40, 120, 200)).save(flat)
    flat_scene = {**scene, "image": str(flat)}
    job(tiny_models[4], flat_scene, tasks_for(out / "flat", flat_scene, (0.0,)), tmp_path / "f")
    assert (np.asarray(Image.open(out / "flat/r80_s0.0_seed0.png")) == (40, 120, 200)).all()


def test_4_channel_model_leaks_only_through_the_vae_and_the_latent_mask(tiny_models, tmp_path):
    """4-channel UNet: outside latents are pasted back at every step, so outside the mask
    every 8x8 block that the latent-resolution mask keeps equals its block mean; only
    blocks the downsampled mask marks for inpainting change. On a flat image that means
    the leak is confined to the blocks that straddle the circle's edge."""
    flat = tmp_path / "flat.png"
    Image.new("RGB", (96, 64), (40, 120, 200)).save(flat)
    mask_path = tmp_path / "mask.png"
    circle_mask(96, 64, 80).save(mask_path)
    scene = {"image": str(flat), "mask80": str(mask_path)}
    out = tmp_path / "out"
    job(tiny_models[4], scene, tasks_for(out, scene, strengths=(1.0,)), tmp_path / "m.json")
    result = np.asarray(Image.open(out / "r80_s1.0_seed0.png")).astype(int)
    inpaint = np.asarray(Image.open(mask_path)) > 127
    # The pipeline binarises the mask and downsamples it with torch's "nearest"
    # interpolation, which takes the top-left pixel of each 8x8 block.
    latent_mask = inpaint[::8, ::8]
    changed_blocks = np.repeat(np.repeat(latent_mask, 8, 0), 8, 1)
    outside_kept = ~inpaint & ~changed_blocks
    # Kept blocks keep their colour up to the posterior sample the pipeline encodes with
    # (std half a level: 2.5 levels is 5 sigma) and the decoder's global GroupNorm (a level).
    assert pytest.approx(0.5) == POSTERIOR_STD / LATENT_GAIN * 255 / 2
    assert np.abs(result[outside_kept] - (40, 120, 200)).max() <= 3
    leak = ~inpaint & changed_blocks
    assert leak.any() and np.abs(result[leak] - (40, 120, 200)).max() > 10


def test_a_hand_replaced_mask_is_refused_before_anything_is_computed(tiny_models, scene, tmp_path):
    """A mask file whose pixels are not the disc its radius names (here: one pixel
    flipped) would be inpainted and measured under the wrong label."""
    pixels = np.asarray(Image.open(scene["mask80"])).copy()
    pixels[0, 0] = 255 - pixels[0, 0]
    Image.fromarray(pixels).save(scene["mask80"])
    out = tmp_path / "out"
    with pytest.raises(InputError, match=r"mask80?.*not drawn by the mask rule for radius_pct=80"):
        job(tiny_models[9], scene, tasks_for(out, scene), tmp_path / "m.json")
    assert not out.exists() or not list(out.glob("*.png"))
    assert not (tmp_path / "m.json").exists()


def test_a_resumed_job_removes_temporary_files_a_killed_write_left(tiny_models, scene, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    stale = out / ".r80_s0.5_seed0.abc123.tmp.png"
    stale.write_bytes(b"half a PNG")
    keep = out / "notes.png"
    keep.write_bytes(b"not ours")
    job(tiny_models[9], scene, tasks_for(out, scene, strengths=(0.0,)), tmp_path / "m.json")
    assert not stale.exists() and keep.exists()


@pytest.mark.parametrize("pipeline", ["diffusers", "study"])
def test_every_job_saves_its_vae_round_trip_once(tiny_models, scene, tmp_path, pipeline):
    """The floor the metrics measure against: the image's VAE round trip (posterior mode,
    so the 8x8 block means), beside the manifest, for either pipeline, and reused."""
    out = tmp_path / "out"
    manifest = tmp_path / "manifest.json"
    settings = Settings(steps=3, pipeline=pipeline)
    job(tiny_models[4], scene, tasks_for(out, scene, strengths=(0.5,)), manifest, settings)
    floor = tmp_path / "vae_roundtrip.png"
    assert json.loads(manifest.read_text())["vae_roundtrip_path"] == str(floor)
    original = np.asarray(Image.open(scene["image"])).astype(np.float64)
    means = original.reshape(8, 8, 12, 8, 3).mean(axis=(1, 3))
    expected = np.repeat(np.repeat(means, 8, axis=0), 8, axis=1)
    assert np.abs(np.asarray(Image.open(floor)).astype(np.float64) - expected).max() <= 1.5
    assert read_png_record(floor)["mode"] == "vae_roundtrip"
    before = floor.stat().st_mtime_ns
    again = job(tiny_models[4], scene, tasks_for(out, scene, strengths=(0.5,)), manifest, settings)
    assert again["computed"] == 0 and again["model_load_s"] == 0.0
    assert floor.stat().st_mtime_ns == before
