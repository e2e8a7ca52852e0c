import os

import numpy as np
import pandas as pd

from maskleak.provenance import (
    read_parquet_record,
    read_png_record,
    save_png,
    write_parquet,
)


def test_outputs_get_normal_file_permissions(tmp_path):
    """Atomic writes go through a private temporary file; the result must still be
    readable like any normally created file (shared cluster filesystems)."""
    umask = os.umask(0o022)
    os.umask(umask)
    save_png(np.zeros((2, 2, 3), np.uint8), tmp_path / "a.png", {})
    write_parquet(pd.DataFrame({"x": [1]}), tmp_path / "a.parquet", {})
    for name in ("a.png", "a.parquet"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o666 & ~umask


def test_records_round_trip_without_timestamps(tmp_path):
    """Records carry parameters and versions, and identical inputs give identical bytes."""
    for name in ("a.png", "b.png"):
        save_png(np.full((3, 4, 3), 7, np.uint8), tmp_path / name, {"stage": "t", "p": 1.5})
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    record = read_png_record(tmp_path / "a.png")
    assert record["p"] == 1.5 and "numpy" in record["versions"]
    write_parquet(pd.DataFrame({"x": [1, 2]}), tmp_path / "t.parquet", {"stage": "t"})
    assert read_parquet_record(tmp_path / "t.parquet")["stage"] == "t"
