"""How far apart are the value distributions of two LLMs (or two languages of one LLM)?

A class is one ``model$lang`` pair; each class is a cloud of per-QA value embeddings. Two distances are
reported, because they answer different questions:

- ``cosine``: 1 - cosine similarity of the class means. Cheap and stable; it sees where a class sits on
  average and nothing else. A sample mean is longer than the true mean (noise adds length), which
  makes the naive cosine of two sample means too small and the distance too large, the more so the fewer
  QAs a class has. The squared lengths are therefore estimated without bias (pairs of distinct QAs only),
  so two samples of one distribution are at distance ~0 whatever their sizes, and classes of different
  sizes can be compared.
- ``energy``: the energy distance between the two clouds (Szekely & Rizzo), with Euclidean distances
  between QA embeddings: ``2 E|X-Y| - E|X-X'| - E|Y-Y'|``. It is zero exactly when the two
  distributions are equal, so it also sees a difference in spread or in shape that leaves the means alike.
  Within-class terms are U-statistics (pairs of distinct QAs), so it is unbiased and can dip below zero
  for two samples of one distribution.

Both come with percentile bootstrap intervals (QAs resampled with replacement within each class).
In a replicate the within-class terms average over pairs of distinct *original* QAs, so a replicate is
as unbiased as the point estimate and the interval is centred on it (a naive bootstrap of these
distances is shifted upwards, and its interval can miss the estimate altogether).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from univar.errors import UnivarError
from univar.vectors import unit_rows

METRICS = ("cosine", "energy")


_unit = unit_rows  # the name the analysis modules use


def class_index(labels: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """Sorted class names and, per row, the index of its class."""
    labels = np.asarray(labels, dtype=object)
    classes = sorted(set(labels.tolist()))
    lookup = {c: i for i, c in enumerate(classes)}
    return classes, np.array([lookup[c] for c in labels], dtype=np.int64)


def class_means(vectors: np.ndarray, labels: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """Mean value vector of each class (rows in the order of the sorted class names)."""
    classes, idx = class_index(labels)
    sums = np.zeros((len(classes), vectors.shape[1]), dtype=np.float64)
    np.add.at(sums, idx, vectors)
    counts = np.bincount(idx, minlength=len(classes))[:, None]
    return classes, (sums / counts).astype(np.float64)


def cosine_distances(means: np.ndarray, others: np.ndarray | None = None) -> np.ndarray:
    """1 - cosine similarity between rows (of ``means`` and ``others``, or ``means`` with itself)."""
    a = _unit(np.asarray(means, dtype=np.float64))
    b = a if others is None else _unit(np.asarray(others, dtype=np.float64))
    return np.clip(1.0 - a @ b.T, 0.0, 2.0)


class _UnitPairs:
    """Per-class sums and same-unit cross products, for distances that leave out pairs of one unit.

    A unit is what was sampled: a question when the classes answered shared questions (two LLMs' answers to
    one question are alike because of the question, not their values), else a single QA. Each term of a
    mean's inner product that pairs two QAs of one unit is removed, so for independent units
    ``(S_a . S_b - M_ab) / (n_a n_b - P_ab)`` estimates mu_a . mu_b without bias, for a = b as well.
    Bootstrap replicates reweight units; the pair lists are fixed, so a replicate costs one pass over them.
    """

    def __init__(self, vectors: np.ndarray, idx: np.ndarray, k: int, units: np.ndarray):
        from scipy import sparse

        base = int(units.max()) + 1
        cells, cell_of_row = np.unique(idx.astype(np.int64) * base + units, return_inverse=True)
        self.k = k
        self.cell_class = (cells // base).astype(np.int64)
        self.cell_unit = (cells % base).astype(np.int64)
        n_cells = len(cells)
        self.cell_sum = np.zeros((n_cells, vectors.shape[1]))
        np.add.at(self.cell_sum, cell_of_row, vectors)
        self.cell_count = np.bincount(cell_of_row, minlength=n_cells).astype(np.float64)
        self.assign = sparse.csr_matrix((np.ones(n_cells), (self.cell_class, np.arange(n_cells))), shape=(k, n_cells))
        # all ordered pairs of cells that share a unit (a cell with itself included)
        order = np.argsort(self.cell_unit, kind="stable")
        bounds = np.flatnonzero(np.diff(self.cell_unit[order])) + 1
        first, second = [], []
        for group in np.split(order, bounds):
            first.append(np.repeat(group, len(group)))
            second.append(np.tile(group, len(group)))
        i, j = np.concatenate(first), np.concatenate(second)
        self.pair_unit = self.cell_unit[i]
        self.pair_flat = self.cell_class[i] * k + self.cell_class[j]
        self.pair_dot = np.einsum("ij,ij->i", self.cell_sum[i], self.cell_sum[j])
        self.pair_count = self.cell_count[i] * self.cell_count[j]

    def cosine(self, unit_weights: np.ndarray | None = None) -> np.ndarray:
        """1 - cosine between class means, same-unit pairs left out (debiased)."""
        k = self.k
        if unit_weights is None:
            cw, pw = np.ones(len(self.cell_count)), np.ones(len(self.pair_dot))
        else:
            cw, pw = unit_weights[self.cell_unit], unit_weights[self.pair_unit] ** 2
        sums = self.assign @ (self.cell_sum * cw[:, None])
        n = self.assign @ (self.cell_count * cw)
        m = np.bincount(self.pair_flat, weights=self.pair_dot * pw, minlength=k * k).reshape(k, k)
        p = np.bincount(self.pair_flat, weights=self.pair_count * pw, minlength=k * k).reshape(k, k)
        gram = sums @ sums.T
        nn = np.outer(n, n)
        naive = gram / np.clip(nn, 1e-12, None)
        denom = nn - p
        inner = np.where(denom > 0, (gram - m) / np.where(denom > 0, denom, 1.0), naive)
        norm2 = np.diag(inner).copy()
        # a class mean indistinguishable from zero has no direction to debias: keep its naive length
        norm2 = np.where(norm2 > 0, norm2, np.diag(naive))
        norm = np.sqrt(np.clip(norm2, 1e-24, None))
        # not clipped at 0: like the energy U-statistic, an estimate below 0 says "indistinguishable" and
        # still ranks; clipping would turn several near classes into ties
        return np.clip(1.0 - inner / np.outer(norm, norm), -1.0, 2.0)


def _units_for(groups: Sequence[str] | None, n: int) -> np.ndarray:
    if groups is None:
        return np.arange(n, dtype=np.int64)
    _, units = np.unique(np.asarray(groups, dtype=object).astype(str), return_inverse=True)
    return units.astype(np.int64)


def pairwise_euclidean(x: np.ndarray, y: np.ndarray | None = None) -> np.ndarray:
    """Euclidean distance matrix, computed through the Gram matrix (float64 for cancellation)."""
    x = np.asarray(x, dtype=np.float64)
    y = x if y is None else np.asarray(y, dtype=np.float64)
    sq = (x * x).sum(1)[:, None] + (y * y).sum(1)[None, :] - 2.0 * x @ y.T
    d = np.sqrt(np.clip(sq, 0.0, None))
    if y is x:
        np.fill_diagonal(d, 0.0)
    return d


def energy_distance(x: np.ndarray, y: np.ndarray) -> float:
    """Energy distance between two samples (U-statistic within samples; each needs 2 or more rows)."""
    if len(x) < 2 or len(y) < 2:
        raise UnivarError("the energy distance needs at least 2 QAs on each side")
    dxy = pairwise_euclidean(x, y).mean()
    dxx = pairwise_euclidean(x).sum() / (len(x) * (len(x) - 1))
    dyy = pairwise_euclidean(y).sum() / (len(y) * (len(y) - 1))
    return float(2 * dxy - dxx - dyy)


def subsample_per_class(idx: np.ndarray, cap: int, rng: np.random.Generator) -> np.ndarray:
    """Row indices keeping at most ``cap`` random rows of each class (all rows of smaller classes)."""
    keep = []
    for c in np.unique(idx):
        rows = np.flatnonzero(idx == c)
        keep.append(rows if len(rows) <= cap else np.sort(rng.choice(rows, cap, replace=False)))
    return np.concatenate(keep)


@dataclass
class Distances:
    """Class-by-class distances with bootstrap intervals (arrays are n_classes x n_classes)."""

    classes: list[str]
    sizes: list[int]
    cosine: np.ndarray
    cosine_lo: np.ndarray
    cosine_hi: np.ndarray
    energy: np.ndarray
    energy_lo: np.ndarray
    energy_hi: np.ndarray
    n_boot: int
    ci: float
    energy_points: int  # QAs per class (at most) behind the energy distance
    paired: bool = False  # classes shared questions: questions were the resampled units

    def matrix(self, metric: str = "cosine") -> pd.DataFrame:
        if metric not in METRICS:
            raise UnivarError(f"unknown distance {metric!r} (expected {' or '.join(METRICS)})")
        return pd.DataFrame(getattr(self, metric), index=self.classes, columns=self.classes)

    def long(self) -> pd.DataFrame:
        """One row per unordered class pair: the ``distances.csv`` layout."""
        rows = []
        for i, j in itertools.combinations(range(len(self.classes)), 2):
            rows.append({"class_a": self.classes[i], "class_b": self.classes[j],
                         "n_a": self.sizes[i], "n_b": self.sizes[j],
                         "cosine": self.cosine[i, j], "cosine_lo": self.cosine_lo[i, j],
                         "cosine_hi": self.cosine_hi[i, j],
                         "energy": self.energy[i, j], "energy_lo": self.energy_lo[i, j],
                         "energy_hi": self.energy_hi[i, j]})
        return pd.DataFrame(rows)


def _energy_from_blocks(d_other: np.ndarray, w: np.ndarray, other_unit: np.ndarray) -> np.ndarray:
    """Energy distances between all classes from point distances and class weights ``w``.

    ``w`` is points x classes (1/0 for the sample, bootstrap counts for a replicate); ``other_unit`` is
    1 for pairs of points from different units and 0 otherwise, and ``d_other`` is the distance matrix
    times ``other_unit``: pairs of one question (or one QA) are left out of every mean, between classes
    and within.
    """
    num = w.T @ (d_other @ w)
    den = w.T @ (other_unit @ w)
    mean = num / np.where(den > 0, den, np.nan)
    within = np.diag(mean)
    return 2 * mean - within[:, None] - within[None, :]


def shares_units(idx: np.ndarray, groups: Sequence[str] | None) -> bool:
    """Did several classes answer the same questions (then questions, not QAs, are the sampled units)?"""
    if groups is None:
        return False
    frame = pd.DataFrame({"c": idx, "g": np.asarray(groups, dtype=object)}).drop_duplicates()
    return bool(frame.duplicated("g").any())


# Longer than 60 lines on purpose: the point estimates and every bootstrap replicate share one set of unit pairs
# and one energy subsample; split into functions, each would need all of them passed around.
def class_distances(vectors: np.ndarray, labels: Sequence[str], *, groups: Sequence[str] | None = None,
                    n_boot: int = 200, ci: float = 0.95, seed: int = 0, max_points: int = 2400) -> Distances:
    """Cosine (between means, debiased) and energy distances between all pairs of classes, with bootstrap CIs.

    ``groups`` (the question of each QA) matters when classes answered the same questions: then a question
    is the sampled unit, pairs of answers to one question are left out of every mean (their likeness comes
    from the question), and the bootstrap resamples questions, shared by all classes (a paired design).
    Without shared questions each QA is a unit and QAs are resampled within each class.
    The energy distance looks at every pair of QAs, so it runs on at most ``max_points`` QAs in all
    (an equal random share per class, at least 20); the cosine distance always uses every QA.
    """
    vectors = np.asarray(vectors, dtype=np.float64)
    classes, idx = class_index(labels)
    k = len(classes)
    if k < 2:
        raise UnivarError(f"comparing needs at least 2 classes (model$lang), found {k}")
    sizes = np.bincount(idx, minlength=k)
    if sizes.min() < 2:
        raise UnivarError(f"class {classes[int(sizes.argmin())]} has a single QA; need at least 2 per class")
    rng = np.random.default_rng(seed)
    paired = shares_units(idx, groups)
    units = _units_for(groups if paired else None, len(vectors))
    n_units = int(units.max()) + 1

    # point estimates
    pairs = _UnitPairs(vectors, idx, k, units)
    cos = pairs.cosine()
    cap = max(20, max_points // k)
    sub = subsample_per_class(idx, cap, rng)
    d = pairwise_euclidean(vectors[sub])
    sub_idx, sub_units = idx[sub], units[sub]
    other_unit = (sub_units[:, None] != sub_units[None, :]).astype(np.float64)
    w0 = np.zeros((len(sub), k))
    w0[np.arange(len(sub)), sub_idx] = 1.0
    d *= other_unit
    energy = _energy_from_blocks(d, w0, other_unit)
    np.fill_diagonal(energy, 0.0)

    # bootstrap: resample units (questions shared by all classes, or QAs within each class)
    cos_b = np.empty((n_boot, k, k))
    en_b = np.empty((n_boot, k, k))
    members = [np.unique(units[idx == c]) for c in range(k)]
    for b in range(n_boot):
        weights = np.zeros(n_units)
        if paired:
            np.add.at(weights, rng.integers(0, n_units, n_units), 1.0)
        else:
            for rows in members:
                np.add.at(weights, rng.choice(rows, len(rows)), 1.0)
        cos_b[b] = pairs.cosine(weights)
        en_b[b] = _energy_from_blocks(d, w0 * weights[sub_units][:, None], other_unit)
    alpha = (1.0 - ci) / 2

    def bounds(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if n_boot == 0:
            return np.full((k, k), np.nan), np.full((k, k), np.nan)
        lo, hi = np.nanquantile(samples, [alpha, 1 - alpha], axis=0)
        np.fill_diagonal(lo, 0.0)
        np.fill_diagonal(hi, 0.0)
        return lo, hi
    cos_lo, cos_hi = bounds(cos_b)
    en_lo, en_hi = bounds(en_b)
    np.fill_diagonal(cos, 0.0)
    return Distances(classes=classes, sizes=sizes.tolist(), cosine=cos, cosine_lo=cos_lo, cosine_hi=cos_hi,
                     energy=energy, energy_lo=en_lo, energy_hi=en_hi, n_boot=n_boot, ci=ci,
                     energy_points=int(min(cap, sizes.max())), paired=paired)


def nearest_neighbours(dist: pd.DataFrame, k: int = 3) -> pd.DataFrame:
    """For each class (row of a square distance frame), its ``k`` nearest other classes."""
    rows = []
    for name in dist.index:
        others = dist.loc[name].drop(labels=[name], errors="ignore").sort_values(kind="stable")
        for rank, (other, value) in enumerate(others.head(k).items(), start=1):
            rows.append({"class": name, "rank": rank, "neighbour": other, "distance": float(value)})
    return pd.DataFrame(rows, columns=["class", "rank", "neighbour", "distance"])


def nearest_classes(new_vectors: np.ndarray, vectors: np.ndarray, labels: Sequence[str], k: int = 5,
                    groups: Sequence[str] | None = None, new_groups: Sequence[str] | None = None,
                    max_points: int = 2400, seed: int = 0) -> pd.DataFrame:
    """Where does a new set of QAs (one LLM) land: the ``k`` nearest existing classes.

    Computed as :func:`class_distances` over the existing classes plus the new one (no bootstrap):
    ranked by the debiased cosine distance between means, with the energy distance beside it. Pass the
    questions (``groups``, ``new_groups``) so answers to shared questions are compared fairly.
    """
    if len(new_vectors) < 2:
        raise UnivarError("placing a new LLM needs at least 2 of its QAs")
    labels = np.asarray(labels, dtype=object)
    new_label = "\x00new"  # sorts before every real class name
    both = np.vstack([np.asarray(vectors, dtype=np.float64), np.asarray(new_vectors, dtype=np.float64)])
    both_labels = np.concatenate([labels, np.full(len(new_vectors), new_label, dtype=object)])
    both_groups = None
    if groups is not None and new_groups is not None:
        both_groups = np.concatenate([np.asarray(groups, dtype=object), np.asarray(new_groups, dtype=object)])
    dist = class_distances(both, both_labels, groups=both_groups, n_boot=0, seed=seed, max_points=max_points)
    i = dist.classes.index(new_label)
    rows = [(c, dist.cosine[i, j], dist.energy[i, j]) for j, c in enumerate(dist.classes) if j != i]
    rows.sort(key=lambda r: r[1])
    return pd.DataFrame([{"rank": rank, "class": c, "cosine": float(cos), "energy": float(en)}
                         for rank, (c, cos, en) in enumerate(rows[:k], start=1)])
