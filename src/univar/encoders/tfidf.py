"""The bag-of-words baseline: TF-IDF over word 1-2 grams, reduced by truncated SVD (LSA)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from univar.encoders.base import Encoder
from univar.errors import UnivarError
from univar.vectors import unit_rows


class TfidfEncoder(Encoder):
    """TF-IDF over word 1-2 grams, reduced by truncated SVD (LSA): the bag-of-words baseline.

    Fitted without labels on the corpus being embedded, so its ``id`` carries a hash of that corpus.

    Parameters
    ----------
    dim : int
        Most SVD components; fewer when the corpus or its vocabulary is smaller.
    random_state : int
        Seed of the SVD.
    """

    name = "tfidf"
    batch_size = 4096

    def __init__(self, dim: int = 256, random_state: int = 0) -> None:
        self.dim, self.random_state = dim, random_state
        self.pipeline = None
        self.fitted = False
        self.id = "tfidf:unfitted"

    def fit(self, texts: Sequence[str]) -> "TfidfEncoder":
        from sklearn.decomposition import TruncatedSVD
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.pipeline import make_pipeline

        corpus = sorted(set(texts))
        digest = hashlib.sha1("\n".join(corpus).encode("utf-8")).hexdigest()[:12]
        min_df = 2 if len(corpus) >= 100 else 1  # drop one-off terms, unless the corpus is tiny
        vectorizer = TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), min_df=min_df, max_features=100_000)
        vocab = vectorizer.fit(corpus).vocabulary_
        dim = max(1, min(self.dim, len(vocab) - 1, len(corpus) - 1))
        self.pipeline = make_pipeline(vectorizer, TruncatedSVD(dim, random_state=self.random_state))
        self.pipeline.fit(corpus)
        self.dim = dim
        self.id = f"tfidf:{digest}:svd{dim}:seed{self.random_state}"
        self.fitted = True
        return self

    def encode_batch(self, texts: list[str]) -> np.ndarray:
        """Project texts on the fitted LSA space, rows L2-normalised.

        Parameters
        ----------
        texts : list[str]
            The texts to embed.

        Returns
        -------
        numpy.ndarray
            float32, shape ``[len(texts), dim]``.

        Raises
        ------
        UnivarError
            When :meth:`fit` has not run yet.
        """
        if self.pipeline is None:
            raise UnivarError("tfidf must be fitted on a corpus before it embeds")
        return unit_rows(self.pipeline.transform(list(texts)).astype(np.float32))
