"""How an inpaint job calls its pipeline: the settings of a call, which pipeline runs it
(today's diffusers ``StableDiffusionInpaintPipeline`` or the study's diffusers 0.11.1
Legacy pipeline, :mod:`maskleak.study_pipeline`), how many UNet steps each strength runs,
and the calls themselves."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from PIL import Image

from maskleak import mechanism_hooks, mechanisms, models, study_pipeline
from maskleak.errors import InputError
from maskleak.mechanisms import Mechanisms

InpaintPipeline = models.InpaintPipeline

#: Today's diffusers StableDiffusionInpaintPipeline; the other choice is the study's
#: diffusers 0.11.1 Legacy pipeline (:data:`maskleak.study_pipeline.PIPELINE`).
DEFAULT_PIPELINE = mechanisms.DIFFUSERS
PIPELINES = (DEFAULT_PIPELINE, study_pipeline.PIPELINE)


@dataclass(frozen=True)
class Settings:
    """Pipeline-call settings shared by every inpainting of a job."""

    prompt: str = ""
    guidance_scale: float = 0.0
    steps: int = 50
    scheduler: str = "default"
    dtype: str = "auto"
    variant: str | None = None
    batch_size: int | str = "auto"
    pipeline: str = DEFAULT_PIPELINE


def steps_run(steps: int, strength: float) -> int:
    """Denoising steps the pipeline actually runs, computed exactly as diffusers does
    (``min(int(steps * strength), steps)``, including its float truncation)."""
    return min(int(steps * strength), steps)


def key_settings(settings: Settings) -> dict[str, Any]:
    """The settings an inpainting's key records: not the batch size (results do not
    depend on it), and the pipeline only when it is not the default, so that keys made
    before the pipeline choice existed stay valid."""
    recorded = {k: v for k, v in asdict(settings).items() if k != "batch_size"}
    if settings.pipeline == DEFAULT_PIPELINE:
        del recorded["pipeline"]
    return recorded


def check_pipeline(settings: Settings, model_dir: str, model_name: str) -> None:
    """Refuse, before anything is computed, a pipeline name the job does not know and the
    study's pipeline on a UNet that is not 4-channel."""
    if settings.pipeline not in PIPELINES:
        raise InputError(
            f"config key models.{model_name}.pipeline: unknown pipeline {settings.pipeline!r} "
            f"(use one of {PIPELINES})"
        )
    if settings.pipeline == study_pipeline.PIPELINE:
        study_pipeline.check_unet_channels(
            models.unet_in_channels(model_dir),
            str(model_dir),
            f"config key models.{model_name}.pipeline: ",
        )


def steps_counter(settings: Settings, model_dir: str) -> Callable[[float], int]:
    """strength -> UNet steps the job's pipeline runs there. The study's pipeline needs the
    model's scheduler to know (PNDM has one timestep more than steps); loading it reads
    no weights."""
    if settings.pipeline != study_pipeline.PIPELINE:
        return lambda strength: steps_run(settings.steps, strength)
    scheduler = models.load_scheduler(model_dir, settings.scheduler)
    counts: dict[float, int] = {}

    def count(strength: float) -> int:
        if strength not in counts:
            counts[strength] = study_pipeline.steps_run(scheduler, settings.steps, strength)
            if counts[strength] == 0:
                raise InputError(
                    f"config key inpaint.scheduler: the study pipeline runs no step at "
                    f"strength {strength} with {type(scheduler).__name__} and "
                    f"{settings.steps} steps (diffusers 0.11.1 fails there too; PNDM, the "
                    "study's scheduler, runs one)"
                )
        return counts[strength]

    return count


def vae_roundtrip(
    pipe: InpaintPipeline, image: Image.Image, seed: int | None = None
) -> Image.Image:
    """Encode and decode with the pipeline's own VAE and image processor: what strength 0
    returns when no denoising step runs. The posterior mode (no seed needed), or with a
    ``seed`` a posterior sample drawn from a CPU generator."""
    import torch

    with torch.inference_mode():
        pixels = pipe.image_processor.preprocess(image, height=image.height, width=image.width)
        pixels = pixels.to(device=pipe.device, dtype=pipe.vae.dtype)
        posterior = pipe.vae.encode(pixels).latent_dist
        if seed is None:
            latents = posterior.mode()
        else:
            latents = posterior.sample(generator=cpu_generators([seed])[0])
        decoded = pipe.vae.decode(latents).sample
    return pipe.image_processor.postprocess(decoded, output_type="pil")[0]


def cpu_generators(seeds: Sequence[int]) -> list[Any]:
    """One seeded generator per inpainting, on the CPU: the random draws are then the same
    on every device and in every batch, so CPU and GPU runs differ only by arithmetic."""
    import torch

    return [torch.Generator(device="cpu").manual_seed(seed) for seed in seeds]


def denoise(
    pipe: InpaintPipeline,
    images: Sequence[Image.Image],
    masks: Sequence[Image.Image],
    strength: float,
    seeds: Sequence[int],
    settings: Settings,
    mechanisms: Mechanisms,
) -> list[Image.Image]:
    """One call of today's diffusers pipeline: ``images[i]`` inpainted under ``masks[i]``
    with ``seeds[i]``, with the mechanism switches applied to the call
    (:func:`maskleak.mechanism_hooks.applied`; paste-back is the caller's)."""
    n = len(seeds)
    generators = cpu_generators(seeds)
    with mechanism_hooks.applied(pipe, mechanisms) as extra:
        result = pipe(
            prompt=[settings.prompt] * n,
            image=list(images),
            mask_image=list(masks),
            strength=strength,
            num_inference_steps=settings.steps,
            guidance_scale=settings.guidance_scale,
            generator=generators,
            height=images[0].height,
            width=images[0].width,
            output_type="pil",
            **extra,
        )
    return list(result.images)


def denoise_study(
    pipe: InpaintPipeline,
    images: Sequence[Image.Image],
    masks: Sequence[Image.Image],
    strength: float,
    seeds: Sequence[int],
    settings: Settings,
    mechanisms: Mechanisms,
) -> list[Image.Image]:
    """:func:`denoise` with the study's pipeline (:mod:`maskleak.study_pipeline`)."""
    results, _ = study_pipeline.study_inpaint(
        pipe,
        images,
        masks,
        strength,
        settings.steps,
        cpu_generators(seeds),
        prompt=settings.prompt,
        guidance_scale=settings.guidance_scale,
        mechanisms=mechanisms,
    )
    return results
