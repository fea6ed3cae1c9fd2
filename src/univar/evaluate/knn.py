"""k-NN over cosine similarity: the non-parametric half of value identification, exact at any size.

scikit-learn's brute force below ``FAISS_FROM_PAIRS`` train x test pairs, FAISS's exact inner-product search
above it (when installed), searched one slice of training rows at a time so that memory stays bounded.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from univar.evaluate.splits import Rows
from univar.vectors import unit_rows

log = logging.getLogger("univar")


# Above this many train x test pairs FAISS's exact inner-product search beats scikit-learn's brute force
# (bench/knn_scaling.py: 3.3x at 10k vectors, 1.1x at 100k and 1M); below it scikit-learn needs no index.
FAISS_FROM_PAIRS = 1_000_000


def knn_backend(n_train: int, n_test: int, backend: str = "auto") -> str:
    """Which exact k-NN implementation to use: ``sklearn`` or ``faiss`` (when installed and worth it)."""
    if backend != "auto":
        return backend
    try:
        import faiss  # noqa: F401
    except ImportError:
        return "sklearn"
    return "faiss" if n_train * n_test >= FAISS_FROM_PAIRS else "sklearn"



def knn_predict(train: np.ndarray | Rows, y_train: np.ndarray, test: np.ndarray | Rows, k: int,
                backend: str = "auto") -> np.ndarray:
    """Majority vote of the ``k`` nearest training rows by cosine similarity; ties go to the lower label.

    Both backends are exact searches and vote the same way (scikit-learn's rule), so they agree except
    where two neighbours sit at exactly the same distance at the k-th place.
    """
    k = max(1, min(k, len(train)))
    chosen = knn_backend(len(train), len(test), backend)
    log.info("k-NN: %s (%d train x %d test, k=%d)", chosen, len(train), len(test), k)
    if chosen == "sklearn":
        from sklearn.neighbors import KNeighborsClassifier

        model = KNeighborsClassifier(n_neighbors=k, metric="cosine", algorithm="brute")
        return model.fit(np.asarray(train), y_train).predict(np.asarray(test))
    classes, codes = np.unique(y_train, return_inverse=True)
    neighbours = _faiss_neighbours(train, test, k)
    votes = np.zeros((len(test), len(classes)), dtype=np.int32)
    np.add.at(votes, (np.arange(len(test))[:, None], codes[neighbours]), 1)
    return classes[votes.argmax(axis=1)]



# Training rows per FAISS index. One index over the whole training side grows a std::vector by doubling, so adding
# 160k x 1,792 vectors briefly held the old and the new buffer: +1.7 GB over the embeddings in the 200k-QA evaluation
# (bench/memory.py). Searching one slice at a time and merging the k best holds a single slice (235 MB here).
FAISS_SLICE = 32_768
FAISS_QUERIES = 8192  # rows normalised at a time: test rows searched, training rows added


def _faiss_neighbours(train: np.ndarray | Rows, test: np.ndarray | Rows, k: int) -> np.ndarray:
    """Indices of the ``k`` training rows of highest cosine similarity to each test row, best first (exact)."""
    import faiss

    def unit(x: np.ndarray) -> np.ndarray:
        return unit_rows(np.ascontiguousarray(x, dtype=np.float32))

    best_sim = np.full((len(test), k), -np.inf, dtype=np.float32)
    best = np.zeros((len(test), k), dtype=np.int64)
    for first in range(0, len(train), FAISS_SLICE):
        index = faiss.IndexFlatIP(train.shape[1])
        for start in range(first, min(first + FAISS_SLICE, len(train)), FAISS_QUERIES):  # small numpy copies
            index.add(unit(train[start : min(start + FAISS_QUERIES, first + FAISS_SLICE)]))
        for start in range(0, len(test), FAISS_QUERIES):
            rows = slice(start, start + FAISS_QUERIES)
            sim, found = index.search(unit(test[rows]), min(k, index.ntotal))
            # the earlier slices' k best, then this slice's: a stable sort keeps the lower row first on a tie,
            # as one index over every row would
            sim, found = np.hstack([best_sim[rows], sim]), np.hstack([best[rows], found + first])
            order = np.argsort(-sim, axis=1, kind="stable")[:, :k]
            best_sim[rows], best[rows] = np.take_along_axis(sim, order, 1), np.take_along_axis(found, order, 1)
        del index
    return best


def knn_k(k: int, y_train: np.ndarray, y_test: np.ndarray) -> tuple[int, list[str]]:
    """The k that k-NN can use on this training side, and warnings about what the data lets it do.

    With k at or above the training QAs every test QA gets the same neighbours (all of them), so k-NN only
    predicts the largest class: an 8-QA file scored with k=50 said nothing and looked like a result. k then
    falls to the fewest training QAs of a class (at least 1), so a test QA surrounded by its own class can win.
    """
    counts = pd.Series(y_train).value_counts()
    notes = []
    if k >= len(y_train) and k > 1:
        used = max(1, min(int(counts.min()), len(y_train) - 1))
        reach = "more than" if k > len(y_train) else "all"
        notes.append(f"k={k} is {reach} the {len(y_train)} training QAs; using k={used} (the fewest training QAs of "
                     f"a class), as every test QA would otherwise have the same neighbours")
        k = used
    else:
        small = counts[counts * 2 < k]
        if len(small):
            notes.append(f"k={k}: {len(small)} of {len(counts)} classes {'has' if len(small) == 1 else 'have'} fewer "
                         f"than k/2 training QAs (fewest: {small.index[-1]}, {int(small.iloc[-1])}), so other classes "
                         f"outvote them; a smaller --k suits this data")
    unseen = sorted(set(y_test) - set(counts.index))
    if unseen:
        shown = ", ".join(map(str, unseen[:3])) + (f" and {len(unseen) - 3} more" if len(unseen) > 3 else "")
        notes.append(f"{len(unseen)} of the test classes {'has' if len(unseen) == 1 else 'have'} no training QAs "
                     f"({shown}); neither k-NN nor the probe can name them, so their test QAs always count as wrong")
    return k, notes
