"""Validity against questionnaire scores: do classes close in value space also score alike on the questionnaires?

The Mantel test asks whether two distance matrices over the same classes agree (here: univar distances
versus distances between questionnaire score profiles); its p-value comes from permuting the class order of
one matrix, exhaustively when there are at most 8 classes (8! = 40,320 orders).

The questionnaire side is each class's profile of mean keyed ratings per value (reverse-keyed items
flipped, see :func:`keyed_ratings`); two classes' questionnaire distance is the root-mean-square difference
of their profiles.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from univar.errors import UnivarError


@dataclass
class MantelResult:
    r: float  # Pearson correlation between the upper triangles
    p: float  # one-sided: share of class orders whose correlation is at least r
    n: int  # classes
    permutations: int
    exact: bool
    method: str = "pearson"

    def to_dict(self) -> dict:
        return {"r": self.r, "p": self.p, "n_classes": self.n, "permutations": self.permutations,
                "exact": self.exact, "method": self.method}


def _upper(m: np.ndarray) -> np.ndarray:
    return m[np.triu_indices(len(m), 1)]


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    denom = math.sqrt(float((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / denom) if denom > 0 else float("nan")


def mantel(x: np.ndarray, y: np.ndarray, permutations: int = 9999, seed: int = 0,
           method: str = "pearson") -> MantelResult:
    """Mantel test: correlation of two symmetric distance matrices, p-value by permuting ``y``'s classes.

    One-sided (large distances in ``x`` go with large distances in ``y``). With at most 8 classes every
    order is tried and the p-value is exact; otherwise ``permutations`` random orders are drawn and
    p = (hits + 1) / (permutations + 1), the identity counted as one of them.
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    n = len(x)
    if x.shape != (n, n) or y.shape != (n, n):
        raise UnivarError(f"the Mantel test needs two square matrices of one size, got {x.shape} and {y.shape}")
    if n < 3:
        raise UnivarError(f"the Mantel test needs at least 3 classes, got {n}")
    if method == "spearman":
        from scipy.stats import rankdata

        def transform(m: np.ndarray) -> np.ndarray:
            out = np.zeros_like(m)
            out[np.triu_indices(n, 1)] = rankdata(_upper(m))
            return out + out.T
        x, y = transform(x), transform(y)
    elif method != "pearson":
        raise UnivarError(f"unknown Mantel method {method!r} (pearson or spearman)")
    xu = _upper(x)
    r = _corr(xu, _upper(y))
    if not np.isfinite(r):
        raise UnivarError("a distance matrix is constant; the Mantel correlation is undefined")
    iu = np.triu_indices(n, 1)
    if n <= 8:
        orders = np.array(list(itertools.permutations(range(n))))
        exact = True
    else:
        rng = np.random.default_rng(seed)
        orders = np.array([rng.permutation(n) for _ in range(permutations)])
        exact = False
    # permuted upper triangles in chunks: y[p][:, p] restricted to the upper triangle
    xc = xu - xu.mean()
    hits = 0
    for start in range(0, len(orders), 2048):
        chunk = orders[start : start + 2048]
        yp = y[chunk[:, iu[0]], chunk[:, iu[1]]]
        yp = yp - yp.mean(1, keepdims=True)
        rs = (yp @ xc) / np.sqrt((yp * yp).sum(1) * (xc * xc).sum())
        hits += int((rs >= r - 1e-12).sum())
    if exact:
        p = hits / len(orders)  # the identity is among the orders
    else:
        p = (hits + 1) / (len(orders) + 1)
    return MantelResult(r=r, p=float(p), n=n, permutations=len(orders), exact=exact, method=method)


def keyed_ratings(table: pd.DataFrame) -> pd.Series:
    """Ratings on the value's own scale: reverse-keyed items (``agreement`` = -1) become ``max - rating``.

    ValueBench rates agreement 0..10; an item such as "I dislike routine" measures preference for order
    when it is disagreed with, so its rating is flipped before items of one value are averaged.
    """
    rating = pd.to_numeric(table["rating"], errors="coerce")
    if "agreement" in table.columns:
        agreement = pd.to_numeric(table["agreement"], errors="coerce").fillna(1)
        top = float(np.nanmax(rating.to_numpy())) if rating.notna().any() else 10.0
        top = 10.0 if top <= 10 else top
        rating = rating.where(agreement >= 0, top - rating)
    return rating


def rating_profiles(table: pd.DataFrame, labels: Sequence[str]) -> pd.DataFrame:
    """Per class, the mean keyed rating of each value (classes x values; values rated by every class)."""
    if "rating" not in table.columns or "value" not in table.columns:
        raise UnivarError("questionnaire scores need the columns 'rating' and 'value'")
    frame = pd.DataFrame({"class": np.asarray(labels, dtype=object), "value": table["value"].to_numpy(),
                          "rating": keyed_ratings(table).to_numpy()}).dropna()
    frame = frame[frame["value"].astype(str).str.strip() != ""]
    profiles = frame.pivot_table(index="class", columns="value", values="rating", aggfunc="mean")
    return profiles.dropna(axis=1)


def profile_distances(profiles: pd.DataFrame) -> pd.DataFrame:
    """Root-mean-square difference of two classes' per-value mean ratings (in rating points)."""
    p = profiles.to_numpy(dtype=np.float64)
    diff = p[:, None, :] - p[None, :, :]
    d = np.sqrt((diff ** 2).mean(-1))
    return pd.DataFrame(d, index=profiles.index, columns=profiles.index)


@dataclass
class Validity:
    """The Mantel test of embedding distances against questionnaire-profile distances."""

    metric: str
    result: MantelResult
    classes: list[str]
    n_values: int
    rating_distance: pd.DataFrame = field(repr=False)

    def to_dict(self) -> dict:
        return {"metric": self.metric, "n_values": self.n_values, "classes": self.classes, **self.result.to_dict()}


def questionnaire_validity(table: pd.DataFrame, labels: Sequence[str], distances: pd.DataFrame,
                           metric: str = "cosine", permutations: int = 9999, seed: int = 0) -> Validity:
    """Do classes that are close in value space also score alike on the questionnaires?"""
    profiles = rating_profiles(table, labels)
    common = [c for c in distances.index if c in profiles.index]
    if len(common) < 3:
        raise UnivarError(f"the Mantel test needs at least 3 classes with ratings, found {len(common)}")
    if profiles.shape[1] == 0:
        raise UnivarError("no value is rated by every class")
    rd = profile_distances(profiles.loc[common])
    result = mantel(distances.loc[common, common].to_numpy(), rd.to_numpy(), permutations=permutations, seed=seed)
    return Validity(metric=metric, result=result, classes=common, n_values=int(profiles.shape[1]),
                    rating_distance=rd)
