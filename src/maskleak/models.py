"""Diffusion models: build the offline tiny checkpoint, download a hub checkpoint, and load
either through the one code path a real Stable Diffusion checkpoint uses
(``StableDiffusionInpaintPipeline.from_pretrained`` on a local diffusers folder)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from maskleak.errors import InputError
from maskleak.provenance import canonical_json, public_mode, sha256_file, versions

if TYPE_CHECKING:
    import torch

#: diffusers' StableDiffusionInpaintPipeline; its lazy imports defeat static typing.
InpaintPipeline = Any

#: Written into every model folder this project makes; excluded from the fingerprint.
RECORD_FILE = "maskleak-model.json"

#: Scheduler names accepted in config; "default" keeps the checkpoint's own scheduler.
SCHEDULERS = {
    "pndm": "PNDMScheduler",
    "ddim": "DDIMScheduler",
    "euler": "EulerDiscreteScheduler",
    "euler_ancestral": "EulerAncestralDiscreteScheduler",
    "dpmpp_2m": "DPMSolverMultistepScheduler",
    "unipc": "UniPCMultistepScheduler",
    "lms": "LMSDiscreteScheduler",
}

DTYPES = ("auto", "float32", "float16", "bfloat16")

# Only what the inpainting pipeline loads: no safety checker, no .bin/.ckpt duplicates.
HUB_ALLOW_PATTERNS = [
    "model_index.json",
    "scheduler/*.json",
    "tokenizer/*",
    "text_encoder/*.json",
    "unet/*.json",
    "vae/*.json",
]
HUB_WEIGHT_DIRS = ("text_encoder", "unet", "vae")

#: The parts of a model folder StableDiffusionInpaintPipeline.from_pretrained loads, each
#: with the files it needs ("a|b+c": a, or b and c), and whether it needs weights (named
#: by variant and sharding: any *.safetensors or *.bin). Its optional parts
#: (safety_checker, feature_extractor, image_encoder) are never loaded.
MODEL_PARTS: dict[str, tuple[tuple[str, ...], bool]] = {
    "unet": (("config.json",), True),
    "vae": (("config.json",), True),
    "text_encoder": (("config.json",), True),
    # Without these, CLIPTokenizer loads anyway: with 2 tokens, or no length limit.
    "tokenizer": (("tokenizer_config.json", "tokenizer.json|vocab.json+merges.txt"), False),
    "scheduler": (("scheduler_config.json",), False),
}


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


def sd15_scheduler() -> Any:
    """SD 1.5's own scheduler settings, so "default" means what it means for SD 1.5."""
    from diffusers import PNDMScheduler

    return PNDMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        num_train_timesteps=1000,
        skip_prk_steps=True,
        set_alpha_to_one=False,
        steps_offset=1,
    )


def build_tiny_pipeline(unet_in_channels: int, seed: int) -> InpaintPipeline:
    """A small Stable-Diffusion-shaped inpainting pipeline: UNet and text encoder with
    seeded random weights, and the exact block-mean VAE of :func:`set_block_mean_vae`.

    Same classes, latent layout (4 channels, 8x VAE) and scheduler as SD 1.5, so the
    pipeline runs exactly the code a real checkpoint runs. ``unet_in_channels`` 9 mimics the
    SD inpainting checkpoint; 4 mimics a plain text-to-image checkpoint, for which the
    pipeline blends image latents back outside the mask at every step."""
    import torch
    from diffusers import AutoencoderKL, StableDiffusionInpaintPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    if unet_in_channels not in (4, 9):
        raise InputError(f"unet_in_channels must be 4 or 9, got {unet_in_channels!r}")
    tokenizer, vocab = _offline_tokenizer()
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=32,
        in_channels=unet_in_channels,
        out_channels=4,
        layers_per_block=1,
        block_out_channels=(32, 64),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=8,
    )
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
        scaling_factor=0.18215,
    )
    set_block_mean_vae(vae)
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


def set_block_mean_vae(vae: Any, eps: float = 1e-3, const: float = 1.0, bias: float = 20.0) -> None:
    """Turn a tiny AutoencoderKL (8 channels everywhere, one norm group, one resnet per
    block, no attention) into an exact, interpretable autoencoder: the latent of each
    8x8 pixel block is its mean RGB (4th channel 0), and decoding repeats that mean over
    the block. No training, no randomness.

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

    enc, dec = vae.encoder, vae.decoder
    channels = enc.conv_in.out_channels
    if channels != 8 or enc.conv_norm_out.num_groups != 1:
        raise ValueError("set_block_mean_vae needs 8 channels and norm_num_groups=1")
    sigma = const * (2 / channels) ** 0.5  # std of the two constant channels over 8

    def signal_in(conv: torch.nn.Conv2d, n_in: int) -> None:
        for c in range(n_in):
            conv.weight[c, c, 1, 1] = eps
            conv.weight[3 + c, c, 1, 1] = -eps
        assert conv.bias is not None  # diffusers' VAE convs all have biases
        conv.bias[6], conv.bias[7] = const, -const

    def signal_norm(norm: torch.nn.GroupNorm) -> None:
        norm.weight[:6] = sigma / eps
        norm.bias[:6] = bias

    def signal_out(conv: torch.nn.Conv2d) -> None:
        for c in range(3):
            conv.weight[c, c, 1, 1] = 0.5
            conv.weight[c, 3 + c, 1, 1] = -0.5

    with torch.no_grad():
        for param in vae.parameters():
            param.zero_()
        signal_in(enc.conv_in, 3)
        for block in enc.down_blocks:
            for down in block.downsamplers or []:
                for c in range(channels):
                    down.conv.weight[c, c, 0:2, 0:2] = 0.25
        signal_norm(enc.conv_norm_out)
        signal_out(enc.conv_out)
        enc.conv_out.bias[4:] = -30.0  # log-variance: the posterior is a point
        for i in range(vae.quant_conv.out_channels):
            vae.quant_conv.weight[i, i, 0, 0] = 1.0
        for i in range(vae.post_quant_conv.out_channels):
            vae.post_quant_conv.weight[i, i, 0, 0] = 1.0
        signal_in(dec.conv_in, 3)
        for block in dec.up_blocks:
            for up in block.upsamplers or []:
                for c in range(channels):
                    up.conv.weight[c, c, 1, 1] = 1.0
        signal_norm(dec.conv_norm_out)
        signal_out(dec.conv_out)


def model_fingerprint(model_dir: str | os.PathLike[str]) -> str:
    """sha256 over every file's relative path and content (hidden files and the maskleak
    record excluded): two folders with the same weights and configs share a fingerprint."""
    root = Path(model_dir)
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if not path.is_file() or rel.name == RECORD_FILE:
            continue
        if any(part.startswith(".") for part in rel.parts):
            continue
        digest.update(f"{rel.as_posix()}\0{sha256_file(path)}\n".encode())
    return digest.hexdigest()


def _finish_model_dir(tmp: Path, dest: Path, record: Mapping[str, Any]) -> None:
    """Record provenance inside the folder, then move it into place in one rename."""
    full = {**record, "fingerprint": model_fingerprint(tmp), "versions": versions()}
    (tmp / RECORD_FILE).write_text(json.dumps(full, indent=2, sort_keys=True) + "\n")
    public_mode(tmp, directory=True)  # mkdtemp made it private
    if dest.exists():
        shutil.rmtree(dest)
    os.replace(tmp, dest)


def save_tiny_model(dest: str | os.PathLike[str], unet_in_channels: int, seed: int) -> None:
    """Build the tiny pipeline and save it as a diffusers folder (safetensors)."""
    target = Path(dest)
    target.parent.mkdir(parents=True, exist_ok=True)
    pipe = build_tiny_pipeline(unet_in_channels, seed)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        pipe.save_pretrained(tmp, safe_serialization=True)
        record = {"stage": "build_model", "kind": "tiny", "unet_in_channels": unet_in_channels}
        _finish_model_dir(tmp, target, {**record, "seed": seed})
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def download_model(
    dest: str | os.PathLike[str], repo_id: str, revision: str, variant: str | None = None
) -> None:
    """Fetch the inpainting-relevant files of a hub checkpoint into a local diffusers folder.

    Done once, on a node with internet; inpaint jobs (often on GPU nodes without internet)
    then load the local folder like any other."""
    from huggingface_hub import snapshot_download

    target = Path(dest)
    target.parent.mkdir(parents=True, exist_ok=True)
    suffix = f".{variant}.safetensors" if variant else ".safetensors"
    patterns = HUB_ALLOW_PATTERNS + [f"{d}/*{suffix}" for d in HUB_WEIGHT_DIRS]
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        snapshot_download(
            repo_id=repo_id, revision=revision, local_dir=tmp, allow_patterns=patterns
        )
        if variant is None:
            # A plain pattern also matches variant files; keep only the default weights.
            for extra in tmp.glob("*/*.*.safetensors"):
                extra.unlink()
        shutil.rmtree(tmp / ".cache", ignore_errors=True)
        record = {"stage": "download_model", "repo_id": repo_id, "revision": revision}
        _finish_model_dir(tmp, target, {**record, "variant": variant})
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def resolve_device(device: str = "auto") -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def resolve_dtype(
    dtype: str, device: str, model_dir: str | os.PathLike[str] | None = None
) -> torch.dtype:
    """``auto`` is float16 on CUDA (the study's setting) and float32 elsewhere, and
    float32 everywhere for the project's tiny models: their set-weight VAE is exact only
    in float32 (on an H200, float16 put their inpaintings up to 255 levels, 27 on
    average, from the CPU's float32 ones; float32 on CUDA stays within 3)."""
    import torch

    if dtype not in DTYPES:
        raise InputError(f"inpaint.dtype must be one of {DTYPES}, got {dtype!r}")
    if dtype == "auto":
        half = device.startswith("cuda") and not _is_tiny(model_dir)
        dtype = "float16" if half else "float32"
    return getattr(torch, dtype)


def _is_tiny(model_dir: str | os.PathLike[str] | None) -> bool:
    if model_dir is None:
        return False
    record = Path(model_dir) / RECORD_FILE
    try:
        return json.loads(record.read_text()).get("kind") == "tiny"
    except (OSError, ValueError):
        return False  # a folder this project did not build: a real checkpoint


def check_model_folder(model_dir: str | os.PathLike[str]) -> None:
    """Raise a one-line InputError naming the folder and the first missing part, where
    ``model_dir`` lacks something :data:`MODEL_PARTS` lists: diffusers' own errors name
    a file and a folder but not what is wrong, and a tokenizer it loads silently."""
    folder = Path(model_dir)
    needs = ", ".join(["model_index.json"] + [f"{part}/" for part in MODEL_PARTS])
    where = f"model folder {folder}:"

    def missing(what: str) -> InputError:
        return InputError(f"{where} missing {what} (a diffusers folder needs {needs})")

    if not folder.is_dir():
        raise InputError(f"{where} not found (or not a folder)")
    if not (folder / "model_index.json").is_file():
        raise missing("model_index.json")
    try:
        index = json.loads((folder / "model_index.json").read_text())
    except (OSError, ValueError) as err:
        raise InputError(f"{where} model_index.json is not valid JSON: {err}") from err
    for part, (files, weighted) in MODEL_PARTS.items():
        entry = index.get(part) if isinstance(index, dict) else None
        if not isinstance(entry, list) or None in entry:
            raise InputError(f"{where} model_index.json lists no {part} (a pipeline needs {needs})")
        if not (folder / part).is_dir():
            raise missing(f"{part}/")
        for alternatives in files:
            options = [option.split("+") for option in alternatives.split("|")]
            if not any(all((folder / part / f).is_file() for f in opt) for opt in options):
                raise missing(" or ".join(" and ".join(f"{part}/{f}" for f in o) for o in options))
        weights = [p for p in (folder / part).iterdir() if p.suffix in (".safetensors", ".bin")]
        if weighted and not weights:
            raise missing(f"{part}/ weights (*.safetensors or *.bin)")


@contextlib.contextmanager
def _no_progress_bars() -> Iterator[None]:
    """Loading without diffusers' and transformers' tqdm bars, whose carriage returns and
    escapes would garble a job's log file."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    shown = [m for m in (diffusers_logging, transformers_logging) if m.is_progress_bar_enabled()]
    for module in shown:
        module.disable_progress_bar()
    try:
        yield
    finally:
        for module in shown:
            module.enable_progress_bar()


def load_pipeline(
    model_dir: str | os.PathLike[str],
    scheduler: str = "default",
    dtype: str = "auto",
    device: str = "auto",
    variant: str | None = None,
) -> InpaintPipeline:
    """Load a local diffusers folder exactly as a real checkpoint is loaded."""
    from diffusers import StableDiffusionInpaintPipeline
    from diffusers import schedulers as diffusers_schedulers

    folder = Path(model_dir)
    check_model_folder(folder)
    if scheduler != "default" and scheduler not in SCHEDULERS:
        raise InputError(
            f"inpaint.scheduler must be 'default' or one of {sorted(SCHEDULERS)}, got {scheduler!r}"
        )
    device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, device, folder)
    with _no_progress_bars():
        # The optional parts as None: a checkpoint's model_index.json lists a
        # feature_extractor that download_model does not fetch and the job never uses.
        pipe = StableDiffusionInpaintPipeline.from_pretrained(
            folder,
            dtype=torch_dtype,
            variant=variant,
            safety_checker=None,
            feature_extractor=None,
            image_encoder=None,
            requires_safety_checker=False,
            local_files_only=True,
        )
    if scheduler != "default":
        scheduler_cls = getattr(diffusers_schedulers, SCHEDULERS[scheduler])
        pipe.scheduler = scheduler_cls.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


def call_copy(pipe: InpaintPipeline) -> InpaintPipeline:
    """A pipeline that shares ``pipe``'s models but has a scheduler of its own, so that
    calls can run concurrently: a scheduler holds per-call state (PNDM its past model
    outputs)."""
    import copy

    components = {**pipe.components, "scheduler": copy.deepcopy(pipe.scheduler)}
    worker = type(pipe)(**components, requires_safety_checker=False)
    worker.set_progress_bar_config(disable=True)
    return worker


def describe(pipe: InpaintPipeline) -> dict[str, Any]:
    """What a result depends on beyond its inputs: architecture facts worth recording."""
    return {
        "unet_in_channels": int(pipe.unet.config.in_channels),
        "vae_scale_factor": int(pipe.vae_scale_factor),
        "scheduler": type(pipe.scheduler).__name__,
        "dtype": str(pipe.unet.dtype).removeprefix("torch."),
        "device": str(pipe.device),
    }


def settings_digest(settings: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_json(settings).encode()).hexdigest()


def get_model(spec: Mapping[str, Any], dest: str | os.PathLike[str]) -> None:
    """Make the model folder a config entry asks for (the ``get_model`` rule)."""
    kind = spec.get("kind")
    if kind == "tiny":
        save_tiny_model(dest, int(spec["unet_in_channels"]), int(spec["seed"]))
    elif kind == "hub":
        download_model(dest, spec["repo_id"], spec.get("revision", "main"), spec.get("variant"))
    else:
        raise InputError(f"models: kind {kind!r} is not built by the workflow (tiny or hub)")


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
        scaling_factor=0.18215,
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
