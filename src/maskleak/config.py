"""Turn a validated config into the workflow's plan: which images, masks, models and
inpaintings exist, and where each file lives. The Snakefile only asks this module.

The JSON schema checks types and keys; this module checks what a schema cannot (label
clashes, references between sections) and always names the config key at fault."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from maskleak import mask_specs, mechanisms, models
from maskleak.errors import InputError
from maskleak.images import downsample_size
from maskleak.pipeline_choice import DEFAULT_PIPELINE
from maskleak.provenance import canonical_json, sha256_bytes
from maskleak.study_pipeline import PIPELINE as STUDY_PIPELINE
from maskleak.study_pipeline import check_unet_channels
from maskleak.sweeps import (
    Experiment,
    read_experiments,
    read_variants,
    unique_labels,
)

# Path layout, in one place: rules and the plan both use these templates. Everything a
# run computes lives under results/{run}/ (and its logs under logs/{run}/), so two configs
# never overwrite each other. Downloaded images and models are shared between runs: their
# folders are named by a hash of their source spec, so equal specs share one copy.
RESULTS = "results/{run}"
RAW_IMAGE = "resources/images/{source}.png"
MODEL_DIR = "resources/models/{model_key}"
IMAGE = RESULTS + "/images/{image}.png"
#: {mask}: the mask's id (maskleak.mask_specs): r80 for the study's 80 % disc.
MASK = RESULTS + "/masks/{image}/{mask}.png"
REGIONS = RESULTS + "/regions/{image}.png"
MANIFEST = RESULTS + "/inpainted/{model}/{image}/manifest.json"
#: {suffix}: "" for the pipeline as it ships, else what a variant changes and the pass
#: (mechanisms.file_suffix), so variants that come to the same pipeline share a file.
INPAINTED = RESULTS + "/inpainted/{model}/{image}/{mask}_s{strength}_seed{seed}{suffix}.png"
METRICS_PART = RESULTS + "/metrics/{model}/{image}.parquet"
METRICS = RESULTS + "/metrics.parquet"
PROFILE_PART = RESULTS + "/profile/{model}/{image}.parquet"
PROFILE = RESULTS + "/profile.parquet"
TRENDS = RESULTS + "/trends.parquet"
CLAIMS = RESULTS + "/claims.parquet"
CLAIMS_PAGE = RESULTS + "/claims.html"
#: "Why it leaks": each mechanism's share of the outside error (mechanism sweep).
WHY = RESULTS + "/why.parquet"
WHY_PAGE = RESULTS + "/why.html"
#: Leak against mask shape: fits of the outside error on area, edge and footprint.
MASK_SHAPE = RESULTS + "/mask_shape.parquet"
FIGURES = RESULTS + "/figures"
#: The mask-shape sweep's figure of one model.
MASK_SHAPE_FIGURE = FIGURES + "/{model}/mask_shape.png"
#: snakemake train_tiny_models: {component} is a folder of the trained layout
#: (maskleak.trained_models: vae, unet4, unet9, text_encoder, tokenizer, scheduler).
TRAINED_COMPONENT = RESULTS + "/training/models/{component}"
TRAINING_HISTORY = RESULTS + "/training/history/{component}.parquet"
#: {table}: vae_quality, denoising, inpaint_quality (+ its .json); the bars: quality.json.
TRAINING_TABLE = RESULTS + "/training/{table}.parquet"
TRAINING_SUMMARY = RESULTS + "/training/quality.json"
LOGS = "logs/{run}"
BENCHMARKS = "benchmarks/{run}"
SHARED_LOGS = "logs/shared"

#: Model-spec keys that say how a model is run, not which weights: left out of the key
#: of its shared folder.
RUN_ONLY_MODEL_KEYS = frozenset({"pipeline"})

#: Run name when the workflow runs on its own default config (no --configfile).
DEFAULT_RUN = "default"
_RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def default_run_name(configfiles: Sequence[str | os.PathLike[str]]) -> str:
    """The run name a config without a ``run`` key gets: the stem of the last
    ``--configfile`` (``config/thesis.yaml`` -> ``thesis``), or its folder's name when the
    file is called ``config.yaml`` (``.test/config.yaml`` -> ``test``), so that copying a
    config to a new file starts a new run instead of overwriting the old one's results."""
    if not configfiles:
        return DEFAULT_RUN
    path = Path(configfiles[-1])
    name = path.stem if path.stem != "config" else path.resolve().parent.name
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", name).lstrip("._-")
    return name or DEFAULT_RUN


def spec_key(spec: Mapping[str, Any]) -> str:
    """Folder name of a shared download or model: 16 hex digits of the spec's hash."""
    return sha256_bytes(canonical_json(dict(spec)).encode())[:16]


#: File types a ``folder`` source picks up by default.
FOLDER_PATTERNS = ("*.png", "*.jpg", "*.jpeg", "*.tif", "*.tiff", "*.bmp", "*.webp")


def expand_image_sources(images: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Config ``images`` with every ``folder`` entry replaced by one ``file`` source per
    image file in it, named ``<entry>_<file stem>`` and sorted by name. Listing happens when
    the workflow is parsed, so a folder's images appear in the DAG like any other."""
    expanded: dict[str, dict[str, Any]] = {}
    for name, spec in images.items():
        if spec.get("kind") != "folder":
            expanded[name] = dict(spec)
            if isinstance(spec.get("sha256"), str):
                # Either case is accepted; one spelling, so one download folder.
                expanded[name]["sha256"] = spec["sha256"].lower()
            continue
        folder = Path(spec["path"])
        if not folder.is_dir():
            raise InputError(f"config key images.{name}.path: {folder} is not a folder")
        patterns = spec.get("patterns") or FOLDER_PATTERNS
        files = sorted({f for pattern in patterns for f in folder.glob(pattern) if f.is_file()})
        if not files:
            raise InputError(
                f"config key images.{name}: no files matching {list(patterns)} in {folder}"
            )
        for file in files:
            image = f"{name}_{re.sub(r'[^A-Za-z0-9_.-]', '_', file.stem)}"
            if image in expanded or image in images:
                raise InputError(f"config key images.{name}: image name {image!r} is taken twice")
            expanded[image] = {"kind": "file", "path": str(file)}
    return expanded


class Plan:
    """Everything the workflow derives from the config."""

    def __init__(self, config: Mapping[str, Any], default_run: str = DEFAULT_RUN) -> None:
        self.config = config
        self.run: str = str(config.get("run") or default_run)
        if not _RUN_NAME.match(self.run):
            raise InputError(
                f"config key run: {self.run!r} is not a folder name "
                "(letters, digits, '_', '.', '-'; not starting with '.', '_' or '-')"
            )
        self.image_sources = expand_image_sources(config["images"])
        self.images: list[str] = list(self.image_sources)
        # Hashed once: rules look these up per job, and a folder source can be thousands.
        self._source_keys = {i: spec_key(spec) for i, spec in self.image_sources.items()}
        self._images_by_source: dict[str, list[str]] = {}
        for image, key in self._source_keys.items():
            self._images_by_source.setdefault(key, []).append(image)
        # Region maps exist for procedural images; looked up once per metrics job.
        self._region_maps = {
            i: self.path(REGIONS, image=i)
            for i in self.images
            if self.image_sources[i]["kind"] == "procedural"
        }
        self.models: list[str] = list(config["models"])
        for model in self.models:
            self._check_pipeline(model)
        self.figures: dict[str, Any] = dict(config.get("figures") or {})
        self.band_px = int((config.get("metrics") or {}).get("band_px", 8))
        if not self.images:
            raise InputError("config key images: at least one image is needed")
        self._check_sizes(config["downsample"])
        if not self.models:
            raise InputError("config key models: at least one model is needed")
        self.variants = read_variants(config.get("variants") or {})
        self.experiments: dict[str, Experiment] = read_experiments(
            config.get("experiments") or {}, self.models, self.variants, self.images
        )
        # One id is one mask file per image, whichever experiments use it.
        self.masks = mask_specs.merge_masks({n: e.masks for n, e in self.experiments.items()})
        self._check_mask_blur()
        unique_labels(
            [s for e in self.experiments.values() for s in e.strengths.values()],
            "experiments.*.strengths",
        )
        self._check_figures()

    def experiment_models(self, name: str) -> list[str]:
        """The models experiment ``name`` runs (none if the config has no such experiment)."""
        experiment = self.experiments.get(name)
        return list(experiment.models) if experiment else []

    def mask_shape_outputs(self) -> list[str]:
        """The mask-shape sweep's fit table and one figure per model it runs; none without
        the sweep."""
        models = self.experiment_models("mask_shape_sweep")
        if not models:
            return []
        figures = [self.path(MASK_SHAPE_FIGURE, model=m) for m in models]
        return [self.path(MASK_SHAPE), *figures]

    def mechanisms_of(self, model: str, variant: str) -> mechanisms.Mechanisms:
        """What ``variant`` makes of ``model``'s pipeline."""
        return mechanisms.effective(self.model_pipeline(model), self.variants[variant])

    def _check_sizes(self, downsample: Mapping[str, Any]) -> None:
        """What downsampling would make of the sizes known now (procedural images);
        file and downloaded images are checked by the downsample rule, naming the image."""
        max_side, multiple = downsample["max_side"], downsample["multiple"]
        if max_side < multiple:
            raise InputError(
                f"config key downsample.max_side: {max_side} is less than downsample.multiple "
                f"({multiple}): every side would be floored to 0 px"
            )
        for image in self.procedural_images():
            spec = self.image_sources[image]
            try:
                downsample_size(spec["width"], spec["height"], max_side, multiple)
            except InputError as exc:
                raise InputError(f"config key images.{image}: {exc}") from None

    def _check_pipeline(self, model: str) -> None:
        """The study's pipeline needs a 4-channel UNet: refuse any other now where its
        channels are known (tiny models, local folders); hub checkpoints are checked by
        their inpaint job before it computes anything."""
        if self.model_pipeline(model) != STUDY_PIPELINE:
            return
        spec = self.config["models"][model]
        channels = spec.get("unet_in_channels")
        if spec["kind"] == "local":
            try:
                channels = models.unet_in_channels(spec["path"])
            except InputError:
                channels = None  # not there yet, or broken: the inpaint job says which
        if channels is not None:
            key = "pipeline" if spec.get("pipeline") else "(inpaint.pipeline)"
            check_unet_channels(channels, model, f"config key models.{model}.{key}: ")

    def _check_mask_blur(self) -> None:
        """A mask blur is the pipeline's own (today's ``mask_processor.blur``): the study's
        0.11.1 pipeline has none, so refuse it there rather than invent one."""
        for experiment in self.experiments.values():
            for spec in experiment.masks.values():
                for model in experiment.models:
                    if spec.blur_px and self.model_pipeline(model) == STUDY_PIPELINE:
                        raise InputError(
                            f"config key {spec.key}.blur_px: model {model} runs the study's "
                            "pipeline, which has no mask blur (diffusers 0.11.1); run this "
                            "mask on diffusers-pipeline models only (the experiment's models)"
                        )

    def _check_figures(self) -> None:
        figures = self.figures
        for i, image in enumerate(figures.get("worst_case_images") or []):
            if image not in self.images:
                raise InputError(
                    f"config key figures.worst_case_images[{i}]: unknown image {image!r}"
                )
        gallery = figures.get("gallery")
        if gallery and gallery["image"] not in self.images:
            raise InputError(
                f"config key figures.gallery.image: unknown image {gallery['image']!r}"
            )

    # --- paths ----------------------------------------------------------------------

    def path(self, template: str, **wildcards: Any) -> str:
        """``template`` with this run's folder filled in, and any ``wildcards`` given;
        the others stay as ``{wildcard}`` for Snakemake."""
        text = template.replace("{run}", self.run)
        for name, value in wildcards.items():
            text = text.replace("{" + name + "}", str(value))
        return text

    def source_key(self, image: str) -> str:
        return self._source_keys[image]

    def source_spec(self, key: str) -> tuple[dict[str, Any], list[str]]:
        """The source spec behind a shared download folder name, and the run's image
        names that use it (for messages)."""
        names = self._images_by_source[key]
        return dict(self.image_sources[names[0]]), list(names)

    def raw_image(self, image: str) -> str:
        return self.path(RAW_IMAGE, source=self.source_key(image))

    def model_key(self, model: str) -> str:
        """Folder key of the model's weights: the pipeline that runs them is not part of
        it, so ``tiny4`` and a ``tiny4_study`` of the same spec share one folder."""
        spec = self.config["models"][model]
        return spec_key({k: v for k, v in spec.items() if k not in RUN_ONLY_MODEL_KEYS})

    def model_pipeline(self, model: str) -> str:
        """The pipeline that runs ``model``: its own ``pipeline`` key, else
        ``inpaint.pipeline`` (default: today's diffusers pipeline)."""
        spec = self.config["models"][model]
        return str(spec.get("pipeline") or self.config["inpaint"].get("pipeline", DEFAULT_PIPELINE))

    def inpaint_settings(self, model: str) -> dict[str, Any]:
        """The ``inpaint`` settings of ``model``'s jobs, with its pipeline filled in."""
        return {**self.config["inpaint"], "pipeline": self.model_pipeline(model)}

    # --- per-file facts -------------------------------------------------------------

    def image_source(self, image: str) -> dict[str, Any]:
        return dict(self.image_sources[image])

    def model_spec(self, model: str) -> dict[str, Any]:
        return dict(self.config["models"][model])

    def model_dir(self, model: str) -> str:
        spec = self.config["models"][model]
        if spec["kind"] == "local":
            return str(spec["path"])
        return self.path(MODEL_DIR, model_key=self.model_key(model))

    def procedural_images(self) -> list[str]:
        return list(self._region_maps)

    def region_maps(self) -> dict[str, str]:
        """Ground-truth region maps (flat / textured), for the images that have one."""
        return dict(self._region_maps)

    def region_map(self, image: str) -> str | None:
        """``image``'s ground-truth region map, or None if it has none."""
        return self._region_maps.get(image)

    def built_models(self) -> dict[str, dict[str, Any]]:
        """Folder key -> model spec (weights only, without the pipeline that runs them),
        for the models the workflow makes itself (built or downloaded), not user folders."""
        return {
            self.model_key(m): {
                k: v for k, v in self.model_spec(m).items() if k not in RUN_ONLY_MODEL_KEYS
            }
            for m in self.models
            if self.config["models"][m]["kind"] != "local"
        }

    def mask_paths(self, image: str) -> list[str]:
        return [self.path(MASK, image=image, mask=mask_id) for mask_id in self.masks]

    def mask_records(self, image: str) -> list[dict[str, Any]]:
        """What draws each of ``image``'s masks (in :meth:`mask_paths`' order)."""
        return [spec.record(image) for spec in self.masks.values()]

    def mask_user_files(self, image: str) -> list[str]:
        """The user's mask files that ``image``'s masks are read from."""
        return sorted({f for spec in self.masks.values() for f in spec.user_files(image)})

    def tasks(self, model: str, image: str) -> list[dict[str, Any]]:
        """Every inpainting of one model on one image, across the experiments that run the
        model and their variants, in a stable order; a variant with several passes lists
        the later passes' PNGs in ``pass_paths``."""
        pipeline = self.model_pipeline(model)
        tasks = []
        for experiment in self.experiments.values():
            if model not in experiment.models:
                continue
            for variant in experiment.variants:
                mech = self.mechanisms_of(model, variant)
                changed = mechanisms.differences(pipeline, mech)
                for mask_id, spec in experiment.masks.items():
                    mask_path = self.path(MASK, image=image, mask=mask_id)
                    for s_label, strength in experiment.strengths.items():
                        for seed in experiment.seeds:
                            paths = [
                                self.path(
                                    INPAINTED,
                                    model=model,
                                    image=image,
                                    mask=mask_id,
                                    strength=s_label,
                                    seed=seed,
                                    suffix=mechanisms.file_suffix(changed, number),
                                )
                                for number in range(1, mech.passes + 1)
                            ]
                            tasks.append(
                                {
                                    "experiment": experiment.name,
                                    "variant": variant,
                                    "mechanisms": mech.record(),
                                    "radius_pct": spec.radius_pct,
                                    "mask": spec.record(image),
                                    "strength": strength,
                                    "seed": seed,
                                    "mask_path": mask_path,
                                    "inpainted_path": paths[0],
                                    "pass_paths": paths[1:],
                                }
                            )
        return tasks

    def n_inpaintings(self) -> int:
        """PNGs the experiments list (an inpainting two of them share counts twice)."""
        return sum(e.per_image * len(e.models) for e in self.experiments.values()) * len(
            self.images
        )

    def metrics_parts(self) -> list[str]:
        """One metrics table per inpaint job (model and image), merged into METRICS."""
        return [self.path(METRICS_PART, model=m, image=i) for m in self.models for i in self.images]

    def profile_parts(self) -> list[str]:
        """One long table of outside error by distance and texture bin per inpaint job,
        merged into PROFILE."""
        return [self.path(PROFILE_PART, model=m, image=i) for m in self.models for i in self.images]

    def manifests(self) -> list[str]:
        return [self.path(MANIFEST, model=m, image=i) for m in self.models for i in self.images]

    def summary(self) -> str:
        """For the console: what a run (or dry run) of this config means
        (:func:`maskleak.plan_summary.summary`)."""
        from maskleak.plan_summary import summary

        return summary(self)
