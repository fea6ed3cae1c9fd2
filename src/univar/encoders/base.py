"""The one interface every encoder shares: texts in, one float32 row per text out."""

from __future__ import annotations

import hashlib
import os
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from univar.encoders.embed import embed
from univar.qa import as_texts

if TYPE_CHECKING:
    import pandas as pd

MAX_SEQ_LENGTH = 256  # word pieces; all-MiniLM-L6-v2's own limit


class Encoder(ABC):
    """Texts in, one float32 row per text out: the one interface every baseline and UniVaR model shares.

    Value identification, maps and training take any encoder, so a new one needs only ``encode_batch``
    (and ``name``, ``id``, ``dim``); caching, de-duplication and progress come from :func:`embed`.
    Get one with :func:`univar.get_encoder`.

    Attributes
    ----------
    name : str
        What results and tables call the encoder (``"minilm"``, ``"univar"``, a folder).
    id : str
        Names the weights and settings exactly; the embedding cache is keyed by it, so two encoders with
        the same ``id`` must give the same vectors.
    dim : int
        Width of each vector.
    batch_size : int
        Texts per forward pass.
    chunk : int
        Texts per ``encode_batch`` call of :func:`embed`; each chunk is one cache commit.
    fitted : bool
        False for an encoder that must first see the corpus (TF-IDF); :func:`embed` then calls ``fit``.
    """

    name: str
    id: str
    dim: int
    batch_size: int = 64
    chunk: int = 512  # texts per encode_batch call of ``embed``: each chunk is one cache commit
    fitted: bool = True  # False for encoders that must first see the corpus (TF-IDF)

    def fit(self, texts: Sequence[str]) -> "Encoder":
        """Fit the encoder to the corpus without labels, for encoders whose vectors depend on it (TF-IDF only).

        Parameters
        ----------
        texts : Sequence[str]
            The whole corpus about to be embedded. Ignored by pretrained encoders.

        Returns
        -------
        Encoder
            ``self``, fitted.
        """
        return self

    @abstractmethod
    def encode_batch(self, texts: list[str]) -> np.ndarray:
        """Embed one batch as is, without cache or progress: what each encoder implements, :func:`embed` calls.

        Parameters
        ----------
        texts : list[str]
            The texts to embed (QA texts, ``Q: {question} A: {answer}``, for value identification).

        Returns
        -------
        numpy.ndarray
            float32, shape ``[len(texts), dim]``, one row per text in order.
        """

    def encode(self, qas: pd.DataFrame | Sequence[str] | Sequence[tuple[str, str]], progress: bool = True,
               cache: bool = True) -> np.ndarray:
        """One vector per QA, through the on-disk embedding cache, so a re-run or a killed run embeds nothing twice.

        Parameters
        ----------
        qas : pandas.DataFrame, Sequence[str] or Sequence[tuple[str, str]]
            A QA table (:func:`univar.read_qa`; its ``question_en``/``answer_en`` columns are used where
            present), ``(question, answer)`` pairs, or ready ``"Q: {question} A: {answer}"`` texts.
        progress : bool
            Show a progress bar while embedding.
        cache : bool
            Read and write the embedding cache (off: every text is embedded anew, nothing is stored).

        Returns
        -------
        numpy.ndarray
            float32, shape ``[len(qas), dim]``, one row per QA in order.

        Raises
        ------
        UnivarError
            When ``qas`` is a single string, or holds something that is neither a text nor a pair.
        """
        return embed(as_texts(qas), self, progress=progress, cache=cache)

    def count_truncated(self, texts: Sequence[str]) -> tuple[int, int] | None:
        """How many texts the encoder will cut short, so that :func:`embed` can warn that their ends are unread.

        Parameters
        ----------
        texts : Sequence[str]
            The texts about to be embedded.

        Returns
        -------
        tuple[int, int] or None
            ``(texts over the input limit, the limit in tokens)``, or None where the encoder cannot tell.
        """
        return None


def files_digest(folder: Path, names: Sequence[str] | None = None) -> str:
    """A cheap fingerprint of model files (size + first and last MiB), so a changed model is a new cache."""
    digest = hashlib.sha1()
    files = [folder / n for n in names] if names else sorted(p for p in folder.rglob("*") if p.is_file())
    for path in files:
        if not path.is_file():
            continue
        size = path.stat().st_size
        digest.update(f"{path.relative_to(folder)}:{size}".encode())
        with path.open("rb") as fh:
            digest.update(fh.read(1 << 20))
            if size > 2 << 20:
                fh.seek(-(1 << 20), 2)
                digest.update(fh.read())
    return digest.hexdigest()[:12]


def count_over(tokenizer, texts: Sequence[str], limit: int) -> int:
    """Texts longer than ``limit`` tokens (special tokens included), with a fast tokenizer."""
    if tokenizer is None:
        return 0
    tokenizer = tokenizer.__class__.from_str(tokenizer.to_str())  # a copy, so no truncation setting applies
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return sum(len(e.ids) > limit for e in tokenizer.encode_batch(list(texts)))


def quiet_transformers() -> None:
    """transformers draws its own bars while loading weights; univar shows one bar per stage.

    It also keeps transformers (5.x) from swapping layers for kernels fetched from the Hugging Face Hub when a model
    loads or changes mode: that is code downloaded at run time, which univar never runs (no remote code anywhere),
    and it would make the numbers depend on what the Hub served. ``USE_HUB_KERNELS=1`` set by the user wins.
    """
    os.environ.setdefault("USE_HUB_KERNELS", "0")
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
    except ImportError:
        pass


def threads() -> int:
    """The CPU threads torch would use here: the engines of USE and E5 run with as many."""
    import torch

    return max(1, torch.get_num_threads())
