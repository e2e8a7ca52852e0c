"""The tiny trainable VAE: determinism, learning, learned posterior variance, the block-mean
baseline and PSNR on hand-made arrays, and a saved folder that reloads like a checkpoint.

Trainings here are a few steps of the narrowest layout on 32x32 images: seconds, not
minutes."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from maskleak.errors import InputError
from maskleak.training.folders import parameter_count, save_component
from maskleak.training.vae import (
    block_mean,
    build_vae,
    latent_std,
    normalise_latent_scale,
    psnr,
    quality_report,
    reconstruct,
    to_tensor,
    to_uint8,
    train_vae,
    vae_config,
)

# Narrowest layout GroupNorm(8) allows; same classes and 8x downsampling as the default.
SMALL = vae_config((8, 8, 16, 16))
KL_WEIGHT = 1e-3


def smooth_batch() -> np.ndarray:
    """Two 32x32 smooth synthetic images (a colour gradient with a slow wave, and its
    transpose), uint8 (2, 32, 32, 3)."""
    y, x = np.mgrid[0:32, 0:32] / 31.0
    image = np.stack(
        [
            0.5 + 0.4 * np.sin(2 * np.pi * x),
            y,
            0.3 + 0.4 * x * y,
        ],
        axis=-1,
    )
    pixels = np.rint(255 * np.clip(image, 0, 1)).astype(np.uint8)
    return np.stack([pixels, pixels.transpose(1, 0, 2)])


def weights(vae: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in vae.state_dict().items()}


def without_seconds(history: list[dict[str, float]]) -> list[dict[str, float]]:
    return [{k: v for k, v in row.items() if k != "seconds"} for row in history]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread: the machine's cores are shared, and two threads that each wait on
    the other under load make a step 10-100x slower (measured); restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def trained() -> tuple[torch.nn.Module, list[dict[str, float]], list[str]]:
    """30 steps on the fixed smooth batch, its history and its progress lines."""
    batch = smooth_batch()
    lines: list[str] = []
    vae, history = train_vae(
        lambda step: batch,
        30,
        seed=0,
        lr=3e-3,
        kl_weight=KL_WEIGHT,
        log_every=10,
        log=lines.append,
        config=SMALL,
    )
    return vae, history, lines


def test_same_seed_gives_identical_weights_and_history_other_seed_differs() -> None:
    rng = np.random.default_rng(1)
    batches = [rng.integers(0, 256, (2, 32, 32, 3), dtype=np.uint8) for _ in range(3)]
    runs = [train_vae(list(batches), 3, seed=s, log=None, config=SMALL) for s in (5, 5, 6)]
    (vae_a, hist_a), (vae_b, hist_b), (vae_c, hist_c) = runs
    wa, wb, wc = weights(vae_a), weights(vae_b), weights(vae_c)
    assert wa.keys() == wb.keys()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert without_seconds(hist_a) == without_seconds(hist_b)
    assert [row["step"] for row in hist_a] == [1, 2, 3]
    assert not all(torch.equal(wa[k], wc[k]) for k in wa)
    assert without_seconds(hist_a) != without_seconds(hist_c)
    # The flag train_vae switches on is restored afterwards.
    assert not torch.are_deterministic_algorithms_enabled()


def test_loss_decreases_on_a_fixed_smooth_batch(trained) -> None:
    _, history, _ = trained
    rec = [row["rec"] for row in history]
    assert len(history) == 30
    assert np.mean(rec[-3:]) < 0.5 * np.mean(rec[:3])
    for row in history:
        assert row["loss"] == pytest.approx(row["rec"] + KL_WEIGHT * row["kl"], rel=1e-5)
    seconds = [row["seconds"] for row in history]
    assert seconds == sorted(seconds) and seconds[0] > 0


def test_progress_lines(trained) -> None:
    _, history, lines = trained
    assert [line.split()[2] for line in lines] == ["1/30", "10/30", "20/30", "30/30"]
    last = history[-1]
    assert lines[-1].startswith(f"vae step 30/30 loss {last['loss']:.4f} rec {last['rec']:.4f}")
    assert lines[-1].endswith("s/step eta 0.0 min")


def test_learned_variance_sample_differs_from_mode(trained) -> None:
    vae, _, _ = trained
    images = smooth_batch()
    mode = reconstruct(vae, images)
    sample = reconstruct(vae, images, mode=False, seed=0)
    assert mode.shape == images.shape and mode.dtype == np.uint8
    assert not np.array_equal(mode, sample)
    assert np.array_equal(sample, reconstruct(vae, images, mode=False, seed=0))
    assert not np.array_equal(sample, reconstruct(vae, images, mode=False, seed=1))
    # Learned: the encoder's log-variance outputs (conv_out channels 4..7) were trained,
    # not fixed at their initial values.
    initial = build_vae(0, SMALL).encoder.conv_out
    trained_out = vae.encoder.conv_out
    assert not torch.equal(trained_out.weight[4:], initial.weight[4:])
    assert not torch.equal(trained_out.bias[4:], initial.bias[4:])


def test_block_mean_exact_on_hand_made_array() -> None:
    image = np.zeros((1, 8, 16, 3), dtype=np.uint8)
    ramp = np.arange(64, dtype=np.uint8).reshape(8, 8)
    image[0, :, :8, 0] = ramp  # mean 31.5 -> 32 (half to even)
    image[0, :, :8, 1] = ramp + 1  # mean 32.5 -> 32 (half to even)
    image[0, :, :8, 2] = 7
    image[0, :, 8:, 0] = 255
    image[0, :4, 8:, 1] = 10  # half the block 10, half 0: mean 5
    image[0, 0, 8, 2] = 100  # one pixel of 100 among 63 zeros: 1.5625 -> 2
    out = block_mean(image)
    expected_left = np.array([32, 32, 7], dtype=np.uint8)
    expected_right = np.array([255, 5, 2], dtype=np.uint8)
    assert out.dtype == np.uint8 and out.shape == image.shape
    assert (out[0, :, :8] == expected_left).all()
    assert (out[0, :, 8:] == expected_right).all()
    assert block_mean(image, factor=1).tolist() == image.tolist()
    with pytest.raises(InputError, match="not a multiple of 8"):
        block_mean(np.zeros((1, 8, 12, 3), dtype=np.uint8))


def test_psnr_exact_on_hand_made_pairs() -> None:
    a = np.zeros((1, 1, 2, 3), dtype=np.uint8)
    b = a.copy()
    b[0, 0, 0, 0] = 255  # one element of six off by 255: MSE = 255^2 / 6
    assert psnr(a, b) == pytest.approx(10 * math.log10(6), abs=1e-12)
    c = a + 1  # every element off by one level: MSE = 1
    assert psnr(a, c) == pytest.approx(20 * math.log10(255), abs=1e-12)
    assert psnr(a, a) == math.inf
    with pytest.raises(InputError, match="psnr"):
        psnr(a, a.astype(np.float32))


def test_pixel_conversion_round_trips_and_matches_diffusers() -> None:
    values = np.arange(256, dtype=np.uint8).reshape(1, 8, 32, 1).repeat(3, axis=3)
    pixels = to_tensor(values)
    assert pixels.shape == (1, 3, 8, 32)
    assert float(pixels.min()) == -1.0 and float(pixels.max()) == 1.0
    assert np.array_equal(to_uint8(pixels), values)


def test_saved_folder_reloads_with_identical_reconstructions(trained, tmp_path: Path) -> None:
    from diffusers import AutoencoderKL

    vae, history, _ = trained
    folder = save_component(vae, tmp_path / "vae", {"seed": 0, "steps": len(history)})
    assert (folder / "diffusion_pytorch_model.safetensors").is_file()
    assert not (folder / "diffusion_pytorch_model.bin").exists()
    record = json.loads((folder / "provenance.json").read_text())
    assert record["seed"] == 0 and record["steps"] == 30
    assert record["config"]["block_out_channels"] == [8, 8, 16, 16]
    assert record["config"]["latent_channels"] == 4
    assert record["parameters"] == parameter_count(vae)
    reloaded = AutoencoderKL.from_pretrained(folder, local_files_only=True)
    images = smooth_batch()
    for mode in (True, False):
        assert np.array_equal(
            reconstruct(reloaded, images, mode=mode), reconstruct(vae, images, mode=mode)
        )


def test_bad_inputs_are_input_errors() -> None:
    good = np.zeros((1, 32, 32, 3), dtype=np.uint8)
    with pytest.raises(InputError, match="ran out at step 2"):
        train_vae([good], 2, seed=0, log=None, config=SMALL)
    with pytest.raises(InputError, match="multiples of 8"):
        train_vae([np.zeros((1, 30, 32, 3), dtype=np.uint8)], 1, seed=0, log=None, config=SMALL)
    with pytest.raises(InputError, match="uint8"):
        reconstruct(build_vae(0, SMALL), good.astype(np.float32))
    with pytest.raises(InputError, match="4 entries"):
        vae_config((8, 16, 32))
    with pytest.raises(InputError, match="multiples of norm_num_groups"):
        vae_config((8, 12, 16, 16), norm_num_groups=8)
    with pytest.raises(InputError, match="steps"):
        train_vae([good], 0, seed=0, log=None, config=SMALL)


def test_quality_report_rows(trained) -> None:
    vae, _, _ = trained
    images = smooth_batch()
    rows = quality_report(vae, {"wave": images[0], "flat": np.full((16, 24, 3), 90, np.uint8)})
    wave, flat = rows
    assert (wave["image"], wave["height"], wave["width"]) == ("wave", 32, 32)
    assert wave["psnr_mode_db"] == psnr(reconstruct(vae, images[:1]), images[:1])
    assert wave["psnr_block_mean_db"] == psnr(block_mean(images[:1]), images[:1])
    assert wave["margin_db"] == wave["psnr_mode_db"] - wave["psnr_block_mean_db"]
    assert math.isfinite(wave["psnr_sample_vs_mode_db"])
    # A flat image is its own block mean.
    assert flat["psnr_block_mean_db"] == math.inf and flat["margin_db"] == -math.inf


def test_block_mean_init_starts_as_the_exact_block_mean() -> None:
    """Built with init='block_mean', the trainable VAE reconstructs every 8x8 block as its
    mean colour before any training, at the default widths and with attention in the
    mid block: to within one 8-bit level where the norm's ~1e-4 nonlinearity tips a
    rounding, and at a PSNR of 60 dB or more against the exact block mean."""
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (2, 32, 48, 3), dtype=np.uint8)
    images[1, :, :32] = smooth_batch()[0]
    vae = build_vae(0, vae_config(), init="block_mean")
    got = reconstruct(vae, images).astype(int)
    want = block_mean(images).astype(int)
    assert np.abs(got - want).max() <= 1
    assert psnr(got.astype(np.uint8), want.astype(np.uint8)) >= 60
    # A random start is nothing like it.
    random = reconstruct(build_vae(0, vae_config(), init="random"), images).astype(int)
    assert np.abs(random - want).mean() > 20


def test_block_mean_init_needs_one_norm_group() -> None:
    with pytest.raises(InputError, match="norm_num_groups=1"):
        build_vae(0, vae_config((16, 32, 64, 64), norm_num_groups=2), init="block_mean")
    with pytest.raises(InputError, match="VAE init must be one of"):
        build_vae(0, init="pretrained")


def test_latent_scale_normalised_without_changing_reconstructions(trained) -> None:
    vae = trained[0]
    images = np.concatenate(
        [smooth_batch(), np.random.default_rng(4).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)]
    )
    before = {k: v.clone() for k, v in vae.state_dict().items()}
    decoded = reconstruct(vae, images)
    std = latent_std(vae, images)
    k = normalise_latent_scale(vae, images)
    try:
        assert k == pytest.approx((1 / 0.18215) / std)
        assert latent_std(vae, images) == pytest.approx(1 / 0.18215, rel=1e-5)
        assert np.abs(reconstruct(vae, images).astype(int) - decoded).max() <= 1
        assert psnr(reconstruct(vae, images), decoded) > 60
    finally:
        vae.load_state_dict(before)
