"""The pipeline mask blur (a mask entry's ``blur_px``) on the real tiny 4-channel model.

The mask rule writes the drawn, unblurred mask; the inpaint job hands the pipeline that
mask through diffusers' own ``VaeImageProcessor.blur`` (``pipe.mask_processor.blur``, a
PIL Gaussian). On a 4-channel UNet the pipeline's mask processor binarises the blurred
mask at 0.5 (pixel >= 128 is inpaint) and ``prepare_mask_latents`` shrinks it to the
latent grid with torch's nearest interpolation, which at an exact factor of 8 reads each
8x8 cell's top-left pixel. The tiny VAE is an exact 8x8 block-mean autoencoder, so with
the posterior mode every kept cell comes out as the job's VAE round trip to the level."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from diffusers.image_processor import VaeImageProcessor
from PIL import Image, ImageFilter

from maskleak.errors import InputError
from maskleak.inpaint import Settings, Task, run_job
from maskleak.mask_specs import MaskSpec, read_masks, write_mask_files
from maskleak.masks import circle_mask
from maskleak.mechanisms import Mechanisms
from maskleak.models import load_pipeline
from maskleak.provenance import read_png_record

WIDTH, HEIGHT = 96, 64
STEPS = 4
SETTINGS = Settings(steps=STEPS, batch_size=1)
STRENGTHS = (1.0, 0.5)
#: One rectangle and one strokes mask, each unblurred and blurred. Measured on this 96x64
#: canvas: the 6 px blur drops 5 of the rectangle's 24 latent cells; the 4 px blur drops 4
#: of the strokes' 10 cells and adds 2 (asserted below, so the test shows the blur matters).
MASK_ENTRIES = [
    {"kind": "rectangle", "boxes": [[0.25, 0.25, 0.75, 0.75]]},
    {"kind": "rectangle", "boxes": [[0.25, 0.25, 0.75, 0.75]], "blur_px": 6},
    {"kind": "strokes", "seeds": [1]},
    {"kind": "strokes", "seeds": [1], "blur_px": 4},
]
#: Blurred mask id -> (its unblurred twin, blur_px).
BLURRED = {
    "rect-25-25-75-75-b6": ("rect-25-25-75-75", 6.0),
    "strokes-medium-s1-b4": ("strokes-medium-s1", 4.0),
}
MODE = Mechanisms(latent_encoding="mode")


def _pixels(path: str | Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB")).astype(np.int64)


def _cells_inpainted(mask: np.ndarray) -> np.ndarray:
    """Latent cells (H/8, W/8) the 4-channel pipeline repaints for a uint8 mask it is
    handed: binarised at 0.5 (v / 255 >= 0.5 <=> v >= 128), then each cell's top-left
    pixel (torch nearest, integer factor 8)."""
    return mask[::8, ::8] >= 128


def _footprint(cells: np.ndarray) -> np.ndarray:
    return np.kron(cells, np.ones((8, 8), dtype=bool))


@pytest.fixture(scope="module")
def blur_job(tiny_models, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The four masks drawn by write_mask_files, and one job on the tiny 4-channel model:
    each mask at every strength (seed 0) with the pipeline as it ships, and at strength 1
    with the posterior mode."""
    root = tmp_path_factory.mktemp("mask_blur")
    rng = np.random.default_rng(7)
    image = root / "image.png"
    Image.fromarray(rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)).save(image)
    specs = read_masks({"masks": MASK_ENTRIES}, "experiments.e", ["image"])
    assert list(specs) == [
        "rect-25-25-75-75",
        "rect-25-25-75-75-b6",
        "strokes-medium-s1",
        "strokes-medium-s1-b4",
    ]
    mask_paths = {mask_id: str(root / "masks" / f"{mask_id}.png") for mask_id in specs}
    write_mask_files(
        str(image), [s.record("image") for s in specs.values()], list(mask_paths.values())
    )
    out = root / "out"
    tasks = []
    for mask_id, spec in specs.items():
        for strength in STRENGTHS:
            path = out / f"{mask_id}_s{strength}_seed0.png"
            tasks.append(_task(spec, mask_paths[mask_id], strength, path))
        path = out / "mode" / f"{mask_id}_s1.0_seed0.png"
        tasks.append(_task(spec, mask_paths[mask_id], 1.0, path, MODE))
    manifest = root / "manifest.json"
    summary = run_job(
        str(tiny_models[4]), "tiny4", str(image), "image", tasks, SETTINGS, str(manifest)
    )
    data = json.loads(manifest.read_text())
    return {
        "image": str(image),
        "specs": specs,
        "mask_paths": mask_paths,
        "masks": {m: np.asarray(Image.open(p)) for m, p in mask_paths.items()},
        "summary": summary,
        "manifest": data,
        "entries": {
            (e["mask"]["mask_id"], e["strength"], e["variant"]): e for e in data["inpaintings"]
        },
        "roundtrip": _pixels(data["vae_roundtrip_path"]),
    }


def _task(
    spec: MaskSpec, mask_path: str, strength: float, path: Path, mech: Mechanisms | None = None
) -> Task:
    return Task(
        "mask_blur",
        spec.radius_pct,
        strength,
        0,
        mask_path,
        str(path),
        variant="baseline" if mech is None else "mode",
        mechanisms=mech,
        mask=spec.record("image"),
    )


def test_mask_files_are_the_drawn_masks_whatever_the_blur(blur_job):
    """The mask rule does not blur: a blurred mask's PNG has its twin's pixels exactly;
    its record says the blur the pipeline will get."""
    for blurred, (plain, blur_px) in BLURRED.items():
        a, b = blur_job["masks"][blurred], blur_job["masks"][plain]
        assert a.shape == (HEIGHT, WIDTH) and a.dtype == np.uint8
        assert set(np.unique(a).tolist()) == {0, 255}
        assert np.array_equal(a, b)
        assert read_png_record(blur_job["mask_paths"][blurred])["blur_px"] == blur_px
        assert read_png_record(blur_job["mask_paths"][plain])["blur_px"] == 0.0


def test_the_blur_changes_which_latent_cells_are_repainted(blur_job):
    """The precondition that makes the pixel checks below able to fail: for both masks the
    blurred mask repaints other cells than the drawn one (the strokes' blur both drops and
    adds cells)."""
    changed = {}
    for blurred, (plain, blur_px) in BLURRED.items():
        drawn = blur_job["masks"][plain]
        # PIL's own Gaussian, not diffusers' wrapper: the same filter, computed apart.
        soft = np.asarray(Image.fromarray(drawn).filter(ImageFilter.GaussianBlur(blur_px)))
        before, after = _cells_inpainted(drawn), _cells_inpainted(soft)
        changed[blurred] = (int((before & ~after).sum()), int((after & ~before).sum()))
    assert changed == {"rect-25-25-75-75-b6": (5, 0), "strokes-medium-s1-b4": (4, 2)}


def test_manifest_records_the_blur_and_the_keys_differ(blur_job):
    entries, summary = blur_job["entries"], blur_job["summary"]
    assert summary["computed"] == len(blur_job["manifest"]["inpaintings"]) == 4 * 3
    for mask_id, spec in blur_job["specs"].items():
        for strength in STRENGTHS:
            entry = entries[(mask_id, strength, "baseline")]
            assert entry["mask"] == spec.record("image")
            assert entry["mask"]["blur_px"] == spec.blur_px
            assert entry["mask_path"] == blur_job["mask_paths"][mask_id]
            assert read_png_record(entry["inpainted_path"])["key"] == entry["key"]
    for blurred, (plain, blur_px) in BLURRED.items():
        assert entries[(blurred, 1.0, "baseline")]["mask"]["blur_px"] == blur_px
        for strength in STRENGTHS:
            for variant in ("baseline",) if strength != 1.0 else ("baseline", "mode"):
                a = entries[(blurred, strength, variant)]["key"]
                b = entries[(plain, strength, variant)]["key"]
                assert a != b, (blurred, strength, variant)


def test_blurred_task_is_the_pipeline_called_with_the_blurred_mask(blur_job, tiny_models):
    """Each PNG is, to the byte value, what today's diffusers pipeline returns when called
    directly with the drawn mask (unblurred tasks) or with
    ``mask_image=VaeImageProcessor.blur(mask, blur_px)`` (blurred tasks), CPU generator
    seeded 0, the job's steps, strength, empty prompt and guidance 0; and the blur
    changes the result."""
    pipe = load_pipeline(tiny_models[4])
    image = Image.open(blur_job["image"]).convert("RGB")

    def direct(mask: Image.Image, strength: float) -> np.ndarray:
        with torch.inference_mode():
            result = pipe(
                prompt=[""],
                image=[image],
                mask_image=[mask],
                strength=strength,
                num_inference_steps=STEPS,
                guidance_scale=0.0,
                generator=[torch.Generator(device="cpu").manual_seed(0)],
                height=HEIGHT,
                width=WIDTH,
                output_type="pil",
            )
        return np.asarray(result.images[0]).astype(np.int64)

    for blurred, (plain, blur_px) in BLURRED.items():
        drawn = Image.fromarray(blur_job["masks"][plain])
        for strength in STRENGTHS:
            job_blurred = _pixels(
                blur_job["entries"][(blurred, strength, "baseline")]["inpainted_path"]
            )
            job_plain = _pixels(
                blur_job["entries"][(plain, strength, "baseline")]["inpainted_path"]
            )
            soft = VaeImageProcessor.blur(drawn, blur_px)
            assert np.array_equal(job_blurred, direct(soft, strength)), (blurred, strength)
            assert np.array_equal(job_plain, direct(drawn, strength)), (plain, strength)
            assert (job_blurred != job_plain).any(), (blurred, strength)


def test_with_the_posterior_mode_the_blurred_masks_kept_cells_are_the_round_trip(blur_job):
    """Posterior mode, final paste on: every cell whose top-left pixel of the blurred mask
    is below 128 is the VAE round trip's exactly; the cells the blur stops repainting are
    the round trip's under the blur but not without it, and the cells it starts repainting
    the other way round."""
    rt = blur_job["roundtrip"]
    for blurred, (plain, blur_px) in BLURRED.items():
        drawn = blur_job["masks"][plain]
        soft = np.asarray(Image.fromarray(drawn).filter(ImageFilter.GaussianBlur(blur_px)))
        cells_soft, cells_drawn = _cells_inpainted(soft), _cells_inpainted(drawn)
        out_soft = _pixels(blur_job["entries"][(blurred, 1.0, "mode")]["inpainted_path"])
        out_drawn = _pixels(blur_job["entries"][(plain, 1.0, "mode")]["inpainted_path"])
        for out, cells in ((out_soft, cells_soft), (out_drawn, cells_drawn)):
            kept = ~_footprint(cells)
            assert np.array_equal(out[kept], rt[kept])
            # Strength 1 from noise: every repainted cell moves off the round trip.
            for i, j in zip(*np.nonzero(cells), strict=True):
                block = (slice(8 * i, 8 * i + 8), slice(8 * j, 8 * j + 8))
                assert (out[block] != rt[block]).any(), (blurred, i, j)
        dropped = _footprint(cells_drawn & ~cells_soft)
        assert dropped.any()
        assert np.array_equal(out_soft[dropped], rt[dropped])
        assert (out_drawn[dropped] != rt[dropped]).any()
        added = _footprint(cells_soft & ~cells_drawn)
        if added.any():
            assert np.array_equal(out_drawn[added], rt[added])
            assert (out_soft[added] != rt[added]).any()


def test_an_unblurred_disc_spec_has_the_study_discs_key(tiny_models, tmp_path):
    """A circle entry without blur inpaints the study's disc: its key is that of a task
    with no mask record (the disc of radius_pct), so the PNG is reused; with a blur the
    mask file is the same disc but the key differs."""
    rng = np.random.default_rng(3)
    image = tmp_path / "image.png"
    Image.fromarray(rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)).save(image)
    specs = read_masks(
        {"radius_pct": [80], "masks": [{"kind": "circle", "radius_pct": [80], "blur_px": 6}]},
        "experiments.e",
        ["image"],
    )
    assert list(specs) == ["r80", "r80-b6"]
    paths = [str(tmp_path / f"{m}.png") for m in specs]
    write_mask_files(str(image), [s.record("image") for s in specs.values()], paths)
    disc = np.asarray(circle_mask(WIDTH, HEIGHT, 80.0))
    assert all(np.array_equal(np.asarray(Image.open(p)), disc) for p in paths)

    def run(tasks: list[Task], manifest: str) -> tuple[dict[str, Any], list[str]]:
        summary = run_job(
            str(tiny_models[4]), "tiny4", str(image), "image", tasks, SETTINGS, manifest
        )
        keys = [e["key"] for e in json.loads(Path(manifest).read_text())["inpaintings"]]
        return summary, keys

    outs = [str(tmp_path / f"{m}_s0.5_seed0.png") for m in specs]
    spec_tasks = [
        Task("e", 80.0, 0.5, 0, p, o, mask=s.record("image"))
        for s, p, o in zip(specs.values(), paths, outs, strict=True)
    ]
    summary, (plain_key, blurred_key) = run(spec_tasks, str(tmp_path / "a.json"))
    assert summary["computed"] == 2 and plain_key != blurred_key
    study_disc = Task("e", 80.0, 0.5, 0, paths[0], outs[0])
    summary, (study_key,) = run([study_disc], str(tmp_path / "b.json"))
    assert study_key == plain_key and summary["computed"] == 0
    assert json.loads((tmp_path / "b.json").read_text())["inpaintings"][0]["mask"] == {
        **specs["r80"].record("image"),
        "key": "radius_pct",
    }


def test_a_blur_that_leaves_nothing_to_inpaint_is_refused(tiny_models, tmp_path: Path) -> None:
    """A 2 px wide box blurred by 6 px peaks far below 128: the pipeline, which binarises at
    0.5, would inpaint nothing. The job refuses it, naming the config key, before it
    computes or writes anything."""
    image = tmp_path / "image.png"
    Image.new("RGB", (WIDTH, HEIGHT), (90, 90, 90)).save(image)
    (spec,) = read_masks(
        {"masks": [{"kind": "rectangle", "boxes": [[0.5, 0.25, 0.52, 0.75]], "blur_px": 6}]},
        "experiments.e",
        ["image"],
    ).values()
    mask_path = tmp_path / f"{spec.mask_id}.png"
    write_mask_files(str(image), [spec.record("image")], [str(mask_path)])
    drawn = np.asarray(Image.open(mask_path))
    assert (drawn == 255).sum() == 2 * 32  # 2 columns x 32 rows, blurred below 128 below
    assert np.asarray(Image.fromarray(drawn).filter(ImageFilter.GaussianBlur(6))).max() < 128
    out = tmp_path / "out"
    task = Task("e", None, 1.0, 0, str(mask_path), str(out / "x.png"), mask=spec.record("image"))
    with pytest.raises(InputError) as err:
        run_job(
            str(tiny_models[4]),
            "tiny",
            str(image),
            "image",
            [task],
            SETTINGS,
            str(tmp_path / "m.json"),
        )
    assert str(err.value) == (
        "config key experiments.e.masks[0].blur_px: blurring mask rect-50-25-52-75-b6 by 6 px "
        "leaves no pixel >= 128, and the pipeline binarises at 0.5: nothing would be "
        "inpainted; use a smaller blur"
    )
    assert not out.exists() and not (tmp_path / "m.json").exists()
