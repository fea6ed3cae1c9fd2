"""Multi-view sampling: a view is a random set of 1..lambda QAs of one (LLM, language) class.

Two views of the same class form a positive pair (the paper's "multi-view" objective: two samples of
what one LLM says in one language should map to the same value vector). View sizes are drawn uniformly
from 1..lambda, as in the paper, so that a single QA (size 1, what is embedded at inference) is always
among the training inputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

BATCHINGS = ("mask", "class", "none")


@dataclass
class ViewBatch:
    """Row indices of two views per pair, padded with -1; ``classes`` is the class id of each pair."""

    a: np.ndarray  # [B, L] int64, -1 = padding
    b: np.ndarray
    classes: np.ndarray  # [B] int64


class ViewSampler:
    """Draws batches of view pairs from labelled rows.

    ``batching`` says how same-class pairs are kept from being negatives of each other:
    ``class`` draws distinct classes per batch (class-aware batches: at most one pair per class),
    ``mask`` draws classes freely and the loss masks same-class logits, ``none`` draws freely and masks
    nothing (the paper's behaviour, kept for comparison).
    """

    def __init__(self, labels: Sequence[str], lam: int, batch_size: int, batching: str = "mask", seed: int = 0):
        if lam < 1:
            raise ValueError("lambda must be at least 1")
        if batching not in BATCHINGS:
            raise ValueError(f"batching must be one of {BATCHINGS}")
        labels = np.asarray(labels, dtype=object)
        self.class_names = sorted(set(labels.tolist()))
        index = {c: i for i, c in enumerate(self.class_names)}
        self.class_ids = np.array([index[c] for c in labels], dtype=np.int64)
        self.rows = [np.flatnonzero(self.class_ids == i) for i in range(len(self.class_names))]
        self.lam, self.batching = lam, batching
        self.batch_size = min(batch_size, len(self.class_names)) if batching == "class" else batch_size
        self.rng = np.random.default_rng(seed)

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    def _pair(self, cls: int) -> tuple[np.ndarray, np.ndarray]:
        rows = self.rows[cls]
        size_a, size_b = self.rng.integers(1, self.lam + 1, size=2)
        if len(rows) >= size_a + size_b:  # disjoint views when the class is large enough
            pick = self.rng.choice(rows, size_a + size_b, replace=False)
            return pick[:size_a], pick[size_a:]
        return self.rng.choice(rows, size_a, replace=True), self.rng.choice(rows, size_b, replace=True)

    def sample(self) -> ViewBatch:
        if self.batching == "class":
            classes = self.rng.choice(self.n_classes, self.batch_size, replace=False)
        else:
            classes = self.rng.integers(0, self.n_classes, self.batch_size)
        pairs = [self._pair(int(c)) for c in classes]
        width = max(max(len(a), len(b)) for a, b in pairs)
        a = np.full((len(pairs), width), -1, dtype=np.int64)
        b = np.full((len(pairs), width), -1, dtype=np.int64)
        for i, (va, vb) in enumerate(pairs):
            a[i, : len(va)], b[i, : len(vb)] = va, vb
        return ViewBatch(a, b, classes.astype(np.int64))

    def state(self) -> dict:
        return self.rng.bit_generator.state

    def restore(self, state: dict) -> None:
        self.rng.bit_generator.state = state
