"""Logging for workflow scripts: everything goes to the rule's log file, and bad input is
also reported in one readable line on the console, where the user is looking."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import traceback
from collections.abc import Iterator

from maskleak.errors import InputError


@contextlib.contextmanager
def log_to(path: str | os.PathLike[str]) -> Iterator[logging.Logger]:
    console = sys.stderr
    os.makedirs(os.path.dirname(os.fspath(path)) or ".", exist_ok=True)
    with open(path, "w", buffering=1) as stream:
        handler = logging.StreamHandler(stream)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root = logging.getLogger()
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        logging.captureWarnings(True)
        try:
            with contextlib.redirect_stderr(stream), contextlib.redirect_stdout(stream):
                yield logging.getLogger("maskleak")
        except InputError as err:
            stream.write(traceback.format_exc())
            print(f"maskleak: error: {err}", file=console)
            raise SystemExit(1) from err
        except BaseException:
            stream.write(traceback.format_exc())
            raise
        finally:
            root.removeHandler(handler)
