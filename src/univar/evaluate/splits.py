"""Which QAs train and which test: the random and question splits, and rows of a matrix taken without a copy.

- ``random``: per-class random split of QAs, the paper's protocol. The same question, answered by
  several LLMs, lands on both sides, so an encoder can score by matching topics.
- ``question``: question-disjoint. A question is in the test fold when
  ``int(sha1(question.strip().lower()).hexdigest(), 16) % 5 == 0``; no test question was seen in
  training, so only how an LLM answers (its values, and its style) can identify it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from univar.errors import SettingError, UnivarError
from univar.qa import TEST_FOLD, question_folds

SPLITS = ("random", "question")


def split_indices(labels: Sequence[str], questions: Sequence[str], split: str = "random",
                  test_fraction: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Train and test row indices. ``test_fraction`` applies to the random split only."""
    labels = np.asarray(labels, dtype=object)
    if split == "question":
        in_test = question_folds(questions) == TEST_FOLD
        return np.flatnonzero(~in_test), np.flatnonzero(in_test)
    if split != "random":
        raise UnivarError(f"unknown split {split!r} (expected random or question)")
    if not 0.0 < test_fraction < 1.0:
        raise SettingError("test_fraction", f"must be between 0 and 1, got {test_fraction}")
    rng = np.random.default_rng(seed)
    test: list[np.ndarray] = []
    for label in sorted(set(labels)):
        rows = np.flatnonzero(labels == label)
        rows = rows[rng.permutation(len(rows))]
        n_test = int(round(test_fraction * len(rows))) if len(rows) > 1 else 0
        test.append(rows[: max(n_test, 1 if len(rows) > 1 else 0)])
    in_test = np.zeros(len(labels), dtype=bool)
    in_test[np.concatenate(test)] = True
    return np.flatnonzero(~in_test), np.flatnonzero(in_test)



class Rows:
    """Some rows of a matrix, copied out a slice at a time.

    ``x[rows]`` copies every selected row at once: 160k x 768 float32 is 491 MB, and the k-NN index holds
    another copy. FAISS takes its input in slices, so the 200k-QA evaluation never holds that first copy
    (bench/memory.py). scikit-learn gets the whole copy through ``np.asarray``.
    """

    def __init__(self, x: np.ndarray, rows: np.ndarray):
        self.x, self.rows = x, np.asarray(rows)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def shape(self) -> tuple[int, int]:
        return (len(self.rows), self.x.shape[1])

    def __getitem__(self, part: slice) -> np.ndarray:
        return self.x[self.rows[part]]

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        return np.asarray(self.x[self.rows], dtype=dtype)
