"""Small operations on embedding matrices that several modules need, written once."""

from __future__ import annotations

import numpy as np


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Each row (along the last axis) scaled to length 1; all-zero rows stay zero instead of becoming NaN."""
    x = np.asarray(x)
    return x / np.clip(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12, None)
