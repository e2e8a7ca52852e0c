"""Which library code a workflow script runs, as one hash, so that Snakemake reruns a rule
when (and only when) that code changes.

Snakemake's ``code`` rerun trigger covers a rule's script file, not the modules it
imports. Each rule therefore gets a ``params`` value: the hash of the maskleak modules its
script imports, followed transitively (found by reading their ``import`` statements, so
nothing is imported to compute it). The hash is of the syntax tree without docstrings, so
comments, formatting and documentation do not rerun anything, and restoring a file to its
old content restores the old hash (content, not modification time).
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import os
from pathlib import Path

from maskleak.provenance import sha256_bytes

PACKAGE = "maskleak"


@functools.cache
def package_root() -> Path:
    """The folder of the maskleak package that this interpreter imports (the one the
    workflow's scripts will run)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"{PACKAGE} is not importable")
    return Path(next(iter(spec.submodule_search_locations)))


def _module_file(name: str, root: Path) -> Path | None:
    """Source file of module ``maskleak.a.b`` under ``root``, or None if it is not one."""
    parts = name.split(".")[1:]
    base = root.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if parts and candidate.is_file():
            return candidate
    return root / "__init__.py" if not parts else None


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([PACKAGE, *parts])


def _imported(tree: ast.AST, module: str, is_package: bool) -> set[str]:
    """Names of the maskleak modules (or module attributes) a syntax tree imports."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                package = module.split(".")
                package = package if is_package else package[:-1]
                base = package[: len(package) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            names.add(source)
            names.update(f"{source}.{alias.name}" for alias in node.names)
    return {n for n in names if n == PACKAGE or n.startswith(PACKAGE + ".")}


def _normalised(tree: ast.Module) -> str:
    """The tree without docstrings, without line numbers."""
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            and isinstance(body, list)
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            body[0] = ast.Pass()
    return ast.dump(tree, include_attributes=False)


def library_files(script: str | os.PathLike[str], root: Path | None = None) -> list[Path]:
    """The maskleak source files ``script`` runs: those it imports, transitively, with the
    ``__init__.py`` of every package on the way. Sorted."""
    root = package_root() if root is None else root
    seen: set[Path] = set()
    queue: list[tuple[Path, str, bool]] = [(Path(script), "__main__", False)]
    while queue:
        path, module, is_package = queue.pop()
        tree = ast.parse(path.read_bytes(), filename=str(path))
        for name in sorted(_imported(tree, module, is_package)):
            parts = name.split(".")
            # Importing a.b.c runs a/__init__, a/b/__init__ and a/b/c.
            for depth in range(1, len(parts) + 1):
                file = _module_file(".".join(parts[:depth]), root)
                if file is not None and file not in seen:
                    seen.add(file)
                    queue.append((file, _module_name(file, root), file.name == "__init__.py"))
    return sorted(seen)


def code_hash(script: str | os.PathLike[str], root: Path | None = None) -> str:
    """16 hex digits naming the library code ``script`` runs (see the module docstring)."""
    root = package_root() if root is None else root
    parts = []
    for file in library_files(script, root):
        tree = ast.parse(file.read_bytes(), filename=str(file))
        parts.append(f"{file.relative_to(root).as_posix()}\n{_normalised(tree)}")
    return sha256_bytes("\n\n".join(parts).encode())[:16]
