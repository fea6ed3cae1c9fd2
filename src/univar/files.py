"""Writing files so that a kill, a full disk or a crash never leaves half a file where a whole one was.

Everything univar writes that a person or a later run reads (reports, maps, JSON results, model configs) goes
through a temporary file beside the target, renamed over it only once complete: the rename is atomic on
POSIX and Windows, so readers see the old file or the new one, never a torn one.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import numpy as np


def _remove(path: Path) -> None:
    """Delete a file or a folder tree, if there is one."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with suppress(FileNotFoundError):
            path.unlink()


def temporary_of(path: Path, tmp_name: str | None = None) -> Path:
    """Where :func:`atomic_path` writes before the rename: ``<path>.tmp`` beside ``path``, or ``tmp_name``."""
    return path.with_name(tmp_name or path.name + ".tmp")


@contextmanager
def atomic_path(path: str | Path, tmp_name: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` to write to; it is renamed over ``path`` when the block succeeds.

    The temporary is ``<path>.tmp`` unless ``tmp_name`` names it (e.g. to keep a suffix a writer dispatches
    on); one left over by a killed run is removed first. If the block raises, the temporary is removed and
    ``path`` is left as it was. The block may create a file or a folder there. A folder replacing a folder
    is not one atomic step (``os.replace`` cannot replace a non-empty folder): the old one is renamed aside
    to ``<path>.old.tmp``, the new one into place, then the old one deleted, so ``path`` is missing only
    between two renames, and is never a mixture of the two.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_of(path, tmp_name)
    _remove(tmp)
    try:
        yield tmp
        if tmp.is_dir() and not tmp.is_symlink() and path.is_dir() and not path.is_symlink():
            _replace_by_two_renames(tmp, path)
        else:
            os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise


_AT_FDCWD, _RENAME_EXCHANGE = -100, 2


def _exchange(a: Path, b: Path) -> bool:
    """Swap what two paths name in one atomic step (Linux ``renameat2(RENAME_EXCHANGE)``); False where the
    OS, its C library or the filesystem has no such call, so the caller falls back to two renames."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), str(b))


def replace_dir(new: str | Path, path: str | Path) -> Path:
    """Put the complete folder ``new`` at ``path`` and delete what ``path`` held; returns ``path``.

    Why not :func:`atomic_path`'s two renames: between them ``path`` is missing, and a kill there leaves a
    trained model only under a temporary name. Where the OS can exchange two paths atomically (Linux), one
    call swaps them, so ``path`` names the old folder or the new one at every instant; the old one is then
    deleted from ``new``'s name. Elsewhere it falls back to the two renames.
    """
    new, path = Path(new), Path(path)
    if not path.exists() and not path.is_symlink():
        os.replace(new, path)
    elif _exchange(new, path):
        _remove(new)  # now the old folder
    else:
        _replace_by_two_renames(new, path)
    return path


def _replace_by_two_renames(new: Path, path: Path) -> None:
    """The old folder aside to ``<path>.old.tmp``, ``new`` into place (the old one back if that fails), the old
    one deleted: ``path`` is missing only between the two renames and is never a mixture of the two."""
    old = path.with_name(path.name + ".old.tmp")
    _remove(old)
    os.replace(path, old)
    try:
        os.replace(new, path)
    except BaseException:
        os.replace(old, path)
        raise
    _remove(old)


@contextmanager
def atomic_folder(path: str | Path, tmp_name: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` to build a folder at; it replaces ``path`` by :func:`replace_dir`
    when the block succeeds (``path`` as it was if the block raises, the temporary removed either way)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_of(path, tmp_name)
    _remove(tmp)
    try:
        yield tmp
        replace_dir(tmp, path)
    except BaseException:
        _remove(tmp)
        raise


def atomic_write(path: str | Path, data: str | bytes, encoding: str = "utf-8") -> Path:
    """Write ``data`` (text or bytes) to ``path`` through ``<path>.tmp``; returns the path."""
    path = Path(path)
    with atomic_path(path) as tmp:
        if isinstance(data, bytes):
            tmp.write_bytes(data)
        else:
            tmp.write_text(data, encoding=encoding)
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
