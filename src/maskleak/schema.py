"""Validation against the workflow's JSON schema (workflow/schemas/config.schema.yaml),
the one place that says what a config may contain.

Used in place of ``snakemake.utils.validate`` because that fills in the defaults of every
``oneOf`` branch (a hub model's ``revision: main`` then broke every local model), and
because its errors are a schema dump without the key at fault. Here defaults come only
from the branch that matched, and an error is one line naming the key, e.g.
``config key images.photo.sha256: required for kind url``. Library functions called
outside the workflow (tests, benchmarks) check their specs against the same definitions
with ``validate_spec``, so there are no hand-written re-checks to drift from the schema."""

from __future__ import annotations

import copy
import functools
import os
from collections.abc import Mapping, MutableMapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError

from maskleak.errors import InputError

#: The workflow's config schema (this package lives in src/ of the workflow's repository).
SCHEMA_PATH = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"

#: How a value that fails a ``pattern`` should have looked, in words.
PATTERN_WORDS = {
    "^[0-9a-fA-F]{64}$": "64 hex digits (a SHA-256 checksum)",
    "^https?://[^/\\s]+": "an http:// or https:// URL",
    "^[A-Za-z0-9][A-Za-z0-9_.-]*$": (
        "letters, digits, '_', '.', '-', not starting with '_', '.' or '-'"
    ),
    "^[^/\\s]+/[^/\\s]+$": "a hub repository id like owner/name",
}

#: What an entry of each section is called in messages: "a url source", "a hub model".
ENTRY_NOUNS = {"images": "source", "models": "model"}

_TYPE_WORDS = {
    "integer": "an integer",
    "number": "a number",
    "string": "a string",
    "array": "a list",
    "object": "an object",
    "boolean": "true or false",
    "null": "null",
}


def _is_integer(_checker: object, value: object) -> bool:
    # Strict: 64.0 is not a size or a seed, and True is not 1. numpy integers are fine.
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _is_number(_checker: object, value: object) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)


def _is_array(_checker: object, value: object) -> bool:
    return isinstance(value, list | tuple)


def _is_object(_checker: object, value: object) -> bool:
    return isinstance(value, Mapping)


_Validator = validators.extend(
    Draft202012Validator,
    type_checker=Draft202012Validator.TYPE_CHECKER.redefine_many(
        {
            "integer": _is_integer,
            "number": _is_number,
            "array": _is_array,
            "object": _is_object,
        }
    ),
)


@functools.lru_cache(maxsize=8)
def _cached_schema(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as handle:
            schema = yaml.safe_load(handle)
    except OSError as exc:
        raise InputError(f"config schema {path}: cannot read ({exc})") from exc
    if not isinstance(schema, dict):
        raise InputError(f"config schema {path}: not a YAML mapping")
    return schema


def _schema(path: str | os.PathLike[str] | None) -> dict[str, Any]:
    return _cached_schema(os.path.abspath(os.fspath(path or SCHEMA_PATH)))


def load_schema(path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The config schema as a dict (a copy; default: ``SCHEMA_PATH``)."""
    return copy.deepcopy(_schema(path))


@functools.lru_cache(maxsize=32)
def _validator(path: str, definition: str | None) -> Any:
    root = _cached_schema(path)
    if definition is None:
        return _Validator(root)
    if definition not in root.get("definitions", {}):
        raise InputError(f"config schema {path}: no definition {definition!r}")
    return _Validator({"$ref": f"#/definitions/{definition}", "definitions": root["definitions"]})


def validate_config(
    config: MutableMapping[str, Any], schema_path: str | os.PathLike[str] | None = None
) -> None:
    """Check ``config`` against the schema and fill in its defaults, in place (as
    Snakemake's ``validate`` did, but only from the ``oneOf`` branch that matched).

    Raises InputError with one line naming the key at fault."""
    path = os.path.abspath(os.fspath(schema_path or SCHEMA_PATH))
    validator = _validator(path, None)
    message = _first_error(validator, config, [], "config key ")
    if message is not None:
        raise InputError(message)  # raised here: one frame less in Snakemake's traceback
    _fill_defaults(validator.schema, config, _cached_schema(path))


def validate_spec(
    spec: Any,
    definition: str,
    key: str,
    *,
    prefix: str = "config key ",
    schema_path: str | os.PathLike[str] | None = None,
) -> Any:
    """Check one config entry (``spec``, found at config key ``key``) against the
    schema's ``definitions.<definition>``, for library functions called outside the
    workflow. Returns a copy with that branch's defaults filled in. Messages read
    ``<prefix><key>.<sub key>: ...``."""
    path = os.path.abspath(os.fspath(schema_path or SCHEMA_PATH))
    validator = _validator(path, definition)
    message = _first_error(validator, spec, [key], prefix)
    if message is not None:
        raise InputError(message)
    filled = copy.deepcopy(spec)
    _fill_defaults(validator.schema, filled, _cached_schema(path))
    return filled


# --------------------------------------------------------------------- messages


def _first_error(validator: Any, instance: Any, base: list[Any], prefix: str) -> str | None:
    """The one-line message for the first error of ``instance``, or None if valid."""
    errors = list(validator.iter_errors(instance))
    if not errors:
        return None
    where, text = _explain(min(errors, key=_order), None, base)
    return _line(prefix, base + where, text)


def _order(error: ValidationError) -> tuple[str, bool]:
    """Errors by key; within a key, a oneOf error first: it knows which branch (which
    ``kind``) was meant."""
    return _path_text(list(error.absolute_path)), not _is_choice(error)


def _is_choice(error: ValidationError) -> bool:
    return error.validator in ("oneOf", "anyOf")


def _path_text(path: Sequence[Any]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text.lstrip(".")


def _line(prefix: str, path: list[Any], text: str) -> str:
    where = _path_text(path)
    head = f"{prefix}{where}".rstrip() if where else (prefix.split()[0] if prefix else "value")
    return " ".join(f"{head}: {text}".split("\n"))


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _kind_branches(branches: Sequence[Any]) -> list[Any] | None:
    """The ``kind`` of each branch, if every branch is told apart by a ``kind`` const."""
    kinds = []
    for branch in branches:
        kind = (branch.get("properties") or {}).get("kind", {}) if isinstance(branch, dict) else {}
        if "const" not in kind:
            return None
        kinds.append(kind["const"])
    return kinds


def _explain(
    error: ValidationError,
    kind_of: tuple[list[Any], str, str, list[str]] | None,
    base: list[Any],
) -> tuple[list[Any], str]:
    """(path below ``base``, text) of the message for ``error``; ``kind_of`` is (path,
    kind, noun, keys) of the entry whose ``kind`` picked the branch reported, if any."""
    path = list(error.absolute_path)
    if _is_choice(error):
        return _explain_choice(error, path, base)
    validator, value, instance = error.validator, error.validator_value, error.instance
    if "propertyNames" in error.relative_schema_path:
        words = PATTERN_WORDS.get(error.schema.get("pattern", ""), "a valid name")
        return path, f"{_show(instance)} is not a valid name ({words})"
    kind_here = kind_of is not None and kind_of[0] == path
    if validator == "required":
        missing = next(k for k in value if k not in instance)
        text = f"required for kind {kind_of[1]}" if kind_of and kind_here else "required"
        return [*path, missing], text
    if validator == "additionalProperties":
        allowed = list(error.schema.get("properties") or {})
        extra = [k for k in instance if k not in allowed]
        if kind_of and kind_here:
            takes = f"a {kind_of[1]} {kind_of[2]} takes {', '.join(kind_of[3])}"
        else:
            takes = f"allowed: {', '.join(allowed)}"
        if not base and not path:
            return [extra[0]], f"unknown key ({takes})"
        keys = ", ".join(_show(k) for k in extra)
        return path, f"unknown key{'s' if len(extra) > 1 else ''} {keys} ({takes})"
    if validator == "type":
        types = [value] if isinstance(value, str) else list(value)
        words = " or ".join(_TYPE_WORDS.get(t, t) for t in types)
        return path, f"expected {words}, got {_show(instance)}"
    if validator in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        op = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">", "exclusiveMaximum": "<"}
        return path, f"must be {op[validator]} {value}, got {_show(instance)}"
    if validator == "multipleOf":
        return path, f"must be a multiple of {value}, got {_show(instance)}"
    if validator == "enum":
        return path, f"{_show(instance)} is not one of {', '.join(str(v) for v in value)}"
    if validator == "const":
        return path, f"must be {_show(value)}, got {_show(instance)}"
    if validator == "pattern":
        words = PATTERN_WORDS.get(value, f"a string matching {value}")
        return path, f"expected {words}, got {_show(instance)}"
    if validator in ("minLength", "minItems", "minProperties"):
        if value == 1:
            return path, "must not be empty"
        unit = {"minLength": "characters", "minItems": "items", "minProperties": "entries"}
        return path, f"needs at least {value} {unit[validator]}, got {_show(instance)}"
    return path, error.message


def _explain_choice(
    error: ValidationError, path: list[Any], base: list[Any]
) -> tuple[list[Any], str]:
    """A value that fits none of a ``oneOf``'s branches: report the error of the branch
    it was meant for (picked by ``kind``, else by type), or what the branches accept."""
    branches = list(error.validator_value)
    instance = error.instance
    kinds = _kind_branches(branches)
    chosen: int | None = None
    kind_of = None
    if kinds is not None:
        listed = ", ".join(str(k) for k in kinds)
        if not isinstance(instance, Mapping):
            return path, f"expected an object with a kind ({listed}), got {_show(instance)}"
        if "kind" not in instance:
            return [*path, "kind"], f"required (one of {listed})"
        kind = instance["kind"]
        if not isinstance(kind, str) or kind not in kinds:
            return [*path, "kind"], f"unknown kind {_show(kind)} (use {listed})"
        chosen = kinds.index(kind)
        full = [*base, *path]
        section = str(full[0]).split(".")[0] if full else ""
        keys = list(branches[chosen].get("properties") or {})
        kind_of = (path, kind, ENTRY_NOUNS.get(section, "entry"), keys)
    else:
        typed = [
            i
            for i, b in enumerate(branches)
            if isinstance(b, dict)
            and "type" in b
            and any(_Validator.TYPE_CHECKER.is_type(instance, t) for t in _types(b["type"]))
        ]
        if len(typed) == 1:
            chosen = typed[0]
    if chosen is not None:
        context = [e for e in error.context or [] if e.relative_schema_path[0] == chosen]
        if context:
            return _explain(min(context, key=_order), kind_of, base)
    accepted = " or ".join(_branch_words(b) for b in branches)
    return path, f"expected {accepted}, got {_show(instance)}"


def _types(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _branch_words(branch: Any) -> str:
    if not isinstance(branch, dict):
        return "?"
    if "const" in branch:
        return _show(branch["const"])
    types = _types(branch.get("type", []))
    if "array" in types:
        items = _types((branch.get("items") or {}).get("type", []))
        return f"a list of {items[0]}s" if len(items) == 1 else "a list"
    if "object" in types and branch.get("properties"):
        return "{" + ", ".join(branch["properties"]) + "}"
    words = " or ".join(_TYPE_WORDS.get(t, t) for t in types) or branch.get("description", "?")
    if "minimum" in branch:
        words += f" >= {branch['minimum']}"
    return words


# --------------------------------------------------------------------- defaults


def _resolve(node: Any, root: dict[str, Any]) -> Any:
    seen = 0
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        if not ref.startswith("#/") or seen > 32:
            raise InputError(f"config schema: cannot resolve $ref {ref!r}")
        target: Any = root
        for part in ref[2:].split("/"):
            target = target[part]
        node, seen = target, seen + 1
    return node


def _default(node: Any, root: dict[str, Any]) -> tuple[bool, Any]:
    """Whether ``node`` (or what its $ref names) declares a default, and the default."""
    while isinstance(node, dict):
        if "default" in node:
            return True, copy.deepcopy(node["default"])
        if "$ref" not in node:
            break
        node = _resolve({"$ref": node["$ref"]}, root)
    return False, None


def _fill_defaults(node: Any, instance: Any, root: dict[str, Any]) -> None:
    """Set missing properties that have a default, recursively, following only the
    ``oneOf``/``anyOf`` branch that ``instance`` is valid under."""
    node = _resolve(node, root)
    if not isinstance(node, dict):
        return
    if isinstance(instance, MutableMapping):
        properties = node.get("properties") or {}
        for name, sub in properties.items():
            if name not in instance:
                has, value = _default(sub, root)
                if has:
                    instance[name] = value
        for name, sub in properties.items():
            if name in instance:
                _fill_defaults(sub, instance[name], root)
        extra = node.get("additionalProperties")
        if isinstance(extra, dict):
            for name in instance:
                if name not in properties:
                    _fill_defaults(extra, instance[name], root)
    if isinstance(instance, list) and isinstance(node.get("items"), dict):
        for item in instance:
            _fill_defaults(node["items"], item, root)
    for keyword in ("oneOf", "anyOf"):
        for branch in node.get(keyword) or []:
            if _Validator({**branch, "definitions": root.get("definitions", {})}).is_valid(
                instance
            ):
                _fill_defaults(branch, instance, root)
                break
    for branch in node.get("allOf") or []:
        _fill_defaults(branch, instance, root)
