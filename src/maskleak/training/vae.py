"""Train a tiny Stable-Diffusion-shaped ``AutoencoderKL`` on CPU, deterministically from a
seed, and measure it against the exact 8x8 block-mean autoencoder.

The model is diffusers' own class with SD's layout (4 latent channels, 4 down/up blocks so
8x downsampling, ``scaling_factor`` 0.18215, attention in the mid block), only narrower, and
is saved as a diffusers folder that ``AutoencoderKL.from_pretrained`` loads like a real
checkpoint's ``vae/`` subfolder.

Units: images enter and leave as uint8 (N, H, W, 3) arrays in 0..255 with H, W multiples
of 8; inside, pixels are float32 in [-1, 1] (``x / 127.5 - 1``, as diffusers'
``VaeImageProcessor`` maps [0, 1] to [-1, 1]) in NCHW layout; latents are (N, 4, H/8, W/8)
in raw (unscaled) latent units.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from maskleak.errors import InputError

if TYPE_CHECKING:
    import torch

#: diffusers' AutoencoderKL; its lazy imports defeat static typing.
Vae = Any

#: SD's block_out_channels are (128, 256, 512, 512); this is 1/8 of that width. 3.9 MB of
#: float32 weights, 0.24 s per training step of 8 64x64 crops on one CPU thread
#: (bench/train_vae_speed.py); half the width costs 0.11 s but leaves only the 8 channels
#: of :func:`block_mean_init`'s construction at full resolution.
DEFAULT_BLOCK_OUT_CHANNELS = (16, 32, 64, 64)

#: Latent channels and downsampling factor of every Stable Diffusion 1.x/2.x VAE.
LATENT_CHANNELS = 4
DOWNSAMPLE_FACTOR = 8

#: SD's latent scale, kept so the saved config reads like SD's; the latents' actual std
#: after training is reported by :func:`latent_std` (SD chose 0.18215 as 1 / that std).
SCALING_FACTOR = 0.18215

#: One row of the training history; ``seconds`` is wall time since training began, the
#: only field that differs between two runs with the same seed.
HISTORY_FIELDS = ("step", "loss", "rec", "kl", "seconds")


def vae_config(
    block_out_channels: tuple[int, ...] = DEFAULT_BLOCK_OUT_CHANNELS,
    layers_per_block: int = 1,
    norm_num_groups: int = 1,
) -> dict[str, Any]:
    """The ``AutoencoderKL(**kwargs)`` keyword arguments of the tiny VAE.

    ``block_out_channels`` must have 4 entries (4 blocks give 8x downsampling, as in SD),
    each a multiple of ``norm_num_groups`` (GroupNorm needs it). ``norm_num_groups`` 1
    (SD has 32): :func:`block_mean_init` needs one group, so that the constant channels
    fix every main-path norm's std. (Measured from random weights: over 300 steps on
    flat-colour 64 px images, (8, 16, 32, 32) with 1, 2 or 8 groups learned equally
    slowly, 11-13 dB.)"""
    if len(block_out_channels) != 4:
        raise InputError(
            f"block_out_channels needs 4 entries for 8x downsampling, got {block_out_channels!r}"
        )
    groups = norm_num_groups
    if groups < 1 or any(c <= 0 or c % groups for c in block_out_channels):
        raise InputError(
            f"block_out_channels {block_out_channels!r} must be positive multiples of "
            f"norm_num_groups {groups}"
        )
    return {
        "in_channels": 3,
        "out_channels": 3,
        "down_block_types": ["DownEncoderBlock2D"] * 4,
        "up_block_types": ["UpDecoderBlock2D"] * 4,
        "block_out_channels": list(block_out_channels),
        "layers_per_block": layers_per_block,
        "act_fn": "silu",
        "latent_channels": LATENT_CHANNELS,
        "norm_num_groups": groups,
        "sample_size": 256,
        "scaling_factor": SCALING_FACTOR,
        "mid_block_add_attention": True,
    }


#: How :func:`build_vae` starts the weights: diffusers' seeded random initialisation, or
#: that followed by :func:`block_mean_init`.
INITS = ("block_mean", "random")


def build_vae(seed: int, config: Mapping[str, Any] | None = None, init: str = "random") -> Vae:
    """A freshly initialised ``AutoencoderKL`` (``config`` defaults to :func:`vae_config`),
    its weights fixed by ``seed`` (``torch.manual_seed`` just before construction), then
    set by :func:`block_mean_init` if ``init`` is ``"block_mean"`` (the weights that
    construction leaves alone keep their seeded random values)."""
    import torch
    from diffusers import AutoencoderKL

    if init not in INITS:
        raise InputError(f"VAE init must be one of {INITS}, got {init!r}")
    torch.manual_seed(seed)
    vae = AutoencoderKL(**dict(vae_config() if config is None else config))
    if init == "block_mean":
        block_mean_init(vae)
    return vae


def block_mean_init(vae: Vae, const: float = 100.0, bias: float = 20.0) -> None:
    """Set a freshly built tiny VAE (:func:`vae_config` with ``norm_num_groups=1``, any
    widths of at least 8) to start training as the exact 8x8 block-mean autoencoder of
    ``maskleak.tiny_models`` (latent = block mean RGB x ``LATENT_GAIN``, 4th channel 0,
    decoding repeats it over the block), with every other path switched off: each resnet's
    second conv and each attention's output projection zero (so they are identities that
    gradients can switch on), main-path convs zero outside channels 0-7.

    Why: trained from random weights, the tiny VAE learned luminance first and colour very
    slowly (1500 steps: 17.0 dB on the held-out images, each tinted by 20-60 levels, 4.8 dB
    below the block mean); started here it begins at the block mean's PSNR exactly and
    improves on it from the first hundred steps (measured: +0.78 dB after 1000 steps).

    How, and why it survives training: as in ``tiny_models.set_block_mean_vae``, the signal
    travels as +x and -x beside two constant channels +const and -const, so each
    (one-group) GroupNorm on the main path divides by a std fixed by the constants and is
    linear in x to a relative ~3/(2 const^2) (1.5e-4 at const 100). There the signal is
    O(1) and the constants large, where the control VAE scales the signal by 1e-3: every
    weight on the path is then O(0.1-20), so an optimiser step of ~1e-4 moves the map by
    ~1e-4 relative, not by 10 % (the control VAE, warm-started at lr 1e-4, fell to 6.7 dB
    in 100 steps)."""
    from maskleak.tiny_models import set_block_mean_path

    enc = vae.encoder
    if enc.conv_norm_out.num_groups != 1 or enc.conv_in.out_channels < 8:
        raise InputError("block_mean_init needs norm_num_groups=1 and >= 8 channels per block")
    set_block_mean_path(vae, signal=1.0, const=const, bias=bias)


def _check_images(images: np.ndarray, what: str) -> np.ndarray:
    arr = np.asarray(images)
    if arr.dtype != np.uint8 or arr.ndim != 4 or arr.shape[-1] != 3:
        raise InputError(
            f"{what} must be uint8 (N, H, W, 3), got {arr.dtype} with shape {arr.shape}"
        )
    height, width = arr.shape[1:3]
    if height % DOWNSAMPLE_FACTOR or width % DOWNSAMPLE_FACTOR or height == 0 or width == 0:
        raise InputError(f"{what} height and width must be multiples of 8, got {height}x{width}")
    return arr


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W, 3) in 0..255 -> float32 (N, 3, H, W) in [-1, 1]."""
    import torch

    arr = _check_images(images, "images")
    # A float copy: torch warns about (and must not alias) read-only uint8 arrays.
    pixels = torch.from_numpy(arr.astype(np.float32)).permute(0, 3, 1, 2)
    return pixels / 127.5 - 1.0


def to_uint8(pixels: torch.Tensor) -> np.ndarray:
    """float (N, 3, H, W) in [-1, 1] -> uint8 (N, H, W, 3), as diffusers' image processor
    does it: clamp (x / 2 + 0.5) to [0, 1], times 255, round half to even."""
    unit = (pixels.detach().float() / 2 + 0.5).clamp(0, 1)
    return np.rint(unit.permute(0, 2, 3, 1).cpu().numpy() * 255).astype(np.uint8)


def batch_source(
    batches: Iterable[np.ndarray] | Callable[[int], np.ndarray],
) -> Callable[[int], np.ndarray]:
    if callable(batches):
        return batches
    iterator = iter(batches)

    def next_batch(step: int) -> np.ndarray:
        try:
            return next(iterator)
        except StopIteration:
            raise InputError(f"training batches ran out at step {step}") from None

    return next_batch


def learning_rate(step: int, steps: int, peak: float, warmup: int) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine decay to 10 % of ``peak`` at the
    last step: the run stops on a fixed budget, and a decayed rate at the end gives better
    final weights than a constant one (the last steps average out the noise of the rest)."""
    if step <= warmup:
        return peak * step / max(warmup, 1)
    progress = (step - warmup) / max(steps - warmup, 1)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def train_vae(
    batches: Iterable[np.ndarray] | Callable[[int], np.ndarray],
    steps: int,
    seed: int,
    lr: float = 1e-4,
    kl_weight: float = 1e-6,
    log_every: int = 100,
    log: Callable[[str], None] | None = print,
    config: Mapping[str, Any] | None = None,
    warmup_steps: int | None = None,
    init: str = "block_mean",
) -> tuple[Vae, list[dict[str, float]]]:
    """Train a tiny VAE for exactly ``steps`` optimizer steps; return it (in eval mode) and
    one history row per step.

    ``batches``: an iterable of uint8 arrays (B, H, W, 3) (H, W multiples of 8), or a
    callable ``step -> array`` (step counts from 1), e.g. seeded random crops.

    Loss per step = rec + kl_weight * kl, where
      * rec: mean squared error per pixel element, in [-1, 1] units squared, between the
        image and the decoding of a posterior *sample* (reparameterised, drawn from a
        ``torch.Generator`` seeded with ``seed``). L2 rather than SD's L1: the quality bar
        is PSNR, a function of exactly this mean squared error, and SD's L1 comes paired
        with perceptual (LPIPS) and GAN terms that this training does not have;
      * kl: KL divergence of the diagonal-Gaussian posterior to N(0, I), in nats per latent
        element (diffusers' ``posterior.kl()`` divided by 4 * H/8 * W/8). It is what keeps
        the predicted log-variance finite: rec alone drives the variance to 0, the KL's
        0.5 * (var - 1 - log var) pulls it up, so the variance is learned and a sample
        differs from the mode (by little, as in SD, when ``kl_weight`` is small).

    Defaults, from short runs (batch 8, 64 px crops, 1 thread): ``lr`` 5e-4 learned flat
    colours fastest in 300 steps among 2e-4, 5e-4, 1e-3, 2e-3 and 8e-3; with ``kl_weight``
    1e-6 (SD's number, though SD's weighs sums, not means) samples stayed 45-53 dB PSNR
    from the mode after 2000-3000 steps (0.6-1.4 8-bit levels RMS): nearly deterministic,
    as SD's VAE is.

    Optimiser: AdamW at peak rate ``lr`` (weight decay 0.01), linear warm-up over
    ``warmup_steps`` (default: 5 % of steps, at most 200), cosine decay to 0.1 * lr;
    gradient norm clipped at 1. Deterministic: ``torch.manual_seed(seed)`` before building,
    ``torch.use_deterministic_algorithms(True)`` during training (restored after), so the
    same seed, data and thread count give bit-identical weights and history.

    History rows: ``step`` (1..steps), ``loss``, ``rec``, ``kl`` (that step's values, as
    above) and ``seconds`` (wall seconds since training began). ``log`` (None: silent)
    gets a progress line at step 1, every ``log_every`` steps and at the last step."""
    import torch

    if steps < 1:
        raise InputError(f"VAE training steps must be >= 1, got {steps}")
    if log_every < 1:
        raise InputError(f"VAE log_every must be >= 1, got {log_every}")
    next_batch = batch_source(batches)
    warmup = min(200, steps // 20) if warmup_steps is None else warmup_steps
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        vae = build_vae(seed, config, init)
        vae.train()
        optimizer = torch.optim.AdamW(vae.parameters(), lr=lr, weight_decay=0.01)
        generator = torch.Generator().manual_seed(seed)
        history: list[dict[str, float]] = []
        start = time.perf_counter()
        for step in range(1, steps + 1):
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(step, steps, lr, warmup)
            pixels = to_tensor(_check_images(next_batch(step), f"training batch {step}"))
            posterior = vae.encode(pixels).latent_dist
            decoded = vae.decode(posterior.sample(generator=generator)).sample
            rec = torch.mean((decoded - pixels) ** 2)
            kl = 0.5 * torch.mean(posterior.mean**2 + posterior.var - 1.0 - posterior.logvar)
            loss = rec + kl_weight * kl
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
            optimizer.step()
            row = {
                "step": step,
                "loss": loss.item(),
                "rec": rec.item(),
                "kl": kl.item(),
                "seconds": time.perf_counter() - start,
            }
            history.append(row)
            if log is not None and (step == 1 or step % log_every == 0 or step == steps):
                log(_progress_line(row, steps))
    finally:
        torch.use_deterministic_algorithms(was_deterministic)
    vae.eval()
    return vae, history


def _progress_line(row: Mapping[str, float], steps: int) -> str:
    step = int(row["step"])
    per_step = row["seconds"] / step
    eta_min = per_step * (steps - step) / 60
    return (
        f"vae step {step}/{steps} loss {row['loss']:.4f} rec {row['rec']:.4f} "
        f"kl {row['kl']:.3f} {per_step:.2f} s/step eta {eta_min:.1f} min"
    )


def reconstruct(vae: Vae, images_uint8: np.ndarray, mode: bool = True, seed: int = 0) -> np.ndarray:
    """Encode and decode uint8 (N, H, W, 3) images, one at a time; uint8, same shape.

    ``mode=True`` decodes the posterior mean (what ``vae.encode(x).latent_dist.mode()``
    gives); ``False`` decodes a sample drawn with a ``torch.Generator`` seeded with
    ``seed`` (one generator for all N images, in order), as pipelines that sample do."""
    import torch

    arr = _check_images(images_uint8, "images to reconstruct")
    generator = torch.Generator().manual_seed(seed)
    out = np.empty_like(arr)
    vae.eval()
    with torch.no_grad():
        for i in range(len(arr)):
            posterior = vae.encode(to_tensor(arr[i : i + 1])).latent_dist
            latent = posterior.mode() if mode else posterior.sample(generator=generator)
            out[i] = to_uint8(vae.decode(latent).sample)[0]
    return out


def latent_std(vae: Vae, images_uint8: np.ndarray) -> float:
    """Std of the posterior means of ``images_uint8`` over all latent elements, raw units.

    SD set ``scaling_factor`` to 1 / this value for its VAE (1 / 0.18215 = 5.49), so the
    scaled latents a UNet sees have unit std; compare it with 1 / ``SCALING_FACTOR``."""
    import torch

    arr = _check_images(images_uint8, "images")
    with torch.no_grad():
        means = [vae.encode(to_tensor(arr[i : i + 1])).latent_dist.mean for i in range(len(arr))]
    return float(torch.cat([m.flatten() for m in means]).std())


def normalise_latent_scale(vae: Vae, images_uint8: np.ndarray) -> float:
    """Rescale ``vae``'s latent space in place so the posterior means of ``images_uint8``
    have std 1 / ``SCALING_FACTOR`` (5.49), the std SD's VAE latents have; return the
    factor k applied. Reconstructions do not change.

    Why: the UNets learn on scaled latents (``latent * scaling_factor``), and the
    scheduler's noise is sized for unit std there. SD fixed its factor to fit its VAE; here
    the factor must stay SD's 0.18215, because the study's 0.11.1 pipeline hard-codes it,
    so the latents are fitted to the factor instead.

    How: exactly, through the two 1x1 convs around the latent: ``quant_conv``'s mean rows
    (weights and bias) times k, its log-variance rows' bias plus 2 log k (the posterior
    std scales with its mean), and ``post_quant_conv``'s input weights divided by k, so
    the decoder sees the same input as before."""
    import torch

    std = latent_std(vae, images_uint8)
    k = (1 / SCALING_FACTOR) / std
    with torch.no_grad():
        quant, post = vae.quant_conv, vae.post_quant_conv
        quant.weight[:LATENT_CHANNELS] *= k
        quant.bias[:LATENT_CHANNELS] *= k
        quant.bias[LATENT_CHANNELS:] += 2 * math.log(k)
        post.weight /= k
    return float(k)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio of two uint8 images or stacks of the same shape, in dB:
    10 * log10(255^2 / MSE), the MSE taken per element (every channel value of every
    pixel counts once, so not BrushBench's 3x-larger sum over channels); inf if equal."""
    x, y = np.asarray(a), np.asarray(b)
    if x.shape != y.shape or x.dtype != np.uint8 or y.dtype != np.uint8:
        raise InputError(
            f"psnr needs two uint8 arrays of one shape, got {x.dtype}{x.shape} and "
            f"{y.dtype}{y.shape}"
        )
    mse = np.mean((x.astype(np.float64) - y.astype(np.float64)) ** 2)
    return math.inf if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def block_mean(images_uint8: np.ndarray, factor: int = 8) -> np.ndarray:
    """The baseline autoencoder: every ``factor`` x ``factor`` block of each image (N, H,
    W, 3) uint8, H and W multiples of ``factor``, replaced by its mean colour per channel,
    rounded half to even (exact: the block sum is an integer, sum / factor^2 is exact in
    float64 for factor a power of 2)."""
    arr = np.asarray(images_uint8)
    if arr.dtype != np.uint8 or arr.ndim != 4:
        raise InputError(f"block_mean needs uint8 (N, H, W, C), got {arr.dtype}{arr.shape}")
    n, height, width, channels = arr.shape
    if height % factor or width % factor:
        raise InputError(f"block_mean: {height}x{width} is not a multiple of {factor}")
    blocks = arr.reshape(n, height // factor, factor, width // factor, factor, channels)
    sums = blocks.sum(axis=(2, 4), dtype=np.int64)
    means = np.rint(sums / factor**2).astype(np.uint8)
    return np.repeat(np.repeat(means, factor, axis=1), factor, axis=2)


def quality_report(
    vae: Vae, images: Mapping[str, np.ndarray], seed: int = 0
) -> list[dict[str, Any]]:
    """The issue's quality bar, per held-out image (name -> uint8 (H, W, 3), H and W
    multiples of 8): PSNR in dB against the image of the VAE's mode reconstruction
    (``psnr_mode_db``), of a sample's (``psnr_sample_db``, generator seeded with
    ``seed``), of the 8x8 block mean (``psnr_block_mean_db``), their margin
    (``margin_db`` = mode - block mean; the bar is >= 1 dB), and the PSNR of the sample
    against the mode (``psnr_sample_vs_mode_db``: how much the learned variance moves
    pixels; SD's own VAE is nearly deterministic)."""
    rows = []
    for name, image in images.items():
        batch = np.asarray(image)[None]
        mode = reconstruct(vae, batch)
        sample = reconstruct(vae, batch, mode=False, seed=seed)
        row = {
            "image": name,
            "height": batch.shape[1],
            "width": batch.shape[2],
            "psnr_mode_db": psnr(mode, batch),
            "psnr_sample_db": psnr(sample, batch),
            "psnr_block_mean_db": psnr(block_mean(batch), batch),
            "psnr_sample_vs_mode_db": psnr(sample, mode),
        }
        row["margin_db"] = row["psnr_mode_db"] - row["psnr_block_mean_db"]
        rows.append(row)
    return rows


def history_summary(history: list[dict[str, float]], window: int = 100) -> dict[str, Any]:
    """Loss summary for provenance: first row, means over the last ``window`` steps, and
    total wall seconds."""
    if not history:
        return {"steps": 0}
    tail = history[-window:]
    return {
        "steps": int(history[-1]["step"]),
        "first": {k: history[0][k] for k in ("loss", "rec", "kl")},
        f"last_{len(tail)}_mean": {
            k: float(np.mean([row[k] for row in tail])) for k in ("loss", "rec", "kl")
        },
        "train_seconds": round(history[-1]["seconds"], 1),
    }
