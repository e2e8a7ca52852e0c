"""The config schema (workflow/schemas/config.schema.yaml) and maskleak.schema, which
validates against it: one-line errors naming the key, defaults only from the branch that
matched, every key described in the schema and in config/README.md."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from maskleak.errors import InputError
from maskleak.schema import SCHEMA_PATH, load_schema, validate_config, validate_spec

REPO = Path(__file__).resolve().parents[1]


def small_config() -> dict[str, Any]:
    return yaml.safe_load((REPO / ".test/config.yaml").read_text())


def _error(config: dict[str, Any]) -> str:
    with pytest.raises(InputError) as info:
        validate_config(config)
    message = str(info.value)
    assert "\n" not in message, message
    assert message.startswith("config key"), message
    return message


def test_schema_path_is_the_workflows_schema():
    assert SCHEMA_PATH == REPO / "workflow/schemas/config.schema.yaml"


@pytest.mark.parametrize("name", ["config/config.yaml", "config/thesis.yaml", ".test/config.yaml"])
def test_shipped_configs_are_valid(name):
    validate_config(yaml.safe_load((REPO / name).read_text()))


# ------------------------------------------------------------------ defaults


def test_defaults_come_only_from_the_branch_that_matched():
    """Snakemake's validate filled the hub branch's ``revision: main`` into every model,
    so a local model failed its own branch (no ``revision`` there)."""
    config = small_config()
    config["models"] = {
        "loc": {"kind": "local", "path": "some/folder"},
        "hub": {"kind": "hub", "repo_id": "org/name"},
        "tiny": {"kind": "tiny", "unet_in_channels": 4, "seed": 0},
    }
    validate_config(config)
    assert config["models"]["loc"] == {"kind": "local", "path": "some/folder", "variant": None}
    assert config["models"]["hub"] == {
        "kind": "hub",
        "repo_id": "org/name",
        "revision": "main",
        "variant": None,
    }
    assert config["models"]["tiny"] == {"kind": "tiny", "unet_in_channels": 4, "seed": 0}


def test_defaults_fill_nested_objects_like_snakemake_did():
    config = small_config()
    config.pop("figures")
    validate_config(config)
    assert config["metrics"] == {"band_px": 8}
    assert config["figures"] == {"worst_case_images": []}
    assert config["inpaint"] == {
        "steps": 3,
        "prompt": "",
        "guidance_scale": 0.0,
        "scheduler": "default",
        "dtype": "auto",
        "batch_size": "auto",
        "pipeline": "diffusers",
    }
    # Defaults are copies: filling one config never changes the schema or another config.
    config["metrics"]["band_px"] = 3
    other = small_config()
    validate_config(other)
    assert other["metrics"] == {"band_px": 8}


# ------------------------------------------------------------------ one-line messages


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            {"images": {"photo": {"kind": "url", "url": "https://example.org/a.png"}}},
            "config key images.photo.sha256: required for kind url",
        ),
        (
            {"images": {"photo": {"kind": "url", "url": "https://x.org/a", "sha265": "0" * 64}}},
            "config key images.photo: unknown key 'sha265' (a url source takes kind, url, sha256)",
        ),
        (
            {"images": {"photo": {"kind": "file", "path": "a.png", "sha256": "xyz"}}},
            "config key images.photo.sha256: expected 64 hex digits (a SHA-256 checksum), "
            "got 'xyz'",
        ),
        (
            {"images": {"photo": {"kind": "kaggle", "name": "x"}}},
            "config key images.photo.kind: unknown kind 'kaggle' "
            "(use skimage, procedural, file, folder, url)",
        ),
        (
            {"images": {"photo": {"name": "astronaut"}}},
            "config key images.photo.kind: required (one of skimage, procedural, file, folder, "
            "url)",
        ),
        (
            {"images": {"photo": {"kind": "procedural", "seed": 1, "width": 8, "height": 64}}},
            "config key images.photo.width: must be >= 16, got 8",
        ),
        (
            {"images": {"photo": {"kind": "procedural", "seed": 1, "width": 64.0, "height": 64}}},
            "config key images.photo.width: expected an integer, got 64.0",
        ),
        (
            {"images": {"bad name": {"kind": "skimage", "name": "astronaut"}}},
            "config key images: 'bad name' is not a valid name",
        ),
        (
            {"models": {"m": {"kind": "local", "path": "x", "revision": "main"}}},
            "config key models.m: unknown key 'revision' "
            "(a local model takes kind, path, variant, pipeline)",
        ),
        (
            {"models": {"m": {"kind": "tiny", "unet_in_channels": 5, "seed": 0}}},
            "config key models.m.unet_in_channels: 5 is not one of 4, 9",
        ),
        ({"inpaint": {"steps": -3}}, "config key inpaint.steps: must be >= 1, got -3"),
        (
            {"inpaint": {"steps": 3, "batch_size": "many"}},
            "config key inpaint.batch_size: expected 'auto' or an integer >= 1, got 'many'",
        ),
        (
            {"downsample": {"max_side": 192, "multiple": 30}},
            "config key downsample.multiple: must be a multiple of 8, got 30",
        ),
        ({"downsample": {"max_side": 192}}, "config key downsample.multiple: required"),
        (
            {"experiments": {"strength_sweep": {"radius_pct": [80], "strengths": {"start": 0}}}},
            "config key experiments.strength_sweep.seeds: required",
        ),
        (
            {
                "experiments": {
                    "strength_sweep": {"radius_pct": [80], "strengths": {"start": 0}, "seeds": [0]}
                }
            },
            "config key experiments.strength_sweep.strengths.stop: required",
        ),
        (
            {
                "experiments": {
                    "strength_sweep": {"radius_pct": [80, "x"], "strengths": [0.5], "seeds": [0]}
                }
            },
            "config key experiments.strength_sweep.radius_pct[1]: expected a number, got 'x'",
        ),
        ({"colour": "blue"}, "config key colour: unknown key (allowed: run, images, downsample, "),
    ],
)
def test_errors_are_one_line_naming_the_key(edit, message):
    config = small_config()
    config.update(copy.deepcopy(edit))
    assert _error(config).startswith(message)


def test_upper_case_sha256_is_accepted():
    config = small_config()
    config["images"]["photo"] = {"kind": "url", "url": "https://x.org/a.png", "sha256": "AB" * 32}
    validate_config(config)


def test_validate_spec_checks_one_definition():
    validate_spec({"kind": "skimage", "name": "coffee"}, "image_source", "images.pic")
    with pytest.raises(
        InputError, match=r"^config key images\.pic\.sha256: required for kind url$"
    ):
        validate_spec({"kind": "url", "url": "https://x.org/a"}, "image_source", "images.pic")
    with pytest.raises(InputError, match="no definition 'nope'"):
        validate_spec({}, "nope", "x")


def test_validate_spec_returns_a_copy_with_defaults():
    spec = {"kind": "hub", "repo_id": "a/b"}
    filled = validate_spec(spec, "model_source", "models.m")
    assert filled == {"kind": "hub", "repo_id": "a/b", "revision": "main", "variant": None}
    assert spec == {"kind": "hub", "repo_id": "a/b"}


# ------------------------------------------------------------------ documentation


def _properties(schema: Any, where: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every (dotted path, subschema) declared under a ``properties`` anywhere."""
    if isinstance(schema, dict):
        for name, sub in (schema.get("properties") or {}).items():
            yield f"{where}.{name}".lstrip("."), sub
        for key, value in schema.items():
            if key != "properties":
                yield from _properties(value, f"{where}/{key}")
        for name, sub in (schema.get("properties") or {}).items():
            yield from _properties(sub, f"{where}.{name}")
    elif isinstance(schema, list):
        for i, value in enumerate(schema):
            yield from _properties(value, f"{where}[{i}]")


def test_every_schema_property_has_a_description():
    schema = load_schema()
    missing = sorted(
        {path for path, sub in _properties(schema) if not str(sub.get("description", "")).strip()}
    )
    assert missing == []
    assert all(d.get("description") for d in schema["definitions"].values())
    for source in ("image_source", "model_source"):
        assert all(b.get("description") for b in schema["definitions"][source]["oneOf"])


def _resolve(schema: dict[str, Any], sub: dict[str, Any]) -> dict[str, Any]:
    ref = sub.get("$ref")
    if ref is None:
        return sub
    name = ref.removeprefix("#/definitions/")
    return _resolve(schema, schema["definitions"][name])


def _keys(schema: dict[str, Any], sub: dict[str, Any]) -> set[str]:
    """Keys directly below ``sub``: its properties, or the keys of every branch of the
    entries it maps names to (image and model sources)."""
    sub = _resolve(schema, sub)
    keys = set(sub.get("properties") or {})
    entries = sub.get("additionalProperties")
    if isinstance(entries, dict):
        entries = _resolve(schema, entries)
        for branch in entries.get("oneOf", []):
            keys |= set(branch.get("properties") or {})
    return keys


def test_config_readme_mentions_every_key():
    schema = load_schema()
    readme = (REPO / "config/README.md").read_text()
    mentioned = set(re.findall(r"`([A-Za-z_][A-Za-z0-9_]*)`", readme))
    mentioned |= {
        part for dotted in re.findall(r"`([A-Za-z_][\w.]*)", readme) for part in dotted.split(".")
    }
    wanted = set(schema["properties"])
    for sub in schema["properties"].values():
        wanted |= _keys(schema, sub)
        # and one level further where there is one (experiments' and the gallery's keys)
        for below in (_resolve(schema, sub).get("properties") or {}).values():
            wanted |= _keys(schema, below)
    assert {"radius_pct", "strengths", "seeds", "image", "strength"} <= wanted
    assert sorted(wanted - mentioned) == []
    # the run name and the folder layout are explained
    for phrase in ("results/<run>/", "resources/images", "resources/models"):
        assert phrase in readme
