"""How far apart are the value distributions of two LLMs (or two languages of one LLM), and why?

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

The Mantel test asks whether two distance matrices over the same classes agree (here: univar distances
versus distances between questionnaire score profiles); its p-value comes from permuting the class order of
one matrix, exhaustively when there are at most 8 classes (8! = 40,320 orders).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from univar.errors import UnivarError
from univar.qa import CLASS_SEP

METRICS = ("cosine", "energy")


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.clip(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12, None)


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


# --- validity against questionnaire scores -----------------------------------------------------------

@dataclass
class MantelResult:
    r: float  # Pearson correlation between the upper triangles
    p: float  # one-sided: share of class orders whose correlation is at least r
    n: int  # classes
    permutations: int
    exact: bool
    method: str = "pearson"

    def to_json(self) -> dict:
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

    def to_json(self) -> dict:
        return {"metric": self.metric, "n_values": self.n_values, "classes": self.classes, **self.result.to_json()}


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


# --- what separates two classes ------------------------------------------------------------------------

def resolve_class(name: str, classes: Sequence[str]) -> str:
    """Accept ``model$lang`` or a model name that has a single language in the data."""
    if name in classes:
        return name
    matches = [c for c in classes if c.split(CLASS_SEP, 1)[0] == name]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise UnivarError(f"{name!r} has several languages; name one of {', '.join(matches)}")
    shown = ", ".join(list(classes)[:12]) + (" ..." if len(classes) > 12 else "")
    raise UnivarError(f"unknown class {name!r} (classes: {shown})")


def question_topics(vectors: np.ndarray, questions: Sequence[str], seed: int = 0,
                    n_topics: int | None = None) -> np.ndarray:
    """Stand-in for a missing ``value`` column: cluster questions by their mean QA embedding.

    Each topic is named after the words that mark its questions (top TF-IDF terms), so a reader can
    tell what it is about.
    """
    from sklearn.cluster import KMeans
    from sklearn.feature_extraction.text import TfidfVectorizer

    questions = np.asarray(questions, dtype=object)
    uniq, inverse = np.unique(questions, return_inverse=True)
    sums = np.zeros((len(uniq), vectors.shape[1]))
    np.add.at(sums, inverse, vectors)
    q_vec = _unit(sums)
    k = n_topics or int(np.clip(round(math.sqrt(len(uniq) / 2)), 2, 30))
    k = min(k, len(uniq))
    if k < 2:
        return np.array(["all questions"] * len(questions), dtype=object)
    topic = KMeans(k, n_init=4, random_state=seed).fit_predict(q_vec)
    names = []
    try:
        tfidf = TfidfVectorizer(stop_words="english", max_features=5000, min_df=1)
        m = tfidf.fit_transform(uniq.tolist())
        vocab = np.array(tfidf.get_feature_names_out())
        for t in range(k):
            score = np.asarray(m[topic == t].mean(0)).ravel()
            names.append(f"topic {t + 1}: " + ", ".join(vocab[np.argsort(-score)[:3]]))
    except ValueError:  # only stop words
        names = [f"topic {t + 1}" for t in range(k)]
    return np.array([names[t] for t in topic[inverse]], dtype=object)


def _shift(va: np.ndarray, vb: np.ndarray, paired: bool) -> float:
    """Unbiased estimate of the squared distance between two classes' mean (unit) vectors on one value.

    Paired (both classes answered the same questions, row i with row i): the mean over question pairs
    q != q' of (a_q - b_q) . (a_q' - b_q'), so what each question is about cancels and only a difference
    that the two LLMs show consistently counts. Unpaired: |mean a - mean b|^2 with the i = j terms left out
    of the within-class parts. Both are zero in expectation when the classes do not differ, whatever the
    number of questions, so values with few questions do not rank high by noise.
    """
    a, b = _unit(np.asarray(va, dtype=np.float64)), _unit(np.asarray(vb, dtype=np.float64))
    if paired:
        d = a - b
        s = d.sum(0)
        n = len(d)
        return float((s @ s - (d * d).sum()) / (n * (n - 1)))
    sa, sb = a.sum(0), b.sum(0)
    na, nb = len(a), len(b)
    within_a = (sa @ sa - (a * a).sum()) / (na * (na - 1))
    within_b = (sb @ sb - (b * b).sum()) / (nb * (nb - 1))
    return float(within_a + within_b - 2 * (sa @ sb) / (na * nb))


def _jackknife_se(stat, n: int) -> float:
    """Delete-one jackknife standard error of ``stat(keep_mask)`` over ``n`` units (nan below 3 units)."""
    if n < 3:
        return float("nan")
    values = []
    for i in range(n):
        keep = np.ones(n, dtype=bool)
        keep[i] = False
        values.append(stat(keep))
    values = np.asarray(values)
    return float(np.sqrt((n - 1) / n * ((values - values.mean()) ** 2).sum()))


def _shift_with_se(va: np.ndarray, vb: np.ndarray, paired: bool) -> tuple[float, float]:
    """``_shift`` and its jackknife standard error (questions left out in turn; unpaired: each side's QAs)."""
    est = _shift(va, vb, paired)
    if paired:
        return est, _jackknife_se(lambda k: _shift(va[k], vb[k], True), len(va))
    se_a = _jackknife_se(lambda k: _shift(va[k], vb, False), len(va))
    se_b = _jackknife_se(lambda k: _shift(va, vb[k], False), len(vb))
    return est, float(np.sqrt(se_a ** 2 + se_b ** 2))


@dataclass
class Explanation:
    """What separates two classes: one row per value, ranked by ``score``, and an example per top value.

    ``values`` columns: the value (or topic), ``score`` (separation minus one standard error: the ranking
    key), ``separation``, ``se``, ``paired_questions``, ``n_a``, ``n_b``, ``lean`` (a sentence on which way
    each class leans: from the ratings when there are any, else saying there are none); with ratings also
    ``rating_a``, ``rating_b`` (mean keyed ratings). ``lower`` is ``score`` under its earlier name.
    """

    class_a: str
    class_b: str
    grouping: str  # "value" or "topic"
    values: pd.DataFrame  # one row per value, highest score first
    examples: list[dict]  # per top value: the question and both answers
    min_qas: int = 5  # QAs per side a value needed to be scored

    def to_json(self) -> dict:
        return {"class_a": self.class_a, "class_b": self.class_b, "grouping": self.grouping, "min_qas": self.min_qas,
                "ranked_by": "score = separation - se", "values": self.values.to_dict(orient="records"),
                "examples": self.examples}

    def table(self, top: int | None = None) -> pd.DataFrame:
        """The ranking as shown by ``univar explain`` and the report: one source, so the two cannot differ."""
        cols = [self.grouping, "score", "separation", "se", "n_a", "n_b"]
        if "rating_a" in self.values.columns:
            cols += ["rating_a", "rating_b"]
        frame = self.values[cols] if top is None else self.values[cols].head(top)
        return frame.rename(columns={"se": "SE", "n_a": f"QAs {self.class_a}", "n_b": f"QAs {self.class_b}",
                                     "rating_a": f"rating {self.class_a}", "rating_b": f"rating {self.class_b}"})


def _lean(value: str, a: str, b: str, rating_a: float, rating_b: float, threshold: float = 1.0) -> str:
    """Which way each class leans on a value, from its mean keyed rating (0-10; higher: more of the value).

    Gaps under ``threshold`` points read as alike: single ratings move by a point or two between
    paraphrases of one item, so a smaller gap in a mean over a handful of items says little.
    """
    if not (np.isfinite(rating_a) and np.isfinite(rating_b)):
        return f"No ratings on {value} from both {a} and {b}."
    gap = rating_a - rating_b
    if abs(gap) < threshold:
        return (f"{a} and {b} rate {value} alike ({rating_a:.1f} and {rating_b:.1f} of 10): they differ in how "
                f"they answer, not in how much they endorse it.")
    more, less = (a, b) if gap > 0 else (b, a)
    hi, lo = max(rating_a, rating_b), min(rating_a, rating_b)
    return f"{more} leans towards {value} ({hi:.1f} of 10) and {less} away from it ({lo:.1f}); a gap of {abs(gap):.1f} points."


def _paired_example(pa: np.ndarray, pb: np.ndarray, vectors: np.ndarray, keyed: np.ndarray | None,
                    lean: float) -> tuple[int, int]:
    """The question whose two answers differ as the two classes differ on the value, not only in wording.

    With ratings: the largest gap in keyed rating in the direction of the classes' mean lean (a stance
    difference the reader can check), ties broken by the embedding. Without: the pair whose difference
    vector goes furthest along the classes' mean difference on the value.
    """
    d = _unit(vectors[pa]) - _unit(vectors[pb])
    direction = d.mean(0)
    along = d @ (direction / max(float(np.linalg.norm(direction)), 1e-12))
    if keyed is not None:
        gap = keyed[pa] - keyed[pb]
        gap = np.where(np.isfinite(gap), gap, 0.0) * (1.0 if lean >= 0 else -1.0)
        k = int(np.lexsort((-along, -gap))[0])
    else:
        k = int(np.argmax(along))
    return int(pa[k]), int(pb[k])


def explain_pair(table: pd.DataFrame, vectors: np.ndarray, labels: Sequence[str], class_a: str, class_b: str,
                 top: int = 5, min_qas: int = 5, seed: int = 0) -> Explanation:
    """Which values separate two classes most, with an example question answered by each side.

    Per value, the separation is an unbiased estimate of the squared distance between the two classes'
    mean value vectors on that value's questions (see ``_shift``): paired by question when both classes
    answered the same questions, so it measures a difference the two LLMs show consistently, not what the
    questions are about. Values are ranked by ``score``, the estimate minus its jackknife standard error,
    so a value seen on a handful of questions needs a clearer difference to rank first. The example under
    a value is the question on which the two answers differ in stance (rating) the way the classes differ,
    see :func:`_paired_example`; without shared questions, each side's most typical QA on that value.
    """
    labels = np.asarray(labels, dtype=object)
    classes = sorted(set(labels.tolist()))
    a, b = resolve_class(class_a, classes), resolve_class(class_b, classes)
    if a == b:
        raise UnivarError("explain needs two different classes")
    if "value" in table.columns and table["value"].notna().any():
        groups = table["value"].fillna("").astype(str).to_numpy(dtype=object)
        grouping = "value"
    else:
        groups = question_topics(vectors, table["question"].tolist(), seed=seed)
        grouping = "topic"
    has_rating = "rating" in table.columns and pd.to_numeric(table["rating"], errors="coerce").notna().any()
    keyed = keyed_ratings(table).to_numpy(dtype=np.float64) if has_rating else None
    in_a, in_b = labels == a, labels == b
    questions = table["question"].to_numpy(dtype=object)

    def score(threshold: int) -> list[dict]:
        rows = []
        for value in sorted(set(groups[in_a | in_b].tolist())):
            if not str(value).strip():
                continue
            ra = np.flatnonzero(in_a & (groups == value))
            rb = np.flatnonzero(in_b & (groups == value))
            if len(ra) < threshold or len(rb) < threshold:
                continue
            pa, pb = _pairs(ra, rb, questions)
            paired = len(pa) >= threshold
            if paired:
                sep, se = _shift_with_se(vectors[pa], vectors[pb], True)
            else:
                sep, se = _shift_with_se(vectors[ra], vectors[rb], False)
            lower = sep - se if np.isfinite(se) else sep
            row = {grouping: value, "score": lower, "separation": sep, "se": se, "lower": lower,
                   "paired_questions": len(pa) if paired else 0, "n_a": len(ra), "n_b": len(rb)}
            if keyed is not None:
                row["rating_a"] = float(np.nanmean(keyed[ra])) if np.isfinite(keyed[ra]).any() else float("nan")
                row["rating_b"] = float(np.nanmean(keyed[rb])) if np.isfinite(keyed[rb]).any() else float("nan")
                row["lean"] = _lean(str(value), a, b, row["rating_a"], row["rating_b"])
            else:
                row["lean"] = (f"The data has no ratings, so which way {a} and {b} lean on {value} shows only in "
                               "their answers (the example below).")
            rows.append(row)
        return rows

    # small samples: rather a ranking on fewer QAs per value (said in min_qas) than none
    for used in sorted({min_qas, min(min_qas, 3), 2}, reverse=True):
        rows = score(used)
        if rows:
            break
    if not rows:
        raise UnivarError(f"no {grouping} has 2 or more QAs from both {a} and {b}")
    ranked = pd.DataFrame(rows).sort_values(["score", "separation"], ascending=False,
                                            kind="stable").reset_index(drop=True)
    examples = [_example(ranked.iloc[i], grouping, groups, in_a, in_b, questions, vectors, table, keyed)
                for i in range(min(top, len(ranked)))]
    return Explanation(class_a=a, class_b=b, grouping=grouping, values=ranked, examples=examples, min_qas=used)


def _pairs(ra: np.ndarray, rb: np.ndarray, questions: np.ndarray) -> tuple[list[int], list[int]]:
    """Rows of the two classes that answer the same question (the first answer of each, per question)."""
    first_b: dict = {}
    for i in rb:
        first_b.setdefault(questions[i], i)
    seen: set = set()
    pa, pb = [], []
    for i in ra:
        q = questions[i]
        if q in first_b and q not in seen:
            seen.add(q)
            pa.append(int(i))
            pb.append(int(first_b[q]))
    return pa, pb


def _example(row: pd.Series, grouping: str, groups: np.ndarray, in_a: np.ndarray, in_b: np.ndarray,
             questions: np.ndarray, vectors: np.ndarray, table: pd.DataFrame, keyed: np.ndarray | None) -> dict:
    """The example QA pair shown under one value, with both ratings and their difference when rated."""
    value = row[grouping]
    ra = np.flatnonzero(in_a & (groups == value))
    rb = np.flatnonzero(in_b & (groups == value))
    pa, pb = _pairs(ra, rb, questions)
    if pa:
        lean = float(row.get("rating_a", 0.0) - row.get("rating_b", 0.0)) if keyed is not None else 0.0
        ia, ib = _paired_example(np.array(pa), np.array(pb), vectors, keyed, 0.0 if not np.isfinite(lean) else lean)
    else:
        ma, mb = _unit(vectors[ra].mean(0)), _unit(vectors[rb].mean(0))
        ia = int(ra[np.argmax(_unit(vectors[ra]) @ (ma - mb))])
        ib = int(rb[np.argmax(_unit(vectors[rb]) @ (mb - ma))])
    answers = table["answer"].to_numpy(dtype=object)
    example = {grouping: value, "paired": bool(pa),
               "question_a": str(questions[ia]), "answer_a": str(answers[ia]),
               "question_b": str(questions[ib]), "answer_b": str(answers[ib])}
    if keyed is not None:  # as the LLM gave it (not keyed), next to its own answer; the gap on the value's scale
        raw = pd.to_numeric(table["rating"], errors="coerce").to_numpy(dtype=np.float64)
        example["rating_a"], example["rating_b"] = float(raw[ia]), float(raw[ib])
        example["rating_difference"] = float(raw[ia] - raw[ib])
        if "agreement" in table.columns:  # agreeing with a reverse-keyed item means less of the value
            agreement = pd.to_numeric(table["agreement"], errors="coerce").to_numpy()
            example["reverse_keyed"] = bool(agreement[ia] < 0)
    if "lean" in row:
        example["lean"] = str(row["lean"])
    return example
