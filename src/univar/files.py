"""Writing files so that a kill, a full disk or a crash never leaves half a file where a whole one was.

Everything univar writes that a person or a later run reads (reports, maps, JSON results, model configs) goes
through a temporary file beside the target, renamed over it only once complete: the rename is atomic on
POSIX and Windows, so readers see the old file or the new one, never a torn one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np


def atomic_write(path: str | Path, data: str | bytes, encoding: str = "utf-8") -> Path:
    """Write ``data`` (text or bytes) to ``path`` through ``<path>.tmp``; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    if isinstance(data, bytes):
        tmp.write_bytes(data)
    else:
        tmp.write_text(data, encoding=encoding)
    os.replace(tmp, path)
    return path


def _plain(obj):
    """numpy scalars and arrays as JSON numbers and lists."""
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def write_json(path: str | Path, obj, sort_keys: bool = False) -> Path:
    """``obj`` as indented JSON (numpy values as plain numbers), written atomically; returns the path."""
    return atomic_write(path, json.dumps(obj, indent=2, sort_keys=sort_keys, default=_plain) + "\n")
