"""The tiny inpainting UNets' trainer: its data is the pipeline's own preparation, its loss
is SD's epsilon objective on SD 1.5's schedule, training is deterministic, the held-out
loss falls, and a saved folder reloads like a checkpoint's ``unet/``.

Trainings here are a few steps on a handful of 32x32 crops (4x4 latents): seconds."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from maskleak.errors import InputError
from maskleak.tiny_models import build_tiny_pipeline, tiny_unet_config
from maskleak.training.data import crop_batch, mask_batch, training_images
from maskleak.training.folders import save_component
from maskleak.training.unet import (
    TIMESTEP_GRID,
    build_unet,
    denoising_loss,
    empty_prompt_embeddings,
    latent_dataset,
    train_unet,
    unet_input,
)
from maskleak.training.vae import build_vae, vae_config

SIZE = 32  # px; 4x4 latents


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread (the cores are shared; see tests/test_training_vae.py)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def pipe():
    return build_tiny_pipeline(9, 0)


@pytest.fixture(scope="module")
def crops_and_masks() -> tuple[np.ndarray, np.ndarray]:
    """12 real training crops (two photos, one landscape) and their random masks."""
    images, _ = training_images(0, landscape_seeds=(100,))
    crops, _ = crop_batch(images[:2] + images[-1:], 12, SIZE, SIZE, seed=3)
    masks, _ = mask_batch(12, SIZE, SIZE, seed=4)
    return crops, masks


@pytest.fixture(scope="module")
def dataset(pipe, crops_and_masks) -> dict[str, torch.Tensor]:
    crops, masks = crops_and_masks
    return latent_dataset(pipe.vae, crops, masks, seed=0)


@pytest.fixture(scope="module")
def embeddings(pipe) -> torch.Tensor:
    return empty_prompt_embeddings(pipe.text_encoder, pipe.tokenizer)


def weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def without_seconds(history: list[dict[str, float]]) -> list[dict[str, float]]:
    return [{k: v for k, v in row.items() if k != "seconds"} for row in history]


def pipeline_preparation(pipe, crops: np.ndarray, masks: np.ndarray, generator: torch.Generator):
    """The inpainting pipeline's own steps 5-7 from PIL inputs: preprocess image and mask,
    mask the image, encode the image (prepare_latents' _encode_vae_image) and the masked
    image and mask (prepare_mask_latents), in the pipeline's order, one generator."""
    height, width = crops.shape[1:3]
    image = pipe.image_processor.preprocess(
        [Image.fromarray(c) for c in crops], height=height, width=width
    ).to(torch.float32)
    mask_condition = pipe.mask_processor.preprocess(
        [Image.fromarray(m.astype(np.uint8) * 255) for m in masks], height=height, width=width
    )
    image_latents = pipe._encode_vae_image(image, generator=generator)
    mask, masked_latents = pipe.prepare_mask_latents(
        mask_condition,
        image * (mask_condition < 0.5),
        len(crops),
        height,
        width,
        torch.float32,
        torch.device("cpu"),
        generator,
        False,
    )
    return image_latents, mask, masked_latents


def test_dataset_equals_the_pipelines_own_preparation(pipe, crops_and_masks) -> None:
    from diffusers import StableDiffusionInpaintPipeline

    crops, masks = crops_and_masks
    crops, masks = crops[:3, :, :24], masks[:3, :, :24]  # non-square: 32 high, 24 wide
    # A random (untrained) VAE: its posterior variance is large, so a sample is far from
    # the mode and the generator's order of draws shows in the result.
    vae = build_vae(1, vae_config((8, 8, 16, 16)))
    other = StableDiffusionInpaintPipeline(**{**pipe.components, "vae": vae})
    ours = latent_dataset(vae, crops, masks, seed=7, chunk=2)
    generator = torch.Generator().manual_seed(7)
    first = pipeline_preparation(other, crops[:2], masks[:2], generator)
    second = pipeline_preparation(other, crops[2:], masks[2:], generator)
    theirs = [torch.cat(pair) for pair in zip(first, second, strict=True)]
    assert ours["latents"].shape == (3, 4, 4, 3)
    assert ours["mask"].shape == (3, 1, 4, 3)
    assert torch.equal(ours["latents"], theirs[0])
    assert torch.equal(ours["mask"], theirs[1])
    assert torch.equal(ours["masked_image_latents"], theirs[2])
    # The latent mask is the top-left pixel of each 8x8 block (nearest interpolation).
    assert np.array_equal(ours["mask"][:, 0].numpy(), masks[:, ::8, ::8].astype(np.float32))
    # Sampled, not the mode; and scaled by the VAE's factor.
    with torch.no_grad():
        mode = vae.encode(other.image_processor.preprocess(Image.fromarray(crops[0])))
    scaled_mode = vae.config.scaling_factor * mode.latent_dist.mode()
    assert not torch.allclose(ours["latents"][:1], scaled_mode, atol=1e-2)
    # One chunk draws the samples in another order: other latents from the same seed.
    whole = latent_dataset(vae, crops, masks, seed=7, chunk=3)
    assert torch.equal(whole["mask"], ours["mask"])
    assert not torch.equal(whole["latents"], ours["latents"])


def test_block_mean_latents_by_hand(pipe) -> None:
    """The tiny pipeline's exact VAE: a scaled latent is the block's mean in [-1, 1] times
    1 / TYPICAL_BLOCK_STD (4th channel 0), plus a posterior sample's noise of std
    POSTERIOR_STD * 0.18215 (0.0098). The masked pixels are 0 (mid grey) before encoding,
    so a fully masked image's masked-image latents are 0 too."""
    from maskleak.tiny_models import POSTERIOR_STD, TYPICAL_BLOCK_STD

    crops = np.full((1, 16, 16, 3), 200, np.uint8)
    crops[0, :, 8:] = 55
    masks = np.zeros((1, 16, 16), bool)
    masks[0, 8:] = True  # bottom half
    data = latent_dataset(pipe.vae, crops, masks, seed=0)
    expected = torch.zeros(1, 4, 2, 2)
    expected[:, :3, :, 0] = (200 / 127.5 - 1) / TYPICAL_BLOCK_STD
    expected[:, :3, :, 1] = (55 / 127.5 - 1) / TYPICAL_BLOCK_STD
    noise = 5 * POSTERIOR_STD * 0.18215  # 5 standard deviations
    assert torch.allclose(data["latents"], expected, atol=noise)
    masked = expected.clone()
    masked[:, :, 1] = 0
    assert torch.allclose(data["masked_image_latents"], masked, atol=noise)
    assert data["mask"][0, 0].tolist() == [[0.0, 0.0], [1.0, 1.0]]


def test_empty_prompt_embeddings_equal_encode_prompt(pipe, embeddings) -> None:
    cond, uncond = pipe.encode_prompt("", torch.device("cpu"), 1, True)
    assert embeddings.shape == (1, 77, 32) and embeddings.dtype == torch.float32
    assert torch.equal(embeddings, cond)
    # With guidance the unconditional embedding is the same "": guidance changes nothing.
    assert torch.equal(embeddings, uncond)


def test_built_unet_is_the_tiny_pipelines(pipe) -> None:
    for channels in (4, 9):
        ours = weights(build_unet(channels, 5))
        theirs = weights(build_tiny_pipeline(channels, 5).unet)
        assert ours.keys() == theirs.keys()
        assert all(torch.equal(ours[k], theirs[k]) for k in ours)
    assert dict(build_unet(9, 0).config)["block_out_channels"] == (32, 64)
    assert tiny_unet_config(9)["in_channels"] == 9


def test_input_layout_for_4_and_9_channels(dataset) -> None:
    rows = torch.tensor([3, 0])
    noisy = torch.randn(2, 4, 4, 4)
    nine = unet_input(noisy, dataset, rows, 9)
    assert nine.shape == (2, 9, 4, 4)
    assert torch.equal(nine[:, :4], noisy)
    assert torch.equal(nine[:, 4:5], dataset["mask"][rows])
    assert torch.equal(nine[:, 5:], dataset["masked_image_latents"][rows])
    assert unet_input(noisy, dataset, rows, 4) is noisy
    # A 4-channel UNet trains on the latents alone.
    _, history = train_unet(
        {"latents": dataset["latents"]},
        4,
        2,
        0,
        text_embeddings=torch.zeros(1, 77, 32),
        batch_size=4,
        log=None,
    )
    assert [row["step"] for row in history] == [1, 2]


def test_first_loss_is_sd_epsilon_objective(dataset, embeddings) -> None:
    """Step 1's loss, recomputed independently: the same draws from the seed (a row
    permutation, timesteps, noise), SD 1.5's scaled-linear alphas, the untrained UNet."""
    _, history = train_unet(dataset, 9, 1, 11, text_embeddings=embeddings, batch_size=5, log=None)
    generator = torch.Generator().manual_seed(11)
    rows = torch.randperm(12, generator=generator)[:5]
    t = torch.randint(0, 1000, (5,), generator=generator)
    noise = torch.randn(5, 4, 4, 4, generator=generator)
    betas = torch.linspace(0.00085**0.5, 0.012**0.5, 1000, dtype=torch.float64) ** 2
    alpha_bar = torch.cumprod(1 - betas, 0)[t].float().view(5, 1, 1, 1)
    noisy = alpha_bar.sqrt() * dataset["latents"][rows] + (1 - alpha_bar).sqrt() * noise
    sample = torch.cat([noisy, dataset["mask"][rows], dataset["masked_image_latents"][rows]], dim=1)
    unet = build_tiny_pipeline(9, 11).unet
    with torch.no_grad():
        prediction = unet(sample, t, encoder_hidden_states=embeddings.expand(5, -1, -1)).sample
    expected = float(((prediction - noise) ** 2).mean())
    assert history[0]["loss"] == pytest.approx(expected, rel=1e-5)


def test_same_seed_gives_identical_weights_and_history_other_seed_differs(
    dataset, embeddings
) -> None:
    runs = [
        train_unet(dataset, 9, 4, s, text_embeddings=embeddings, batch_size=5, log=None)
        for s in (5, 5, 6)
    ]
    (unet_a, hist_a), (unet_b, hist_b), (unet_c, hist_c) = runs
    wa, wb, wc = weights(unet_a), weights(unet_b), weights(unet_c)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert without_seconds(hist_a) == without_seconds(hist_b)
    assert not all(torch.equal(wa[k], wc[k]) for k in wa)
    assert without_seconds(hist_a) != without_seconds(hist_c)
    assert not unet_a.training
    assert not torch.are_deterministic_algorithms_enabled()


@pytest.fixture(scope="module")
def trained(dataset, embeddings):
    """60 steps of the 9-channel UNet on the 12 crops, and its progress lines."""
    lines: list[str] = []
    unet, history = train_unet(
        dataset,
        9,
        60,
        0,
        text_embeddings=embeddings,
        batch_size=6,
        lr=2e-3,
        log_every=20,
        log=lines.append,
    )
    return unet, history, lines


def test_progress_lines(trained) -> None:
    _, history, lines = trained
    assert [line.split()[2] for line in lines] == ["1/60", "20/60", "40/60", "60/60"]
    window = np.mean([row["loss"] for row in history[-20:]])
    assert lines[-1].startswith(
        f"unet9 step 60/60 loss {history[-1]['loss']:.4f} mean20 {window:.4f} "
    )
    assert lines[-1].endswith("s/step eta 0.0 min")


def test_denoising_loss_halves_with_training(trained, dataset, embeddings) -> None:
    unet, _, _ = trained
    after = denoising_loss(unet, dataset, embeddings, seed=1)
    before = denoising_loss(build_unet(9, 0), dataset, embeddings, seed=1)
    assert list(after["per_timestep"]) == list(TIMESTEP_GRID)
    assert after["mean"] == pytest.approx(np.mean(list(after["per_timestep"].values())))
    # Untrained: outputs unrelated to the noise, so about 1 (unit noise) or more.
    assert before["mean"] > 0.9
    assert after["mean"] <= 0.5 * before["mean"]
    # Every t's loss splits by the mask's share of latent elements, and so does the mean.
    share = float(dataset["mask"].double().mean())
    for t in TIMESTEP_GRID:
        inside, outside = (
            after["per_timestep_inside_mask"][t],
            after["per_timestep_outside_mask"][t],
        )
        split = share * inside + (1 - share) * outside
        assert split == pytest.approx(after["per_timestep"][t], rel=1e-9)
    split = share * after["mean_inside_mask"] + (1 - share) * after["mean_outside_mask"]
    assert split == pytest.approx(after["mean"], rel=1e-9)
    # Fixed noise: the same seed gives the same numbers.
    assert denoising_loss(unet, dataset, embeddings, seed=1) == after


def test_denoising_loss_at_one_timestep_by_hand(dataset, embeddings) -> None:
    unet = build_unet(4, 2)
    result = denoising_loss(unet, dataset, embeddings, seed=3, timesteps=(500,), batch_size=5)
    noise = torch.randn(12, 4, 4, 4, generator=torch.Generator().manual_seed(3))
    betas = torch.linspace(0.00085**0.5, 0.012**0.5, 1000, dtype=torch.float64) ** 2
    alpha_bar = float(torch.cumprod(1 - betas, 0)[500])
    noisy = math.sqrt(alpha_bar) * dataset["latents"] + math.sqrt(1 - alpha_bar) * noise
    t = torch.full((12,), 500)
    with torch.no_grad():
        prediction = unet(noisy, t, encoder_hidden_states=embeddings.expand(12, -1, -1)).sample
    expected = float(((prediction - noise) ** 2).double().mean())
    assert result["per_timestep"] == {500: pytest.approx(expected, rel=1e-5)}
    assert result["mean"] == result["per_timestep"][500]
    # No mask in the data: no inside/outside split.
    latents_only = denoising_loss(unet, {"latents": dataset["latents"]}, embeddings, seed=3)
    assert math.isnan(latents_only["mean_inside_mask"])
    assert math.isnan(latents_only["per_timestep_outside_mask"][50])
    assert latents_only["mean"] == denoising_loss(unet, dataset, embeddings, seed=3)["mean"]


def test_saved_folder_reloads_with_identical_outputs(trained, embeddings, tmp_path: Path) -> None:
    from diffusers import UNet2DConditionModel

    unet, history, _ = trained
    folder = save_component(unet, tmp_path / "unet", {"seed": 0, "steps": len(history)})
    assert (folder / "diffusion_pytorch_model.safetensors").is_file()
    assert not (folder / "diffusion_pytorch_model.bin").exists()
    umask = os.umask(0o022)
    os.umask(umask)
    for path in folder.iterdir():
        assert path.stat().st_mode & 0o777 == 0o666 & ~umask, path.name
    record = json.loads((folder / "provenance.json").read_text())
    assert record["seed"] == 0 and record["steps"] == 60
    assert record["config"]["in_channels"] == 9
    assert record["parameters"] == sum(p.numel() for p in unet.parameters())
    assert "torch" in record["versions"]
    reloaded = UNet2DConditionModel.from_pretrained(folder, local_files_only=True)
    sample = torch.randn(2, 9, 4, 4, generator=torch.Generator().manual_seed(0))
    t = torch.tensor([10, 900])
    with torch.no_grad():
        ours = unet(sample, t, encoder_hidden_states=embeddings.expand(2, -1, -1)).sample
        theirs = reloaded(sample, t, encoder_hidden_states=embeddings.expand(2, -1, -1)).sample
    assert torch.equal(ours, theirs)


def test_bad_inputs_are_input_errors(pipe, dataset, embeddings, crops_and_masks) -> None:
    crops, masks = crops_and_masks
    with pytest.raises(InputError, match="steps"):
        train_unet(dataset, 9, 0, 0, text_embeddings=embeddings, log=None)
    with pytest.raises(InputError, match="in_channels must be 4 or 9, got 5"):
        train_unet(dataset, 5, 1, 0, text_embeddings=embeddings, log=None)
    with pytest.raises(InputError, match="in_channels"):
        build_unet(5, 0)
    with pytest.raises(InputError, match="masks must be bool"):
        latent_dataset(pipe.vae, crops, masks[:, :16], seed=0)
    with pytest.raises(InputError, match="masks must be bool"):
        latent_dataset(pipe.vae, crops, masks.astype(np.uint8), seed=0)
    with pytest.raises(InputError, match="images_uint8"):
        latent_dataset(pipe.vae, crops[:, :30, :30], masks[:, :30, :30], seed=0)
    with pytest.raises(InputError, match="batch_size"):
        train_unet(dataset, 9, 1, 0, text_embeddings=embeddings, batch_size=13, log=None)
    with pytest.raises(InputError, match="text_embeddings"):
        train_unet(dataset, 9, 1, 0, text_embeddings=torch.zeros(1, 77, 16), batch_size=4, log=None)
    with pytest.raises(InputError, match="dataset has no tensor 'mask'"):
        train_unet({"latents": dataset["latents"]}, 9, 1, 0, text_embeddings=embeddings, log=None)
    with pytest.raises(InputError, match=r"dataset\[.mask.\] must be \(12, 1, 4, 4\)"):
        bad = {**dataset, "mask": dataset["mask"][:, :, :2]}
        train_unet(bad, 9, 1, 0, text_embeddings=embeddings, batch_size=4, log=None)


def test_v_prediction_target_and_its_loss_in_noise_units(dataset, embeddings) -> None:
    """v-prediction (SD 2.x) learns v = sqrt(abar) noise - sqrt(1 - abar) x0; its held-out
    loss is measured in noise units (noise = sqrt(abar) v + sqrt(1 - abar) x_t), so the
    two kinds compare."""
    unet = build_unet(4, 2)
    result = denoising_loss(
        unet, dataset, embeddings, seed=3, timesteps=(500,), prediction_type="v_prediction"
    )
    noise = torch.randn(12, 4, 4, 4, generator=torch.Generator().manual_seed(3))
    betas = torch.linspace(0.00085**0.5, 0.012**0.5, 1000, dtype=torch.float64) ** 2
    alpha_bar = float(torch.cumprod(1 - betas, 0)[500])
    noisy = math.sqrt(alpha_bar) * dataset["latents"] + math.sqrt(1 - alpha_bar) * noise
    with torch.no_grad():
        v = unet(noisy, torch.full((12,), 500), encoder_hidden_states=embeddings.expand(12, -1, -1))
    as_noise = math.sqrt(alpha_bar) * v.sample + math.sqrt(1 - alpha_bar) * noisy
    expected = float(((as_noise - noise) ** 2).double().mean())
    assert result["per_timestep"] == {500: pytest.approx(expected, rel=1e-5)}
    # Training on the other target gives other weights from the same seed and data.
    eps, _ = train_unet(dataset, 4, 2, seed=0, text_embeddings=embeddings, batch_size=4, log=None)
    vel, history = train_unet(
        dataset,
        4,
        2,
        seed=0,
        text_embeddings=embeddings,
        batch_size=4,
        log=None,
        prediction_type="v_prediction",
    )
    assert len(history) == 2
    pairs = zip(weights(eps).values(), weights(vel).values(), strict=True)
    assert any(not torch.equal(a, b) for a, b in pairs)
    with pytest.raises(InputError, match="prediction_type must be one of"):
        train_unet(
            dataset,
            4,
            1,
            seed=0,
            text_embeddings=embeddings,
            batch_size=4,
            log=None,
            prediction_type="x0",
        )
