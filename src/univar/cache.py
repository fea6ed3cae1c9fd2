"""On-disk embedding cache keyed by (encoder id, SHA-1 of the text).

One SQLite file per encoder under ``$UNIVAR_CACHE_DIR`` (default ``$XDG_CACHE_HOME/univar``). SQLite is
used rather than a home-made file format because its transactions make a write all-or-nothing: a run
killed at any moment leaves either the whole batch or none of it, never a half-written vector. A row whose
blob has the wrong size (a damaged file, a bug elsewhere) is treated as a miss and overwritten. A database
that is not a database is moved aside; one that cannot be written (disk full, read-only, locked) is an
``OSError`` naming the file (the command line's ``error:`` line, exit 1) and is never moved aside.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import re
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import numpy as np

log = logging.getLogger("univar")
_CHUNK = 900  # SQLite's default limit on host parameters is 999


def cache_dir() -> Path:
    """``$UNIVAR_CACHE_DIR``, else ``$XDG_CACHE_HOME/univar``, else ``~/.cache/univar``."""
    if os.environ.get("UNIVAR_CACHE_DIR"):
        return Path(os.environ["UNIVAR_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "univar"


def text_key(text: str) -> bytes:
    """The cache key of a text: its SHA-1 (20 bytes), so that rows stay small whatever the text's length."""
    return hashlib.sha1(text.encode("utf-8")).digest()


def _cannot(what: str, path: Path, exc: sqlite3.Error, after: str) -> OSError:
    """An environment problem (disk full, read-only, locked), not bad input: the CLI says it and exits 1."""
    text = str(exc)
    code = errno.ENOSPC if "full" in text else errno.EROFS if "readonly" in text else errno.EIO
    return OSError(code, f"cannot {what} the embedding cache ({text}){after}", str(path))


class EmbeddingCache:
    """Vectors of one encoder; ``get`` returns what is there, ``put`` stores a batch atomically."""

    def __init__(self, encoder_id: str, dim: int, root: Path | None = None):
        self.encoder_id, self.dim = encoder_id, dim
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", encoder_id)[:80]
        digest = hashlib.sha1(encoder_id.encode()).hexdigest()[:10]
        folder = (root or cache_dir()) / "embeddings"
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f"{safe}-{digest}.sqlite"
        self._db = self._open()

    def _open(self, moved_aside: bool = False) -> sqlite3.Connection:
        db = None
        try:
            db = sqlite3.connect(self.path, timeout=60)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("CREATE TABLE IF NOT EXISTS emb (key BLOB PRIMARY KEY, vec BLOB NOT NULL) WITHOUT ROWID")
            db.execute("CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT)")
            db.execute("INSERT OR IGNORE INTO meta VALUES ('encoder_id', ?), ('dim', ?)",
                       (self.encoder_id, str(self.dim)))
            db.commit()
            stored_dim = int(db.execute("SELECT v FROM meta WHERE k='dim'").fetchone()[0])
            if stored_dim != self.dim:
                raise sqlite3.DatabaseError(f"dimension {stored_dim} != {self.dim}")
            return db
        except sqlite3.OperationalError as exc:  # disk full, read-only, locked: the file may well be fine
            if db is not None:
                db.close()
            raise _cannot("open", self.path, exc, "") from None
        except sqlite3.DatabaseError as exc:
            if db is not None:
                db.close()
            if moved_aside:
                raise _cannot("create", self.path, exc, "") from None
            broken = self.path.with_suffix(".corrupt")
            log.warning("embedding cache %s is unreadable (%s); moved aside to %s", self.path, exc, broken.name)
            for suffix in ("", "-wal", "-shm"):
                p = Path(str(self.path) + suffix)
                if p.exists():
                    os.replace(p, Path(str(broken) + suffix))
            return self._open(moved_aside=True)

    def get(self, keys: Sequence[bytes]) -> dict[bytes, np.ndarray]:
        found: dict[bytes, np.ndarray] = {}
        width = self.dim * 4
        bad: list[bytes] = []
        for key, blob in self._select("key, vec", keys):
            if len(blob) != width:
                bad.append(key)
                continue
            vec = np.frombuffer(blob, dtype=np.float32)
            if not np.isfinite(vec).all():
                bad.append(key)
                continue
            found[bytes(key)] = vec
        if bad:
            log.warning("ignored %d damaged cache entr%s in %s; they will be re-embedded",
                        len(bad), "y" if len(bad) == 1 else "ies", self.path.name)
        return found

    def present(self, keys: Sequence[bytes]) -> set[bytes]:
        """Which keys have a row (without reading vectors: cheap on a whole corpus)."""
        return {bytes(k) for (k,) in self._select("key", keys)}

    def _select(self, columns: str, keys: Sequence[bytes]):
        """Rows of the given keys, queried in chunks under SQLite's limit on host parameters."""
        for start in range(0, len(keys), _CHUNK):
            chunk = list(keys[start : start + _CHUNK])
            marks = ",".join("?" * len(chunk))
            yield from self._db.execute(f"SELECT {columns} FROM emb WHERE key IN ({marks})", chunk)

    def put(self, keys: Sequence[bytes], vectors: np.ndarray) -> None:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        try:
            with self._db:  # one transaction: all rows or none
                self._db.executemany(
                    "INSERT OR REPLACE INTO emb VALUES (?, ?)", ((k, v.tobytes()) for k, v in zip(keys, vectors))
                )
        except sqlite3.OperationalError as exc:  # disk full, read-only folder, a lock held too long
            raise _cannot("write", self.path, exc, "; earlier batches are kept") from None

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM emb").fetchone()[0])

    def close(self) -> None:
        self._db.close()
