"""The cached ``embed`` every command goes through: de-duplicated, length-sorted, resumable, streamed.

What a researcher needs on hundreds of thousands of QAs: each distinct text embedded once, an on-disk cache (a
re-run embeds nothing twice, a killed run resumes where it stopped), length-sorted batches, a progress bar, and a
result streamed to memory or to a ``.npy`` file a window at a time.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from univar.cache import EmbeddingCache, text_key
from univar.errors import UnivarError
from univar.progress import at_end, bar

if TYPE_CHECKING:
    from univar.encoders.base import Encoder

log = logging.getLogger("univar")


@dataclass
class EmbedStats:
    texts: int = 0
    unique: int = 0
    cached: int = 0
    embedded: int = 0


WINDOW = 16384  # texts per streaming window of ``embed``

# Texts cut at an input limit: top encoder -> the part that cut them -> [texts cut, texts embedded, limit].
# A joined or univar encoder embeds through its parts, chunk by chunk and for QA and question texts; each of
# those calls used to warn on its own (four lines for one FULCRA evaluation). Now the innermost call counts
# and one line per top encoder is told when the outermost ``embed`` returns, or once per command run.
_TRUNCATED: dict[str, dict[str, list[int]]] = {}
_EMBEDDING = threading.local()  # .stack: the encoders of the embed calls running in this thread, outermost first


def _libc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None where the C library has none (macOS, Windows, musl)."""
    try:
        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError, TypeError):
        return None


_MALLOC_TRIM = _libc_trim()


def release_freed_memory() -> None:
    """Give the heap memory freed since the last call back to the system (glibc's ``malloc_trim``).

    Why: a transformer's batches differ in shape, and glibc keeps what each freed in the holes between live
    blocks, where no later batch of another shape fits; the process grows from batch to batch. MiniLM on 6,144
    bundled QAs, in 512-text chunks each sorted longest first (as :func:`embed` gives them): peak RSS 1,490 MiB
    and rising, 1,248 MiB flat with a trim after each chunk, the vectors identical. On the 50,000-QA univar embed
    (bench/memory.py's data) the heap had grown by 0.5 GB by the end. A trim costs milliseconds a chunk.

    pyarrow's allocator (mimalloc) likewise keeps what reading a table freed: 363 MiB after reading the
    200,000-QA parquet file of bench/memory.py, held through the whole command unless released here.
    """
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)
    arrow = sys.modules.get("pyarrow")  # only where something read a table: importing it costs more than it frees
    release = getattr(arrow.default_memory_pool(), "release_unused", None) if arrow is not None else None
    if release is not None:
        release()


def _tell_truncated() -> None:
    """Log one line per top encoder whose texts some part had to cut, then start counting afresh."""
    for top, parts in _TRUNCATED.items():
        clauses = [f"{over:,} of {seen:,} texts are longer than "
                   + (f"its {limit}-token input" if part == top else f"the {limit}-token input of its {part} part")
                   for part, (over, seen, limit) in parts.items() if over]
        if clauses:
            log.warning("%s: %s and are truncated", top, "; ".join(clauses))
    _TRUNCATED.clear()


def embed(texts: Sequence[str], encoder: Encoder, progress: bool = True, cache: bool = True,
          chunk: int | None = None, stats: EmbedStats | None = None, out: str | Path | np.ndarray | None = None,
          window: int = WINDOW) -> np.ndarray:
    """Embed ``texts`` with ``encoder``, reusing and filling the on-disk cache.

    Unique texts are embedded once, longest first in chunks (padding waste is lowest when neighbours have
    similar lengths), and each chunk is committed to the cache as soon as it is done, so a killed run
    resumes from the last chunk. The corpus is streamed ``window`` texts at a time straight into the
    result, which may be a ``.npy`` path or a preallocated array: memory holds one window of texts and vectors
    besides the result, whatever the corpus size. A path is written through the file window by window and
    returned as a read-only memory map, so the result itself is never in memory (:class:`_NpyWriter`).
    """
    n = len(texts)
    chunk = chunk or encoder.chunk  # by default the encoder's: larger on GPUs, so every device stays busy
    if n and not encoder.fitted:
        encoder.fit(texts)  # before sizing the result: fitting may set the dimension (TF-IDF + SVD)
    result = _result_array(out, n, encoder.dim)
    try:
        _fill(texts, encoder, result, progress, cache, chunk, stats, window)
    finally:
        if isinstance(result, _NpyWriter):
            result.close()
    return result.read() if isinstance(result, _NpyWriter) else result


# Longer than 60 lines on purpose: one streaming loop whose cache handle, window, truncation tally and progress
# bar live together for the whole corpus; in pieces, each would hold half of that state.
def _fill(texts: Sequence[str], encoder: Encoder, result: np.ndarray | _NpyWriter, progress: bool, cache: bool,
          chunk: int, stats: EmbedStats | None, window: int) -> None:
    """:func:`embed`'s streaming loop: each window of ``texts`` from the cache or the encoder into ``result``."""
    n = len(texts)
    if n == 0:
        return
    stack = _EMBEDDING.__dict__.setdefault("stack", [])
    if not stack:  # the outermost call: what reading the data left behind goes before the result grows
        release_freed_memory()
    keys = [text_key(t) for t in texts]  # 20 bytes a text: the one whole-corpus list
    unique = set(keys)
    store = EmbeddingCache(encoder.id, encoder.dim) if cache else None
    stack.append(encoder.name)
    try:
        cached = store.present(list(unique)) if store is not None else set()
        todo = len(unique) - len(cached)
        log.info("%s: %d texts, %d unique, %d from cache, %d to embed", encoder.name, n, len(unique),
                 len(cached), todo)
        memory: dict[bytes, np.ndarray] = {}  # without a cache, what earlier windows embedded
        embedded = 0
        with bar(todo if progress else 0, f"embed {encoder.name}", "texts") as advance:
            for begin in range(0, n, window):
                wkeys = keys[begin : begin + window]
                wtexts = dict(zip(wkeys, texts[begin : begin + window]))
                found = store.get(list(wtexts)) if store is not None else {k: memory[k] for k in wtexts if k in memory}
                missing = sorted((k for k in wtexts if k not in found), key=lambda k: -len(wtexts[k]))
                over = encoder.count_truncated([wtexts[k] for k in missing]) if missing else None
                if over:
                    tally = _TRUNCATED.setdefault(stack[0], {}).setdefault(encoder.name, [0, 0, over[1]])
                    tally[0], tally[1] = tally[0] + over[0], tally[1] + len(missing)
                for start in range(0, len(missing), chunk):
                    batch_keys = missing[start : start + chunk]
                    vectors = encoder.encode_batch([wtexts[k] for k in batch_keys])
                    release_freed_memory()
                    if vectors.shape != (len(batch_keys), encoder.dim):
                        raise UnivarError(f"encoder {encoder.name} returned shape {vectors.shape}")
                    if store is not None:
                        store.put(batch_keys, vectors)
                    else:
                        memory.update(zip(batch_keys, vectors))
                    found.update(zip(batch_keys, vectors))
                    embedded += len(batch_keys)
                    advance(len(batch_keys))
                result[begin : begin + len(wkeys)] = np.stack([found[k] for k in wkeys])
    finally:
        stack.pop()
        if store is not None:
            store.close()
        release_freed_memory()  # the last window's texts, blobs and vectors: 0.26 GB of 200k univar QAs
    if not stack and not at_end(_tell_truncated):  # the outermost call: tell now, unless a command run holds it
        _tell_truncated()
    if stats is not None:
        stats.texts, stats.unique = stats.texts + n, stats.unique + len(unique)
        stats.cached, stats.embedded = stats.cached + len(unique) - embedded, stats.embedded + embedded


def _result_array(out: str | Path | np.ndarray | None, n: int, dim: int) -> np.ndarray | _NpyWriter:
    if out is None:
        return np.empty((n, dim), dtype=np.float32)
    if isinstance(out, np.ndarray):
        if out.shape != (n, dim):
            raise ValueError(f"out has shape {out.shape}, expected {(n, dim)}")
        return out
    return _NpyWriter(Path(out), n, dim)


class _NpyWriter:
    """A float32 ``.npy`` file filled window by window with ordinary writes, for :func:`embed`'s ``out`` path.

    It was a memory map: every page stored into stays resident, and a mapped file's pages count in the
    process's RSS, so ``univar embed --out e.npy`` on 200,000 QAs x 1,792 dimensions held the whole 1.43 GB
    result (bench/memory.py: 1.17 of the 3 GB budget). Pages written with ``write`` are the kernel's page cache,
    not the process's memory. The disk blocks are still claimed first (:func:`_reserve`), so a full disk fails
    with ENOSPC before any work is done; the finished file is read back as a read-only memory map, which costs
    memory only where it is read.
    """

    def __init__(self, path: Path, n: int, dim: int) -> None:
        self.path, self.shape = path, (n, dim)
        self._file = path.open("wb")
        try:  # the header np.lib.format.open_memmap writes: the file is byte for byte what it wrote
            np.lib.format.write_array_header_1_0(self._file, {"descr": "<f4", "fortran_order": False,
                                                              "shape": self.shape})
            self._offset = self._file.tell()
            self._file.truncate(self._offset + n * dim * 4)
            self._file.flush()
            _reserve(path)
        except BaseException:
            self._file.close()
            raise

    def __setitem__(self, rows: slice, block: np.ndarray) -> None:
        start, stop, _ = rows.indices(self.shape[0])
        block = np.ascontiguousarray(block, dtype="<f4")
        if block.shape != (stop - start, self.shape[1]):
            raise ValueError(f"block has shape {block.shape}, expected {(stop - start, self.shape[1])}")
        self._file.seek(self._offset + start * self.shape[1] * 4)
        self._file.write(memoryview(block).cast("B"))

    def close(self) -> None:
        self._file.close()

    def read(self) -> np.ndarray:
        """The written result, memory-mapped read-only (an empty one cannot be mapped: it is read)."""
        return np.load(self.path, mmap_mode="r" if self.shape[0] else None)


def _reserve(path: Path) -> None:
    """Claim the disk blocks of a memory-mapped result at once.

    The map starts as a sparse file; on a full disk the first store into a page with no block behind it
    kills the process with SIGBUS (no message, nothing cleaned up). ``posix_fallocate`` fails with
    ENOSPC instead, before any work is done.
    """
    if not hasattr(os, "posix_fallocate"):
        return
    fd = os.open(path, os.O_RDWR)
    try:
        os.posix_fallocate(fd, 0, os.fstat(fd).st_size)
    except OSError as exc:
        if exc.errno in (errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):  # this filesystem cannot: carry on
            return
        raise OSError(exc.errno, f"cannot reserve {os.fstat(fd).st_size} bytes for the result ({exc.strerror})",
                      str(path)) from None
    finally:
        os.close(fd)
