"""Run the study's own pipeline, diffusers 0.11.1's ``StableDiffusionInpaintPipelineLegacy``,
on one of this project's model folders: the reference that ``maskleak.study_pipeline`` is
checked against.

Runs in the side venv that ``tests/study_venv.sh`` builds (diffusers 0.11.1, transformers
4.40), NOT in the project's venv:

    .venv-study/bin/python tests/study_reference.py --model DIR --jobs JOBS.json --out DIR

``JOBS.json`` is a list of ``{"image": png, "mask": png, "strength": float, "seed": int,
"steps": int, "out": png name}``; each result is written to ``OUT/<out>``, and
``OUT/study_reference.json`` records the versions and the jobs.

The model folder is written by today's diffusers/transformers, which 0.11.1 cannot load by
itself, so every component is built here from its config and its weights are loaded with
``strict=True`` (nothing may be left randomly initialised):

* VAE attention: today's ``to_q/to_k/to_v/to_out.0`` are 0.11.1's ``query/key/value/
  proj_attn``; a VAE saved with ``mid_block_add_attention: false`` (which 0.11.1 cannot
  express) gets an identity attention (zero ``proj_attn``, checked to be exact);
* text encoder: transformers 5 saves the keys without the ``text_model.`` prefix;
* tokenizer: a ``tokenizer.json`` written by transformers 5 is not readable by 4.40, so the
  slow CLIPTokenizer is built from ``vocab.json`` + ``merges.txt`` (written from the
  ``tokenizer.json`` into a temporary folder when the model folder lacks them);
* configs: keys that 0.11.1 does not know must hold the value that means 0.11.1's fixed
  behaviour (else the script fails rather than run a different model).
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

import diffusers
import huggingface_hub
import numpy as np
import PIL
import torch
import transformers
from diffusers import AutoencoderKL, StableDiffusionInpaintPipelineLegacy, UNet2DConditionModel
from PIL import Image
from safetensors.torch import load_file
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

EXPECTED_DIFFUSERS = "0.11.1"
#: 0.11.1's Legacy pipeline hard-codes this latent scale (decode_latents, prepare_latents).
LATENT_SCALE = 0.18215


class StudyReferenceError(Exception):
    """The model folder cannot be loaded faithfully into diffusers 0.11.1."""


def _any(_value: Any, _config: dict[str, Any]) -> bool:
    return True


def _is(*allowed: Any):
    return lambda value, _config: value in allowed


# Config keys that today's diffusers writes and 0.11.1's classes do not accept, with the
# values under which today's model computes what the 0.11.1 class computes without them.
NEUTRAL_CONFIG: dict[str, dict[str, Any]] = {
    "unet": {
        "addition_embed_type": _is(None),
        "addition_embed_type_num_heads": lambda v, c: c.get("addition_embed_type") is None,
        "addition_time_embed_dim": _is(None),
        "attention_type": _is("default"),
        "class_embeddings_concat": _is(False),
        "conv_in_kernel": _is(3),
        "conv_out_kernel": _is(3),
        "cross_attention_norm": _is(None),
        "dropout": _is(0.0),  # inference: no dropout either way
        "encoder_hid_dim": _is(None),
        "encoder_hid_dim_type": _is(None),
        "mid_block_only_cross_attention": _is(None, False),
        # today: heads = num_attention_heads or attention_head_dim; 0.11.1: attention_head_dim
        "num_attention_heads": lambda v, c: v is None or v == c.get("attention_head_dim"),
        "projection_class_embeddings_input_dim": _is(None),
        "resnet_out_scale_factor": _is(1.0),
        "resnet_skip_time_act": _is(False),
        "reverse_transformer_layers_per_block": _is(None),
        "time_cond_proj_dim": _is(None),
        "time_embedding_act_fn": _is(None),
        "time_embedding_dim": _is(None),
        "time_embedding_type": _is("positional"),
        "timestep_post_act": _is(None),
        "transformer_layers_per_block": lambda v, c: v == 1 or v == [1] * len(v or []),
        "mid_block_type": _is("UNetMidBlock2DCrossAttn"),
    },
    "vae": {
        "force_upcast": _any,  # only acts in float16; this runs float32
        "latents_mean": _is(None),
        "latents_std": _is(None),
        "mid_block_add_attention": _is(True, False),  # False: identity attention below
        "scaling_factor": lambda v, c: abs(v - LATENT_SCALE) < 1e-9,
        "shift_factor": _is(None, 0.0),
        "use_post_quant_conv": _is(True),
        "use_quant_conv": _is(True),
    },
    "scheduler": {
        "clip_sample": _any,  # PNDM never clips; SD 1.5's config carries it for DDIM's sake
        "timestep_spacing": _is("leading"),  # 0.11.1's only spacing
        "rescale_betas_zero_snr": _is(False),
        "timestep_type": _is("discrete"),
        "use_karras_sigmas": _is(False),
        "use_exponential_sigmas": _is(False),
        "use_beta_sigmas": _is(False),
        "final_sigmas_type": _is("zero"),
    },
}

# Today's VAE attention parameter names -> 0.11.1's AttentionBlock names.
VAE_ATTENTION_NAMES = {"to_q": "query", "to_k": "key", "to_v": "value", "to_out.0": "proj_attn"}


def init_kwargs(cls: type, config: dict[str, Any], component: str) -> dict[str, Any]:
    """The config's entries that ``cls.__init__`` takes; every other (non-``_``) entry
    must be neutral, i.e. mean what 0.11.1 does anyway."""
    params = inspect.signature(cls.__init__).parameters
    kwargs, bad = {}, []
    for key, value in config.items():
        if key.startswith("_"):
            continue
        if key in params:
            kwargs[key] = value
            continue
        check = NEUTRAL_CONFIG[component].get(key)
        if check is None or not check(value, config):
            bad.append(f"{key}={value!r}")
    if bad:
        raise StudyReferenceError(
            f"{component}: config entries that diffusers {diffusers.__version__}'s "
            f"{cls.__name__} cannot express: {', '.join(bad)}"
        )
    return kwargs


def load_weights(folder: Path) -> dict[str, torch.Tensor]:
    """All safetensors weights of one component folder, as float32 (a variant such as
    fp16 is accepted when it is the only weight file)."""
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise StudyReferenceError(f"{folder}: no .safetensors weights")
    state: dict[str, torch.Tensor] = {}
    for path in files:
        for key, tensor in load_file(path).items():
            if key in state:
                raise StudyReferenceError(f"{folder}: {key} is in more than one weight file")
            state[key] = tensor.float() if tensor.is_floating_point() else tensor
    return state


def load_strict(module: torch.nn.Module, state: dict[str, torch.Tensor], what: str) -> None:
    """Every parameter and persistent buffer from ``state``, no leftovers either way."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or wrong:
        raise StudyReferenceError(
            f"{what}: weights do not match diffusers {diffusers.__version__}'s layout "
            f"(would be left randomly initialised: {missing}; unused: {unexpected}; "
            f"wrong shape: {wrong})"
        )
    module.load_state_dict(state, strict=True)


def read_config(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def load_unet(model: Path) -> UNet2DConditionModel:
    config = read_config(model / "unet" / "config.json")
    unet = UNet2DConditionModel(**init_kwargs(UNet2DConditionModel, config, "unet"))
    load_strict(unet, load_weights(model / "unet"), "unet")
    return unet.eval()


def _identity_attention(attention: torch.nn.Module, where: str) -> None:
    """Make a 0.11.1 AttentionBlock the identity: zero output projection (and q/k/v), so
    its output is the residual divided by rescale_output_factor, which must be 1."""
    with torch.no_grad():
        for name, tensor in attention.state_dict(keep_vars=True).items():
            if name.startswith("group_norm."):
                tensor.fill_(1.0 if name.endswith("weight") else 0.0)
            else:
                tensor.zero_()
    probe = torch.randn(1, attention.channels, 3, 5, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        if not torch.equal(attention(probe), probe):
            raise StudyReferenceError(f"vae: the zeroed {where} attention is not the identity")


def convert_vae_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Today's VAE attention names to 0.11.1's; 1x1-conv projections (very old
    checkpoints) to the Linear shape 0.11.1 uses."""
    out = {}
    for key, tensor in state.items():
        if ".attentions." in key:
            head, _, leaf = key.rpartition(".")  # leaf: weight / bias
            for new, old in VAE_ATTENTION_NAMES.items():
                if head.endswith("." + new):
                    head = head[: -len(new)] + old
                    break
            key = f"{head}.{leaf}"
            if tensor.ndim == 4:
                tensor = tensor[:, :, 0, 0]
        out[key] = tensor
    return out


def load_vae(model: Path) -> AutoencoderKL:
    config = read_config(model / "vae" / "config.json")
    vae = AutoencoderKL(**init_kwargs(AutoencoderKL, config, "vae"))
    state = convert_vae_state(load_weights(model / "vae"))
    if not config.get("mid_block_add_attention", True):
        # 0.11.1 always builds a mid-block attention; the saved model has none.
        stray = [k for k in state if ".mid_block.attentions." in k]
        if stray:
            raise StudyReferenceError(
                f"vae: mid_block_add_attention is false but weights have {stray}"
            )
        for part in ("encoder", "decoder"):
            attention = getattr(vae, part).mid_block.attentions[0]
            _identity_attention(attention, f"{part}.mid_block")
            prefix = f"{part}.mid_block.attentions.0."
            state.update({prefix + k: v.clone() for k, v in attention.state_dict().items()})
    load_strict(vae, state, "vae")
    return vae.eval()


def load_text_encoder(model: Path) -> CLIPTextModel:
    config = CLIPTextConfig.from_pretrained(model / "text_encoder")
    encoder = CLIPTextModel(config)
    state = load_weights(model / "text_encoder")
    # transformers 5 drops the "text_model." prefix that transformers 4 keeps.
    state = {k if k.startswith("text_model.") else f"text_model.{k}": v for k, v in state.items()}
    load_strict(encoder, state, "text_encoder")
    return encoder.eval()


def _token(value: Any) -> str | None:
    """A special token as tokenizer_config.json stores it: a string or an AddedToken dict."""
    if isinstance(value, dict):
        return value["content"]
    return value


def load_tokenizer(model: Path, scratch: Path) -> CLIPTokenizer:
    """The slow CLIPTokenizer from vocab.json + merges.txt (written from tokenizer.json
    into ``scratch`` when the folder has none), with tokenizer_config.json's specials."""
    folder = model / "tokenizer"
    vocab, merges = folder / "vocab.json", folder / "merges.txt"
    if not (vocab.exists() and merges.exists()):
        fast = json.loads((folder / "tokenizer.json").read_text())
        bpe = fast["model"]
        if bpe.get("type") != "BPE":
            raise StudyReferenceError(f"tokenizer: {bpe.get('type')} model, expected BPE")
        vocab, merges = scratch / "vocab.json", scratch / "merges.txt"
        vocab.write_text(json.dumps(bpe["vocab"], ensure_ascii=False))
        lines = [m if isinstance(m, str) else " ".join(m) for m in bpe["merges"]]
        merges.write_text("#version: 0.2\n" + "".join(f"{line}\n" for line in lines))
    config_path = folder / "tokenizer_config.json"
    config = read_config(config_path) if config_path.exists() else {}
    specials = {
        key: _token(config[key])
        for key in ("unk_token", "bos_token", "eos_token", "pad_token")
        if config.get(key) is not None
    }
    max_length = int(config.get("model_max_length", 77))
    if max_length > 10_000:  # "unbounded" in old configs: CLIP's context is 77
        max_length = 77
    tokenizer = CLIPTokenizer(str(vocab), str(merges), model_max_length=max_length, **specials)
    n_vocab = len(json.loads(Path(vocab).read_text()))
    if len(tokenizer) != n_vocab:
        raise StudyReferenceError(
            f"tokenizer: {len(tokenizer)} tokens loaded, vocab.json has {n_vocab}"
        )
    return tokenizer


def load_scheduler(model: Path) -> Any:
    config = read_config(model / "scheduler" / "scheduler_config.json")
    cls = getattr(diffusers, config["_class_name"], None)
    if cls is None:
        raise StudyReferenceError(
            f"scheduler: diffusers {diffusers.__version__} has no {config['_class_name']}"
        )
    return cls(**init_kwargs(cls, config, "scheduler"))


def build_pipeline(model: Path, scratch: Path) -> StableDiffusionInpaintPipelineLegacy:
    unet, vae = load_unet(model), load_vae(model)
    if unet.config.in_channels != vae.config.latent_channels:
        raise StudyReferenceError(
            f"unet: {unet.config.in_channels} input channels; the Legacy pipeline feeds it the "
            f"{vae.config.latent_channels}-channel latents alone (a plain text-to-image UNet, "
            "not an inpainting one)"
        )
    pipe = StableDiffusionInpaintPipelineLegacy(
        vae=vae,
        text_encoder=load_text_encoder(model),
        tokenizer=load_tokenizer(model, scratch),
        unet=unet,
        scheduler=load_scheduler(model),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe = pipe.to("cpu")  # 0.11.1's .to() takes a device only; the weights are float32
    for name in ("vae", "text_encoder", "unet"):
        dtypes = {p.dtype for p in getattr(pipe, name).parameters()}
        if dtypes != {torch.float32}:
            raise StudyReferenceError(f"{name}: parameters are {dtypes}, expected float32")
    pipe.set_progress_bar_config(disable=True)
    return pipe


def run_job(pipe: StableDiffusionInpaintPipelineLegacy, job: dict[str, Any], out_dir: Path) -> Path:
    image = Image.open(job["image"]).convert("RGB")
    mask = Image.open(job["mask"]).convert("L")
    generator = torch.Generator("cpu").manual_seed(int(job["seed"]))
    with warnings.catch_warnings():
        # 0.11.1 deprecates init_image= (removed in 0.12); the study passed it.
        warnings.filterwarnings("ignore", message=".*init_image.*", category=FutureWarning)
        result = pipe(
            prompt="",
            init_image=image,
            mask_image=mask,
            strength=float(job["strength"]),
            num_inference_steps=int(job["steps"]),
            guidance_scale=0.0,
            generator=generator,
            output_type="pil",
        )
    path = out_dir / job["out"]
    path.parent.mkdir(parents=True, exist_ok=True)
    result.images[0].save(path)
    return path


def versions() -> dict[str, str]:
    return {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
        "transformers": transformers.__version__,
        "huggingface_hub": huggingface_hub.__version__,
        "numpy": np.__version__,
        "pillow": PIL.__version__,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, type=Path, help="diffusers model folder")
    parser.add_argument("--jobs", required=True, type=Path, help="JSON list of jobs")
    parser.add_argument("--out", required=True, type=Path, help="folder for the PNGs")
    args = parser.parse_args(argv)

    found = versions()
    print("study reference:", ", ".join(f"{k} {v}" for k, v in found.items()), flush=True)
    if found["diffusers"] != EXPECTED_DIFFUSERS:
        print(f"error: needs diffusers {EXPECTED_DIFFUSERS} (tests/study_venv.sh)", file=sys.stderr)
        return 2
    jobs = json.loads(args.jobs.read_text())
    if not isinstance(jobs, list):
        print(f"error: {args.jobs} must hold a JSON list of jobs", file=sys.stderr)
        return 2
    torch.set_grad_enabled(False)
    try:
        with tempfile.TemporaryDirectory() as scratch:
            pipe = build_pipeline(args.model, Path(scratch))
    except StudyReferenceError as exc:
        print(f"error: {args.model}: {exc}", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    for job in jobs:
        path = run_job(pipe, job, args.out)
        print(
            f"study reference: {path} (strength {job['strength']}, seed {job['seed']}, "
            f"steps {job['steps']})",
            flush=True,
        )
    record = {"versions": found, "model": str(args.model), "jobs": jobs}
    (args.out / "study_reference.json").write_text(json.dumps(record, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
