"""maskleak.code_version on a small package written for the test: which files a script
runs, and which edits change the hash."""

from __future__ import annotations

from pathlib import Path

import pytest

from maskleak.code_version import code_hash, library_files


@pytest.fixture
def package(tmp_path: Path) -> Path:
    """maskleak/{__init__, a, b, c, sub/__init__, sub/d}.py: a imports b (absolute), b
    imports sub.d (relative, inside a function), c is imported by nobody."""
    root = tmp_path / "maskleak"
    (root / "sub").mkdir(parents=True)
    files = {
        "__init__.py": '"""The package."""\n',
        "a.py": "from maskleak import b\n\nVALUE = 1\n",
        "b.py": "def f():\n    from .sub import d\n\n    return d.X\n",
        "c.py": "UNUSED = 1\n",
        "sub/__init__.py": "",
        "sub/d.py": '"""Docstring."""\n\nX = 2  # a comment\n',
    }
    for name, text in files.items():
        (root / name).write_text(text)
    (tmp_path / "script.py").write_text("from maskleak.a import VALUE\nprint(VALUE)\n")
    return root


def test_the_closure_follows_absolute_relative_and_lazy_imports(package: Path):
    script = package.parent / "script.py"
    names = [p.relative_to(package).as_posix() for p in library_files(script, package)]
    assert names == ["__init__.py", "a.py", "b.py", "sub/__init__.py", "sub/d.py"]


def test_comments_and_docstrings_do_not_change_the_hash_code_does(package: Path):
    script = package.parent / "script.py"
    before = code_hash(script, package)
    d = package / "sub/d.py"
    original = d.read_text()
    d.write_text('"""Another docstring."""\n\n\nX = 2  # another comment\n')
    assert code_hash(script, package) == before
    d.write_text(original.replace("X = 2", "X = 3"))
    assert code_hash(script, package) != before
    d.write_text(original)
    assert code_hash(script, package) == before
    # A module the script never imports is not part of its code.
    (package / "c.py").write_text("UNUSED = 2\n")
    assert code_hash(script, package) == before
