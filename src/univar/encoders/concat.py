"""Several encoders side by side, each part's vectors through its own cache."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from univar.encoders.base import Encoder
from univar.encoders.embed import embed
from univar.errors import UnivarError
from univar.vectors import unit_rows


class ConcatEncoder(Encoder):
    """Several encoders side by side (``minilm+use-multilingual``): each part's L2-normalised vector, joined.

    Why: two encoders trained on different data see different cues of how an LLM writes; joined under topic
    removal they identify unseen LLMs better than either (bench/results/transfer.json), and a multilingual
    part reads answers an English one cannot. Each part embeds through its own cache, so a part's vectors
    are shared with every other use of that encoder.

    Parameters
    ----------
    parts : Sequence[Encoder]
        The encoders to join, in order; ``dim`` is the sum of theirs.

    Raises
    ------
    UnivarError
        When a part must be fitted on the corpus (TF-IDF).
    """

    def __init__(self, parts: Sequence[Encoder]) -> None:
        if any(not p.fitted for p in parts):  # a corpus-fitted part (TF-IDF) would be refitted per batch
            raise UnivarError("an encoder fitted on the corpus (tfidf) cannot be part of a joined encoder")
        self.parts = list(parts)
        self.name = "+".join(p.name for p in self.parts)
        self.id = "concat(" + ",".join(p.id for p in self.parts) + ")"
        self.dim = sum(p.dim for p in self.parts)
        self.batch_size = min(p.batch_size for p in self.parts)

    def encode_batch(self, texts: list[str]) -> np.ndarray:
        out = []
        for part in self.parts:
            x = embed(texts, part, progress=False)
            out.append(unit_rows(x))
        return np.concatenate(out, axis=1).astype(np.float32)
