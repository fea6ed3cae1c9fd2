"""Whether one encoder beats another on the same test QAs: a paired difference with a question bootstrap."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from univar.errors import UnivarError


def paired_difference(correct_a: np.ndarray, correct_b: np.ndarray, groups: Sequence, n_resamples: int = 2000,
                      level: float = 0.95, seed: int = 0) -> dict:
    """Accuracy of A minus accuracy of B on the same test QAs, with a cluster-bootstrap confidence interval.

    Whether one encoder beats another on a few hundred test questions is often within noise, and the QAs of
    one question (several LLMs' answers) are not independent draws; so whole ``groups`` (questions) are
    resampled with replacement, the test rows of both encoders together (a paired test).
    """
    a, b = np.asarray(correct_a, dtype=np.float64), np.asarray(correct_b, dtype=np.float64)
    if a.shape != b.shape or len(a) != len(groups) or len(a) == 0:
        raise UnivarError(f"paired_difference needs equal, non-empty lengths; got {len(a)}, {len(b)}, {len(groups)}")
    _, group = np.unique(np.asarray(groups, dtype=object).astype(str), return_inverse=True)
    diff, count = np.bincount(group, a - b), np.bincount(group)
    pick = np.random.default_rng(seed).integers(0, len(count), size=(n_resamples, len(count)))
    boot = diff[pick].sum(axis=1) / count[pick].sum(axis=1)
    tail = (1 - level) / 2
    return {"diff": float((a - b).mean()), "ci_low": float(np.quantile(boot, tail)),
            "ci_high": float(np.quantile(boot, 1 - tail)), "level": level, "n_groups": int(len(count))}
