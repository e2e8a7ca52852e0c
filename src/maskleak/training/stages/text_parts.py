"""The ``training_text_parts`` rule: the text encoder and tokenizer the trained UNets are
conditioned with."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from maskleak.training.stages.common import atomic_dir


def text_parts_stage(training: Mapping[str, Any], outputs: Mapping[str, str]) -> None:
    """Write the tiny pipeline's text encoder and tokenizer, seeded with
    ``training.seed``, to ``outputs['text_encoder']`` and ``['tokenizer']``."""
    from maskleak.trained_models import write_shared_text_parts

    scratch = Path(outputs["text_encoder"]).parent
    scratch.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=scratch, prefix=".text_parts.") as tmp:
        write_shared_text_parts(tmp, int(training["seed"]))
        for part in ("text_encoder", "tokenizer"):
            # atomic_dir hands over an empty folder; the part takes its place.
            with atomic_dir(outputs[part]) as target:
                os.rmdir(target)
                os.replace(Path(tmp) / part, target)
