"""Train the tiny inpainting UNets (9-channel and 4-channel) on CPU as latent diffusion,
deterministically from a seed, with Stable Diffusion inpainting's objective.

The model is the tiny pipeline's own ``UNet2DConditionModel``
(:func:`maskleak.tiny_models.tiny_unet_config`), trained to predict the noise (epsilon,
SD's parameterisation) that SD 1.5's DDPM schedule (``sd15_scheduler``'s betas,
``DDPMScheduler.add_noise``) added to a VAE latent, conditioned on the empty prompt's
text embeddings. The 9-channel UNet also sees what ``StableDiffusionInpaintPipeline``
concatenates at inference, in its order: the latent-resolution mask and the latents of
the masked image. The 4-channel UNet sees the noisy latents only (the plain SD
objective; the pipeline blends the image latents back outside the mask at inference).

Units and shapes: images enter as uint8 (N, H, W, 3) in 0..255 and masks as bool
(N, H, W), True = inpaint, with H and W multiples of 8; pixels become float32 in [-1, 1];
latents are (N, 4, H/8, W/8) *scaled* latents (``vae.config.scaling_factor`` times the
posterior sample, what the UNet sees in the pipeline); the latent mask is (N, 1, H/8,
W/8) float32 in {0, 1}. Losses are mean squared errors per latent element between
predicted and true noise (unit-variance noise, so an untrained model scores about 1).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from maskleak.errors import InputError
from maskleak.training.vae import learning_rate, to_tensor

if TYPE_CHECKING:
    import torch

#: diffusers' UNet2DConditionModel / AutoencoderKL and transformers' CLIP classes; their
#: lazy imports defeat static typing.
Unet = Any
Vae = Any

#: The tensors of a training or evaluation set (see :func:`latent_dataset`).
DATASET_KEYS = ("latents", "mask", "masked_image_latents")

#: Images encoded per ``vae.encode`` call in :func:`latent_dataset`. The posterior
#: samples are drawn chunk by chunk from one generator, so the chunk size is part of
#: what fixes the latents (torch's CPU normal sampler fills blocks of values, so one
#: draw of 2n values and two of n need not agree); recorded in provenance.
ENCODE_CHUNK = 64

#: SD 1.x's training schedule length: timesteps are drawn uniformly from 0..999.
NUM_TRAIN_TIMESTEPS = 1000

#: Timesteps :func:`denoising_loss` evaluates, evenly spread over the schedule: 50 (almost
#: clean latents, the noise is hard to see) to 950 (almost pure noise).
TIMESTEP_GRID: tuple[int, ...] = tuple(range(50, NUM_TRAIN_TIMESTEPS, 100))

#: What the UNet learns to predict (diffusers' ``prediction_type``): the noise (SD 1.x's
#: epsilon) or the velocity sqrt(abar) noise - sqrt(1 - abar) x0 (SD 2.x's v-prediction).
PREDICTION_TYPES = ("epsilon", "v_prediction")

#: One row of the training history; ``seconds`` is wall time since training began, the
#: only field that differs between two runs with the same seed.
HISTORY_FIELDS = ("step", "loss", "seconds")


# ----------------------------------------------------------------------------- inputs


def _check_masks(images: np.ndarray, masks: np.ndarray) -> np.ndarray:
    arr = np.asarray(masks)
    if arr.dtype != np.bool_ or arr.shape != images.shape[:3]:
        raise InputError(
            f"masks must be bool (N, H, W) matching images_uint8 {images.shape[:3]}, got "
            f"{arr.dtype} with shape {arr.shape}"
        )
    return arr


def _check_images(images_uint8: np.ndarray) -> np.ndarray:
    arr = np.asarray(images_uint8)
    if arr.dtype != np.uint8 or arr.ndim != 4 or arr.shape[-1] != 3 or len(arr) == 0:
        raise InputError(
            f"images_uint8 must be uint8 (N, H, W, 3) with N >= 1, got {arr.dtype} with "
            f"shape {arr.shape}"
        )
    height, width = arr.shape[1:3]
    if height % 8 or width % 8 or height == 0 or width == 0:
        raise InputError(
            f"images_uint8 height and width must be multiples of 8, got {height}x{width}"
        )
    return arr


def _sample_latents(vae: Vae, pixels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """``StableDiffusionInpaintPipeline._encode_vae_image`` for one generator: a posterior
    sample (``retrieve_latents``' default mode) times the VAE's scaling factor."""
    return vae.config.scaling_factor * vae.encode(pixels).latent_dist.sample(generator)


def latent_dataset(
    vae: Vae,
    images_uint8: np.ndarray,
    masks: np.ndarray,
    seed: int,
    chunk: int = ENCODE_CHUNK,
) -> dict[str, torch.Tensor]:
    """Encode images and masks into exactly what ``StableDiffusionInpaintPipeline`` (diffusers
    0.42) feeds its UNet, once, so training never runs the VAE.

    ``vae``: any ``AutoencoderKL`` (the tiny pipeline's block-mean one, a trained one).
    ``images_uint8``: uint8 (N, H, W, 3); ``masks``: bool (N, H, W), True = inpaint; H and
    W multiples of 8.

    Returns float32 tensors:
      * ``latents`` (N, 4, H/8, W/8): ``scaling_factor * vae.encode(image).latent_dist
        .sample(generator)``, the image in [-1, 1] (``x / 127.5 - 1``, bit-identical to
        the pipeline's ``image_processor.preprocess``);
      * ``masked_image_latents`` (N, 4, H/8, W/8): the same for ``image * (mask < 0.5)``
        (the masked pixels set to 0, mid grey), as ``prepare_mask_latents`` makes them;
      * ``mask`` (N, 1, H/8, W/8): ``torch.nn.functional.interpolate(mask, size=(H/8,
        W/8))``, the pipeline's default nearest mode, which keeps the top-left pixel of
        every 8x8 block.

    Randomness: one ``torch.Generator`` seeded with ``seed``; for each chunk of ``chunk``
    images in order, the image latents' sample is drawn first, then the masked image's
    (the pipeline's order for a 4-channel UNet: ``prepare_latents`` encodes the image
    before ``prepare_mask_latents`` encodes the masked image). Encoded under
    ``torch.no_grad()`` with the VAE in eval mode."""
    import torch

    images = _check_images(images_uint8)
    mask_arr = _check_masks(images, masks)
    if not isinstance(chunk, int) or chunk < 1:
        raise InputError(f"chunk must be an integer >= 1, got {chunk!r}")
    height, width = images.shape[1:3]
    latent_size = (height // 8, width // 8)
    generator = torch.Generator().manual_seed(seed)
    out: dict[str, list[torch.Tensor]] = {key: [] for key in DATASET_KEYS}
    vae.eval()
    with torch.no_grad():
        for start in range(0, len(images), chunk):
            pixels = to_tensor(images[start : start + chunk])
            mask = torch.from_numpy(mask_arr[start : start + chunk, None].astype(np.float32))
            masked = pixels * (mask < 0.5)
            out["latents"].append(_sample_latents(vae, pixels, generator))
            out["masked_image_latents"].append(_sample_latents(vae, masked, generator))
            out["mask"].append(torch.nn.functional.interpolate(mask, size=latent_size))
    return {key: torch.cat(parts).float() for key, parts in out.items()}


def empty_prompt_embeddings(text_encoder: Any, tokenizer: Any) -> torch.Tensor:
    """The empty prompt's text embeddings (1, 77, hidden size), float32, exactly as the
    pipeline's ``encode_prompt("")`` makes them: tokens padded to ``max_length`` (the
    tokenizer's 77), no attention mask unless the encoder's config asks for one, the
    last hidden state. With classifier-free guidance the pipeline's unconditional
    embedding is the same "", so guidance has no effect on these models."""
    import torch

    tokens = tokenizer(
        "",
        padding="max_length",
        max_length=tokenizer.model_max_length,
        truncation=True,
        return_tensors="pt",
    )
    attention_mask = (
        tokens.attention_mask if getattr(text_encoder.config, "use_attention_mask", False) else None
    )
    text_encoder.eval()
    with torch.no_grad():
        hidden = text_encoder(tokens.input_ids, attention_mask=attention_mask)[0]
    return hidden.to(dtype=text_encoder.dtype).detach()


def _check_dataset(dataset: Mapping[str, torch.Tensor], in_channels: int) -> int:
    """Number of rows; InputError naming the key when a tensor is missing or misshapen."""
    import torch

    needed = DATASET_KEYS if in_channels == 9 else ("latents",)
    for key in needed:
        if key not in dataset or not isinstance(dataset[key], torch.Tensor):
            raise InputError(f"dataset has no tensor {key!r} (latent_dataset makes it)")
    latents = dataset["latents"]
    if latents.ndim != 4 or latents.shape[1] != 4 or len(latents) == 0:
        raise InputError(
            f"dataset['latents'] must be (N >= 1, 4, h, w), got {tuple(latents.shape)}"
        )
    n, _, h, w = latents.shape
    expected = {"mask": (n, 1, h, w), "masked_image_latents": (n, 4, h, w)}
    for key in needed[1:]:
        if tuple(dataset[key].shape) != expected[key]:
            raise InputError(
                f"dataset[{key!r}] must be {expected[key]} like dataset['latents'], got "
                f"{tuple(dataset[key].shape)}"
            )
    return n


def _check_embeddings(text_embeddings: torch.Tensor, config: Mapping[str, Any]) -> None:
    width = config["cross_attention_dim"]
    shape = tuple(getattr(text_embeddings, "shape", ()))
    if len(shape) != 3 or shape[0] != 1 or shape[2] != width:
        raise InputError(
            f"text_embeddings must be (1, tokens, {width}) (empty_prompt_embeddings), got {shape}"
        )


# ---------------------------------------------------------------------------- training


def unet_input(
    noisy: torch.Tensor, dataset: Mapping[str, torch.Tensor], rows: torch.Tensor, in_channels: int
) -> torch.Tensor:
    """The UNet's input for dataset ``rows``: ``noisy`` (B, 4, h, w) alone for a
    4-channel UNet; for a 9-channel one ``cat([noisy, mask, masked_image_latents], dim=1)``
    (B, 9, h, w), the order ``StableDiffusionInpaintPipeline`` concatenates them in."""
    import torch

    if in_channels == 4:
        return noisy
    return torch.cat([noisy, dataset["mask"][rows], dataset["masked_image_latents"][rows]], dim=1)


def build_unet(in_channels: int, seed: int, config: Mapping[str, Any] | None = None) -> Unet:
    """A freshly initialised UNet (``config`` defaults to the tiny pipeline's,
    :func:`maskleak.tiny_models.tiny_unet_config`), weights fixed by
    ``torch.manual_seed(seed)`` just before construction: with the default config and the
    same seed, the very UNet ``build_tiny_pipeline(in_channels, seed)`` holds."""
    import torch
    from diffusers import UNet2DConditionModel

    from maskleak.tiny_models import tiny_unet_config

    if in_channels not in (4, 9):
        raise InputError(f"in_channels must be 4 or 9, got {in_channels!r}")
    cfg = dict(tiny_unet_config(in_channels) if config is None else config)
    if cfg.get("in_channels") != in_channels or cfg.get("out_channels", 4) != 4:
        raise InputError(
            f"config must have in_channels {in_channels} and out_channels 4, got "
            f"{cfg.get('in_channels')!r} and {cfg.get('out_channels')!r}"
        )
    torch.manual_seed(seed)
    return UNet2DConditionModel(**cfg)


def noise_scheduler() -> Any:
    """SD 1.5's training schedule: ``DDPMScheduler`` with ``sd15_scheduler``'s config
    (scaled-linear betas 0.00085 to 0.012 over 1000 steps), whose ``add_noise`` gives
    sqrt(abar_t) x + sqrt(1 - abar_t) noise."""
    from diffusers import DDPMScheduler

    from maskleak.tiny_models import sd15_scheduler

    return DDPMScheduler.from_config(sd15_scheduler().config)


def train_unet(
    dataset: Mapping[str, torch.Tensor],
    in_channels: int,
    steps: int,
    seed: int,
    *,
    text_embeddings: torch.Tensor,
    batch_size: int = 16,
    lr: float = 3e-3,
    log_every: int = 100,
    log: Callable[[str], None] | None = print,
    warmup_steps: int | None = None,
    config: Mapping[str, Any] | None = None,
    prediction_type: str = "epsilon",
) -> tuple[Unet, list[dict[str, float]]]:
    """Train a tiny UNet for exactly ``steps`` optimizer steps; return it (in eval mode)
    and one history row per step.

    ``dataset``: :func:`latent_dataset`'s tensors (a 4-channel UNet needs ``latents``
    only). ``in_channels``: 9 (inpainting: noisy latents, mask, masked-image latents) or
    4 (noisy latents). ``text_embeddings``: (1, 77, 32), :func:`empty_prompt_embeddings`
    of the tiny text encoder, repeated over the batch. ``config``: the UNet's (default
    the tiny pipeline's, see :func:`build_unet`).

    Each step: ``batch_size`` dataset rows (a fresh random permutation of all rows per
    epoch, so every row is seen once per pass), one timestep per row uniform in 0..999,
    unit Gaussian noise, ``noisy = noise_scheduler().add_noise(latents, noise, t)``; loss
    = mean squared error between the UNet's output and the noise (epsilon prediction,
    SD's objective), averaged over all latent elements.

    Optimiser: AdamW at peak rate ``lr`` (weight decay 0.01), linear warm-up over
    ``warmup_steps`` (default 5 % of steps, at most 200), cosine decay to 0.1 * lr
    (``training.vae.learning_rate``); gradient norm clipped at 1. Deterministic:
    ``torch.manual_seed(seed)`` before building, every draw (rows, timesteps, noise, in
    that order per step) from one ``torch.Generator`` seeded with ``seed``, and
    ``torch.use_deterministic_algorithms(True)`` during training (restored after): the
    same data, seed and thread count give bit-identical weights and history.

    History rows: ``step`` (1..steps), ``loss`` (that step's) and ``seconds`` (wall
    seconds since training began). ``log`` (None: silent) gets a progress line at step
    1, every ``log_every`` steps and at the last step.

    Defaults, from runs on 2048 96 px training crops (12x12 latents) with random masks,
    encoded by the tiny pipeline's block-mean VAE, 1 thread, held-out loss on 192 crops
    of the six evaluation images (:func:`denoising_loss`, untrained 1.09): after 400
    9-channel steps at batch 16, ``lr`` 3e-4 / 1e-3 / 3e-3 gave 0.196 / 0.146 / 0.117;
    3000 steps at 3e-3 (6 min at 0.12 s/step) gave 0.074 (9 channels) and 0.126 (4
    channels), with training loss still falling slowly."""
    import torch

    if in_channels not in (4, 9):
        raise InputError(f"in_channels must be 4 or 9, got {in_channels!r}")
    if not isinstance(steps, int) or steps < 1:
        raise InputError(f"UNet training steps must be an integer >= 1, got {steps!r}")
    if not isinstance(log_every, int) or log_every < 1:
        raise InputError(f"UNet log_every must be an integer >= 1, got {log_every!r}")
    n_rows = _check_dataset(dataset, in_channels)
    if not isinstance(batch_size, int) or not 1 <= batch_size <= n_rows:
        raise InputError(
            f"batch_size must be an integer in 1..{n_rows} (the dataset's rows), got {batch_size!r}"
        )
    if not lr > 0:
        raise InputError(f"UNet learning rate lr must be > 0, got {lr!r}")
    _check_prediction_type(prediction_type)
    warmup = min(200, steps // 20) if warmup_steps is None else warmup_steps
    scheduler = noise_scheduler()
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        unet = build_unet(in_channels, seed, config)
        _check_embeddings(text_embeddings, unet.config)
        context = text_embeddings.detach().float().expand(batch_size, -1, -1)
        unet.train()
        optimizer = torch.optim.AdamW(unet.parameters(), lr=lr, weight_decay=0.01)
        generator = torch.Generator().manual_seed(seed)
        order = torch.randperm(n_rows, generator=generator)
        position = 0
        history: list[dict[str, float]] = []
        start = time.perf_counter()
        for step in range(1, steps + 1):
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(step, steps, lr, warmup)
            if position + batch_size > n_rows:  # next epoch: the rest, then a new order
                order = torch.cat([order[position:], torch.randperm(n_rows, generator=generator)])
                position = 0
            rows = order[position : position + batch_size]
            position += batch_size
            latents = dataset["latents"][rows]
            timesteps = torch.randint(
                0, NUM_TRAIN_TIMESTEPS, (batch_size,), generator=generator, dtype=torch.long
            )
            noise = torch.randn(latents.shape, generator=generator)
            noisy = scheduler.add_noise(latents, noise, timesteps)
            sample = unet_input(noisy, dataset, rows, in_channels)
            prediction = unet(sample, timesteps, encoder_hidden_states=context).sample
            target = (
                noise
                if prediction_type == "epsilon"
                else scheduler.get_velocity(latents, noise, timesteps)
            )
            loss = torch.nn.functional.mse_loss(prediction, target)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
            optimizer.step()
            history.append(
                {"step": step, "loss": loss.item(), "seconds": time.perf_counter() - start}
            )
            if log is not None and (step == 1 or step % log_every == 0 or step == steps):
                log(_progress_line(history, steps, in_channels, log_every))
    finally:
        torch.use_deterministic_algorithms(was_deterministic)
    unet.eval()
    return unet, history


def _progress_line(
    history: list[dict[str, float]], steps: int, in_channels: int, log_every: int
) -> str:
    row = history[-1]
    step = int(row["step"])
    per_step = row["seconds"] / step
    eta_min = per_step * (steps - step) / 60
    # One step's loss swings with its random timesteps; the window mean shows the trend.
    window = history[-log_every:]
    mean = sum(r["loss"] for r in window) / len(window)
    return (
        f"unet{in_channels} step {step}/{steps} loss {row['loss']:.4f} "
        f"mean{len(window)} {mean:.4f} {per_step:.2f} s/step eta {eta_min:.1f} min"
    )


# -------------------------------------------------------------------------- evaluation


def denoising_loss(
    unet: Unet,
    dataset: Mapping[str, torch.Tensor],
    text_embeddings: torch.Tensor,
    seed: int,
    timesteps: Sequence[int] = TIMESTEP_GRID,
    batch_size: int = 64,
    prediction_type: str = "epsilon",
) -> dict[str, Any]:
    """Held-out denoising loss of ``unet`` on ``dataset`` (:func:`latent_dataset`'s
    tensors of images never trained on) at a fixed grid of timesteps with fixed noise.

    For each ``t`` of ``timesteps`` in order, noise for every row is drawn from one
    ``torch.Generator`` seeded with ``seed`` (so every model evaluated with the same
    seed and dataset sees the very same noisy latents, whatever its channels), the
    latents are noised to ``t`` and the UNet predicts the noise (9-channel UNets also
    get the mask and masked-image latents, as in training).

    Returns ``per_timestep`` ({t: MSE per latent element}), ``mean`` (their mean: every
    t weighs the same), and the same two over the latent elements whose latent mask is
    1 / 0: ``per_timestep_inside_mask`` / ``mean_inside_mask`` (what an inpainting model
    must invent) and ``per_timestep_outside_mask`` / ``mean_outside_mask`` (what a
    9-channel model can read from the masked-image latents); NaN on a side with no
    element, and for a dataset without ``mask``. The issue's bar: a trained model's
    ``mean`` at most half the untrained (freshly seeded) model's."""
    import torch

    _check_prediction_type(prediction_type)
    in_channels = unet.config.in_channels
    # A dataset with masks is checked whole, so the inside/outside split can use them.
    n_rows = _check_dataset(dataset, 9 if "mask" in dataset else in_channels)
    _check_embeddings(text_embeddings, unet.config)
    scheduler = noise_scheduler()
    generator = torch.Generator().manual_seed(seed)
    latents = dataset["latents"]
    inside = dataset["mask"].expand_as(latents) > 0.5 if "mask" in dataset else None
    per_t: dict[int, float] = {}
    per_t_inside: dict[int, float] = {}
    per_t_outside: dict[int, float] = {}
    unet.eval()
    with torch.no_grad():
        for t in timesteps:
            if not 0 <= int(t) < NUM_TRAIN_TIMESTEPS:
                raise InputError(f"timesteps must lie in 0..{NUM_TRAIN_TIMESTEPS - 1}, got {t}")
            noise = torch.randn(latents.shape, generator=generator)
            error = torch.empty_like(latents)
            for lo in range(0, n_rows, batch_size):
                rows = torch.arange(lo, min(lo + batch_size, n_rows))
                steps_t = torch.full((len(rows),), int(t), dtype=torch.long)
                noisy = scheduler.add_noise(latents[rows], noise[rows], steps_t)
                context = text_embeddings.float().expand(len(rows), -1, -1)
                prediction = unet(
                    unet_input(noisy, dataset, rows, in_channels),
                    steps_t,
                    encoder_hidden_states=context,
                ).sample
                if prediction_type == "v_prediction":
                    # In noise units, so that models of either kind compare:
                    # noise = sqrt(abar) v + sqrt(1 - abar) x_t.
                    abar = scheduler.alphas_cumprod[int(t)]
                    prediction = abar.sqrt() * prediction + (1 - abar).sqrt() * noisy
                error[rows] = (prediction - noise[rows]) ** 2
            per_t[int(t)] = float(error.double().mean())
            per_t_inside[int(t)] = _masked_mean(error, inside)
            per_t_outside[int(t)] = _masked_mean(error, None if inside is None else ~inside)
    return {
        "per_timestep": per_t,
        "mean": _mean(per_t),
        "per_timestep_inside_mask": per_t_inside,
        "mean_inside_mask": _mean(per_t_inside),
        "per_timestep_outside_mask": per_t_outside,
        "mean_outside_mask": _mean(per_t_outside),
    }


def _mean(per_t: Mapping[int, float]) -> float:
    values = list(per_t.values())
    return math.nan if not values or any(math.isnan(v) for v in values) else float(np.mean(values))


def _masked_mean(error: torch.Tensor, where: torch.Tensor | None) -> float:
    """Mean of ``error`` where ``where`` is True; NaN if nowhere (or no mask given)."""
    count = 0 if where is None else int(where.sum())
    return float(error[where].double().sum() / count) if count else math.nan


# ------------------------------------------------------------------------------ saving


def history_summary(history: list[dict[str, float]], window: int = 100) -> dict[str, Any]:
    """Loss summary for provenance: the first step's loss, the mean over the last
    ``window`` steps, and total wall seconds."""
    if not history:
        return {"steps": 0}
    tail = history[-window:]
    return {
        "steps": int(history[-1]["step"]),
        "first_loss": history[0]["loss"],
        f"last_{len(tail)}_mean_loss": float(np.mean([row["loss"] for row in tail])),
        "train_seconds": round(history[-1]["seconds"], 1),
    }


def _check_prediction_type(prediction_type: str) -> None:
    if prediction_type not in PREDICTION_TYPES:
        raise InputError(
            f"prediction_type must be one of {PREDICTION_TYPES}, got {prediction_type!r}"
        )
