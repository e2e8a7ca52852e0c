"""Shared fixtures: the real tiny models, built once per test session, and a small scene."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from maskleak.masks import circle_mask

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


@pytest.fixture()
def scene(tmp_path: Path) -> dict[str, str]:
    """A 96x64 noise image and its r = 40 % and 80 % disc masks, as files."""
    rng = np.random.default_rng(7)
    image = tmp_path / "image.png"
    Image.fromarray(rng.integers(0, 256, (64, 96, 3), dtype=np.uint8)).save(image)
    paths = {"image": str(image)}
    for pct in (40, 80):
        paths[f"mask{pct}"] = str(tmp_path / f"mask{pct}.png")
        circle_mask(96, 64, pct).save(paths[f"mask{pct}"])
    return paths
