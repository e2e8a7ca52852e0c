"""Shared fixtures: the real tiny model, built once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    """Both tiny variants saved as diffusers folders, as the get_model rule saves them."""
    from maskleak.models import save_tiny_model

    root = tmp_path_factory.mktemp("models")
    folders = {}
    for channels in (9, 4):
        folders[channels] = root / f"tiny{channels}"
        save_tiny_model(folders[channels], channels, seed=0)
    return folders
