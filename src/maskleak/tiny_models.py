"""Offline diffusion models built in code, with no download: the tiny Stable-Diffusion-shaped
inpainting pipeline (seeded random UNet and text encoder, the exact block-mean VAE), and
SD 1.5's exact architecture with random weights for throughput measurements."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from maskleak.errors import InputError

if TYPE_CHECKING:
    import torch

#: diffusers' StableDiffusionInpaintPipeline; its lazy imports defeat static typing.
InpaintPipeline = Any


def _clip_vocab() -> tuple[dict[str, int], list[str]]:
    """A minimal byte-level BPE vocabulary in CLIP's layout, so CLIPTokenizer loads with no
    download: the 256 byte symbols, the same with ``</w>``, a few merges, and the specials."""
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    symbols = list(bytes_to_unicode().values())
    merges = ["t h", "th e</w>", "a n", "an d</w>"]
    tokens = symbols + [s + "</w>" for s in symbols] + ["th", "the</w>", "an", "and</w>"]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    return {tok: i for i, tok in enumerate(tokens)}, merges


def _offline_tokenizer() -> tuple[Any, dict[str, int]]:
    """A CLIPTokenizer built from :func:`_clip_vocab` (no download), and its vocabulary.

    transformers 5's constructor takes the vocabulary and merges themselves; given only
    ``vocab_file``/``merges_file`` it silently falls back to a 3-token vocabulary."""
    from transformers import CLIPTokenizer

    vocab, merges = _clip_vocab()
    # Annotated as list[str], but the BPE backend needs (left, right) pairs at run time.
    pairs = [tuple(merge.split(" ")) for merge in merges]
    tokenizer = CLIPTokenizer(vocab=vocab, merges=pairs, model_max_length=77)  # type: ignore[arg-type]
    return tokenizer, vocab


def sd15_scheduler(prediction_type: str = "epsilon") -> Any:
    """SD 1.5's own scheduler settings, so "default" means what it means for SD 1.5;
    ``prediction_type`` is what the UNet it samples predicts (SD 1.5's noise, or
    ``v_prediction``)."""
    from diffusers import PNDMScheduler

    scheduler: Any = PNDMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        num_train_timesteps=1000,
        skip_prk_steps=True,
        set_alpha_to_one=False,
        steps_offset=1,
        prediction_type=prediction_type,
    )
    # PNDM has no clip_sample, but SD 1.5's scheduler_config.json says false, and a
    # scheduler switched in with from_config (DDIM, DDPM) reads it from there: without
    # it DDIM clips its x0 estimate to [-1, 1], which unit-std latents overrun.
    scheduler.register_to_config(clip_sample=False)
    return scheduler


def tiny_unet_config(in_channels: int) -> dict[str, Any]:
    """The ``UNet2DConditionModel(**kwargs)`` keyword arguments of the tiny pipeline's UNet:
    SD's block types and cross-attention, 2 levels of (32, 64) channels, one resnet per
    block, 32-wide text embeddings. ``in_channels`` 9 is the inpainting layout (noisy
    latents, mask, masked-image latents), 4 the plain text-to-image one."""
    if in_channels not in (4, 9):
        raise InputError(f"unet_in_channels must be 4 or 9, got {in_channels!r}")
    return {
        "sample_size": 32,
        "in_channels": in_channels,
        "out_channels": 4,
        "layers_per_block": 1,
        "block_out_channels": (32, 64),
        "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D"),
        "up_block_types": ("CrossAttnUpBlock2D", "UpBlock2D"),
        "cross_attention_dim": 32,
        "attention_head_dim": 8,
    }


def build_tiny_text_encoder(seed: int) -> tuple[Any, Any]:
    """``(text_encoder, tokenizer)`` exactly as ``build_tiny_pipeline(_, seed)`` has them:
    a 2-layer, 32-wide ``CLIPTextModel`` whose weights are fixed by ``torch.manual_seed(seed
    + 2)`` just before construction, and the offline CLIP tokenizer (77 tokens)."""
    import torch
    from transformers import CLIPTextConfig, CLIPTextModel

    tokenizer, vocab = _offline_tokenizer()
    torch.manual_seed(seed + 2)
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(vocab),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=77,
            bos_token_id=vocab["<|startoftext|>"],
            eos_token_id=vocab["<|endoftext|>"],
            pad_token_id=vocab["<|endoftext|>"],
        )
    )
    return text_encoder, tokenizer


def build_tiny_pipeline(unet_in_channels: int, seed: int) -> InpaintPipeline:
    """A small Stable-Diffusion-shaped inpainting pipeline: UNet and text encoder with
    seeded random weights, and the exact block-mean VAE of :func:`set_block_mean_vae`.

    Same classes, latent layout (4 channels, 8x VAE) and scheduler as SD 1.5, so the
    pipeline runs exactly the code a real checkpoint runs. ``unet_in_channels`` 9 mimics the
    SD inpainting checkpoint; 4 mimics a plain text-to-image checkpoint, for which the
    pipeline blends image latents back outside the mask at every step. The UNet is
    :func:`tiny_unet_config`'s, seeded by ``torch.manual_seed(seed)``; the text encoder
    :func:`build_tiny_text_encoder`'s."""
    import torch
    from diffusers import AutoencoderKL, StableDiffusionInpaintPipeline, UNet2DConditionModel

    config = tiny_unet_config(unet_in_channels)
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(**config)
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(8, 8, 8, 8),
        latent_channels=4,
        norm_num_groups=1,
        layers_per_block=1,
        mid_block_add_attention=False,
        sample_size=256,
        scaling_factor=SD_LATENT_SCALE,
    )
    set_block_mean_vae(vae)
    text_encoder, tokenizer = build_tiny_text_encoder(seed)
    return StableDiffusionInpaintPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=sd15_scheduler(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


#: Stable Diffusion's latent scale (``vae.config.scaling_factor``; the study's 0.11.1
#: pipeline hard-codes it). SD chose it as 1 / the std of its VAE's latents, so scaled
#: latents have unit std and the scheduler's noise is sized against them.
SD_LATENT_SCALE = 0.18215

#: Std of an 8x8 block mean of natural images in [-1, 1] pixel units (0.23-0.56, mean
#: 0.39, over the default config's six images).
TYPICAL_BLOCK_STD = 0.4

#: Raw latent per unit of block-mean pixel value. With it, the tiny VAE's latents scaled
#: by SD's factor have about unit std, as SD's do, so a given amount of scheduler noise
#: (e.g. the noise the study's pipeline leaves on the kept latents at its last step)
#: weighs as much against the image as it does in Stable Diffusion. Without it (gain 1)
#: the scaled latents' std would be ~0.07, and that noise would look 14x larger.
LATENT_GAIN = 1 / (SD_LATENT_SCALE * TYPICAL_BLOCK_STD)

#: Std of the tiny VAE's posterior, in raw latent units: half an 8-bit level (one level
#: is 2/255 in [-1, 1] pixel units) times the gain. Stable Diffusion's VAE is nearly
#: deterministic (its predicted log-variances are tiny: a sample differs from the mode by
#: an invisible amount), and pipelines that sample it (the study's 0.11.1 Legacy
#: pipeline; today's, which sample by default) should see that here too: a sample moves a
#: decoded block by about half a level, so rounding changes some pixels by one level.
POSTERIOR_STD = 0.5 * 2 / 255 * LATENT_GAIN


def set_block_mean_vae(
    vae: Any,
    eps: float = 1e-3,
    const: float = 1.0,
    bias: float = 20.0,
    latent_gain: float = LATENT_GAIN,
) -> None:
    """Turn a tiny AutoencoderKL (8 channels everywhere, one norm group, one resnet per
    block, no attention) into an exact, interpretable autoencoder: the latent of each
    8x8 pixel block is its mean RGB times ``latent_gain`` (4th channel 0), and decoding
    repeats that mean over the block. No training, no randomness.

    Why this VAE: its round trip loses exactly what a latent bottleneck loses (detail
    within 8x8 blocks), so flat regions survive and textured ones do not, and a mask
    applied at latent resolution changes whole 8x8 blocks at the mask edge: the two
    explanations the study offers for its observations, each isolated.

    How: every resnet's second conv is zero, so each resnet is the identity. Signals
    travel as a pair of channels +eps*x and -eps*x beside two constant channels +const
    and -const, so the final GroupNorm's mean is exactly 0 and its std is fixed by the
    constants (the signal moves it by ~eps^2 relative, which keeps a faint global
    coupling, as real VAEs' GroupNorms have). The norm's affine maps the signal to
    ``bias + x`` where SiLU is the identity to ~1e-7, and the odd pair cancels even-order
    error. Down-sampling convs average 2x2; up-sampling convs keep the nearest pixel."""
    import torch

    enc = vae.encoder
    if enc.conv_in.out_channels != 8 or enc.conv_norm_out.num_groups != 1:
        raise ValueError("set_block_mean_vae needs 8 channels and norm_num_groups=1")
    with torch.no_grad():
        for param in vae.parameters():
            param.zero_()
    set_block_mean_path(vae, signal=eps, const=const, bias=bias, latent_gain=latent_gain)


def set_block_mean_path(
    vae: Any,
    signal: float,
    const: float,
    bias: float = 20.0,
    latent_gain: float = LATENT_GAIN,
) -> None:
    """Set the main path of a tiny AutoencoderKL (one norm group, at least 8 channels
    per block) to the exact 8x8 block-mean autoencoder, and switch every other path off:
    each resnet's second conv and each attention's output projection zero (identities),
    main-path convs zero outside channels 0-7; weights off the path keep their values.

    The signal travels as +signal*x and -signal*x (channels 0-2, 3-5) beside constant
    channels +const and -const (6, 7), so each main-path GroupNorm has mean 0 and a std
    fixed by the constants; the norm's affine maps the signal to ``bias + x``, where SiLU
    is the identity, and the odd pair cancels even-order error. Down-sampling convs
    average 2x2; up-sampling convs keep the nearest pixel. :func:`set_block_mean_vae`
    uses a faint signal (1e-3 beside constants 1: exact to ~1e-7, but every weight on the
    path is 1e-3-scaled, so an optimiser step breaks it); ``training.vae.block_mean_init``
    uses signal 1 beside constants 100 (linear to ~1.5e-4, and robust to training)."""
    import torch

    enc, dec = vae.encoder, vae.decoder

    def zero(conv: torch.nn.Conv2d) -> None:
        conv.weight.zero_()
        if conv.bias is not None:
            conv.bias.zero_()

    def signal_in(conv: torch.nn.Conv2d, gain: float = 1.0) -> None:
        zero(conv)
        for c in range(3):
            conv.weight[c, c, 1, 1] = signal / gain
            conv.weight[3 + c, c, 1, 1] = -signal / gain
        assert conv.bias is not None  # diffusers' VAE convs all have biases
        conv.bias[6], conv.bias[7] = const, -const

    def identity(conv: torch.nn.Conv2d, average_2x2: bool = False) -> None:
        zero(conv)
        centre = conv.weight.shape[2] // 2
        for c in range(8):
            if average_2x2:  # the encoder's stride-2 conv after (0, 1, 0, 1) padding
                conv.weight[c, c, 0:2, 0:2] = 0.25
            else:
                conv.weight[c, c, centre, centre] = 1.0

    def signal_norm(norm: torch.nn.GroupNorm) -> None:
        # The two constant channels' std over the group, divided by the signal's scale.
        sigma = const * (2 / norm.num_channels) ** 0.5
        norm.weight.zero_()
        norm.bias.zero_()
        norm.weight[:6] = sigma / signal
        norm.bias[:6] = bias

    def signal_out(conv: torch.nn.Conv2d, gain: float = 1.0) -> None:
        zero(conv)
        for c in range(3):
            conv.weight[c, c, 1, 1] = 0.5 * gain
            conv.weight[c, 3 + c, 1, 1] = -0.5 * gain

    def residuals_off(block: Any) -> None:
        for resnet in block.resnets:
            zero(resnet.conv2)
            if resnet.conv_shortcut is not None:
                identity(resnet.conv_shortcut)
        for attention in getattr(block, "attentions", None) or []:
            if attention is not None:
                attention.to_out[0].weight.zero_()
                attention.to_out[0].bias.zero_()

    with torch.no_grad():
        signal_in(enc.conv_in)
        for block in enc.down_blocks:
            residuals_off(block)
            for down in block.downsamplers or []:
                identity(down.conv, average_2x2=True)
        residuals_off(enc.mid_block)
        signal_norm(enc.conv_norm_out)
        signal_out(enc.conv_out, latent_gain)
        latent_channels = vae.config.latent_channels
        enc.conv_out.bias[latent_channels:] = math.log(POSTERIOR_STD**2)  # log-variance
        for conv in (vae.quant_conv, vae.post_quant_conv):
            zero(conv)
            for i in range(conv.out_channels):
                conv.weight[i, i, 0, 0] = 1.0
        signal_in(dec.conv_in, latent_gain)
        residuals_off(dec.mid_block)
        for block in dec.up_blocks:
            residuals_off(block)
            for up in block.upsamplers or []:
                identity(up.conv)
        signal_norm(dec.conv_norm_out)
        signal_out(dec.conv_out)


def build_sd15_like_pipeline(unet_in_channels: int, seed: int) -> InpaintPipeline:
    """Stable Diffusion 1.5's exact architecture (UNet2DConditionModel's defaults, the SD
    VAE, a CLIP ViT-L/14-sized text encoder) with seeded random weights: the same compute
    as the real checkpoint, for throughput measurements where no weights can be fetched."""
    import torch
    from diffusers import AutoencoderKL, StableDiffusionInpaintPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=64, in_channels=unet_in_channels, cross_attention_dim=768
    )
    vae = AutoencoderKL(
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(128, 256, 512, 512),
        layers_per_block=2,
        latent_channels=4,
        sample_size=512,
        scaling_factor=SD_LATENT_SCALE,
    )
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=49408,
            hidden_size=768,
            intermediate_size=3072,
            num_hidden_layers=12,
            num_attention_heads=12,
            max_position_embeddings=77,
            hidden_act="quick_gelu",
        )
    )
    return StableDiffusionInpaintPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=_offline_tokenizer()[0],
        unet=unet,
        scheduler=sd15_scheduler(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
