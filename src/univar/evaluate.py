"""Value identification: given the embedding of ONE QA, which (LLM, language) produced it?

This is the paper's test of a value representation (UniVaR, section 5): a k-NN classifier and a linear
probe on per-QA embeddings, scored by accuracy and weighted F1 against chance. Two splits:

- ``random``: per-class random split of QAs, the paper's protocol. The same question, answered by
  several LLMs, lands on both sides, so an encoder can score by matching topics.
- ``question``: question-disjoint. A question is in the test fold when
  ``int(sha1(question.strip().lower()).hexdigest(), 16) % 5 == 0``; no test question was seen in
  training, so only how an LLM answers (its values, and its style) can identify it.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from rich.markup import escape

from univar.encoders import EmbedStats, Encoder, embed, release_freed_memory
from univar.errors import SettingError, UnivarError
from univar.qa import N_FOLDS, TEST_FOLD, class_labels, qa_texts, question_folds
from univar.seen import SeenQuestions, count_seen, read_seen
from univar.tables import NAME, Col, FitTable
from univar.vectors import unit_rows

log = logging.getLogger("univar")
SPLITS = ("random", "question")
TARGETS = ("class", "model", "lang")
# The linear probe fits on at most this many training QAs (a seeded sample), which bounds its time: on all 160k
# training QAs of the 200k benchmark (bench/probe_speed.py) it would take about 3x as long, more than the whole
# evaluation's budget. Every bundled dataset is below it, so their scores are unchanged; k-NN always uses every
# training QA.
PROBE_MAX_TRAIN = 50_000


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
        raise UnivarError(f"--test-fraction must be between 0 and 1, got {test_fraction}")
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


def top_k_accuracy(scores: np.ndarray, classes: Sequence[str], truth: Sequence[str], k: int) -> float:
    """Fraction of rows whose true label is among the ``k`` highest-scoring classes (ties: lower index)."""
    classes = np.asarray(classes, dtype=object)
    k = min(k, scores.shape[1])
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    hits = (classes[top] == np.asarray(truth, dtype=object)[:, None]).any(axis=1)
    return float(hits.mean()) if len(hits) else 0.0


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


# The probe's L2 strengths, tried on a held-out part of the training side. A fixed C=1 overfits 384-768 standardised
# dimensions on a few thousand QAs: FULCRA fold 0 with minilm scored 61.4 at C=1 against 64.6 at C=0.03, and
# which encoder a fixed C suits is luck. Choosing C per encoder compares each at its best, as linear-probe
# evaluations do (CLIP sweeps the L2 strength on a validation split); small C also converges in fewer steps.
PROBE_CS = (0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
# Each fit stops when every entry of its gradient (mean-loss scale: coefficients of the standardised features and
# intercepts) is within this. scikit-learn's lbfgs, used before, stopped at 1e-3, where its warm-started path often
# did not move at all for the larger Cs (0 iterations: in the 200k benchmark C=0.3 and 1 kept C=0.1's solution, so
# C=0.1 won the tie, and its refit stopped at objective 0.473, the optimum's being 0.395), and two solutions both
# within 1e-3 differed by up to 0.7 points on the bundled sets. At 3e-4 the probe lands at the optimum's scores
# (sklearn run to 1e-6, minilm): ValueBench question split 47.2 (sklearn at 1e-3: 46.8), DoNotAnswer random 48.2
# (48.6), in half the time 1e-4 takes.
PROBE_TOL = 3e-4


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


def _probe_held_out(y_train: np.ndarray, held_out: np.ndarray | None, seed: int) -> np.ndarray | None:
    """The rows that choose C: ``held_out`` when both sides keep 2+ classes, else a seeded random 20%."""
    for mask in (held_out, np.random.default_rng(seed).random(len(y_train)) < 0.2):
        if mask is not None and mask.any() and len(set(y_train[~mask])) >= 2:
            return mask
    return None


# The probe's optimiser is hand-written (torch, float32, gradients by hand) rather than scikit-learn's lbfgs because it
# was measured several times faster on the same objective and agrees with sklearn run to convergence
# (bench/results/probe_speed.json: the probe alone against LogisticRegressionCV at 20k and 200k QAs;
# bench/results/probe_agreement.json: test accuracy against sklearn at tol 1e-3 and 1e-6). It minimises what sklearn
# does, mean cross-entropy + ||W||^2 / (2 C n) with a free intercept (C / 2 with two classes, where sklearn fits one
# binomial vector instead of two opposite ones). It is fast for two reasons. The rows are rotated once onto the
# principal axes of the standardised training rows (an orthogonal change of basis: the penalty and the optimum do not
# change), where the diagonal of the Hessian, sum_i p_ik (1 - p_ik) z_ij^2 / n + 1 / (C n), costs one product like a
# gradient's and preconditions L-BFGS well; it is recomputed at each fit's start and every PROBE_REFRESH steps. And
# each fit starts from the previous C's solution.
PROBE_MAX_ITER = 2000
PROBE_REFRESH = 25
PROBE_CHUNK = 8192  # rows at a time where a whole-matrix temporary is not needed
# Rows at a time where the probe's matrix is built (scaling, rotation, held-out rows) instead of whole-matrix
# temporaries; apart from PROBE_CHUNK, whose chunks set the order of the optimiser's sums, because these do not
# change a number (tests/test_memory_evaluate.py).
PROBE_COPY_CHUNK = 2048  # 2,048 x 1,792 float64 is 29 MB: the scaler widens three such chunks at a time


def _probe_axes(x, in_place: bool = False):
    """``x`` rotated onto the eigenvectors of ``x'x / n``, and those eigenvectors (columns).

    ``in_place``: the rotated rows overwrite ``x``, ``PROBE_COPY_CHUNK`` rows at a time, instead of filling a
    second matrix as large (50,000 x 1,792 float32 is 358 MB in the 200k-QA evaluation). Each row's product is the
    same sum in the same order either way, so the numbers are identical (tests/test_memory_evaluate.py).
    """
    import torch

    _, vectors = torch.linalg.eigh((x.T @ x).double() / max(len(x), 1))
    vectors = vectors.to(x.dtype).contiguous()
    if not in_place:
        return x @ vectors, vectors
    buffer = torch.empty(min(PROBE_COPY_CHUNK, len(x)), x.shape[1], dtype=x.dtype)
    for i in range(0, len(x), PROBE_COPY_CHUNK):
        part = x[i:i + PROBE_COPY_CHUNK]
        part.copy_(torch.matmul(part, vectors, out=buffer[:len(part)]))
    return x, vectors


def _partition_rows(a: np.ndarray, mask: np.ndarray) -> None:
    """Reorder the rows of ``a`` in place: those where ``mask`` is False first, then the rest, each in order.

    Why: the probe's C is chosen by fits on the training rows outside ``mask`` and scored on those inside;
    ``z[~held]`` and ``z[held]`` copied all of them (358 MB at 200k QAs). Partitioned, both are views; only the
    masked rows (a fifth) are copied, while they move. :func:`_unpartition_rows` restores the order.
    """
    keep = a[mask]  # copied out before the other rows slide down over them
    w = 0
    for i in range(0, len(a), PROBE_COPY_CHUNK):
        part = ~mask[i:i + PROBE_COPY_CHUNK]
        k = int(part.sum())
        a[w:w + k] = a[i:i + PROBE_COPY_CHUNK][part]  # w <= i: no row still to move is overwritten
        w += k
    a[w:] = keep


def _unpartition_rows(a: np.ndarray, mask: np.ndarray) -> None:
    """Undo :func:`_partition_rows`: every row back where it was, in place."""
    keep = a[len(a) - int(mask.sum()):].copy()
    w = len(a) - len(keep)
    for i in reversed(range(0, len(a), PROBE_COPY_CHUNK)):  # from the end: a row only ever moves down
        part = ~mask[i:i + PROBE_COPY_CHUNK]
        k = int(part.sum())
        a[i:i + PROBE_COPY_CHUNK][part] = a[w - k:w].copy()
        w -= k
    a[mask] = keep


def _lbfgs(objective, z, converged, rescale, max_iter: int, history: int = 10):
    """Minimise ``objective(z) -> (loss, gradient, gradient size)`` by L-BFGS with Armijo backtracking, until
    ``converged(gradient size)``, ``max_iter`` steps, or no step lowers the loss. Every ``PROBE_REFRESH`` steps
    ``rescale(z)`` renews the diagonal preconditioner and returns the factors that map ``z`` into the new
    variables; the stored step and gradient pairs are mapped with them, so the history survives."""
    import torch

    loss, grad, size = objective(z)
    steps, grads, rhos = [], [], []
    for step in range(max_iter):
        if converged(size):
            break
        if step and step % PROBE_REFRESH == 0:
            factor = rescale(z)
            z = z * factor
            steps, grads = [s * factor for s in steps], [y / factor for y in grads]
            loss, grad, size = objective(z)
        direction, alphas = -grad, []
        for s, y, rho in zip(reversed(steps), reversed(grads), reversed(rhos)):
            alphas.append(rho * torch.dot(s, direction))
            direction = direction - alphas[-1] * y
        if steps:
            direction = direction * (torch.dot(steps[-1], grads[-1]) / torch.dot(grads[-1], grads[-1]))
        for (s, y, rho), alpha in zip(zip(steps, grads, rhos), reversed(alphas)):
            direction = direction + (alpha - rho * torch.dot(y, direction)) * s
        slope = float(torch.dot(grad, direction))
        if slope >= 0:  # not a descent direction: forget the history
            steps, grads, rhos = [], [], []
            direction, slope = -grad, -float(torch.dot(grad, grad))
        t = 1.0  # the preconditioned Hessian is near the identity, so a unit step comes first
        for _ in range(40):
            new_z = z + t * direction
            new_loss, new_grad, new_size = objective(new_z)
            if new_loss <= loss + 1e-4 * t * slope:
                break
            t *= 0.5
        else:  # no decrease left at float32 precision
            break
        s, y = new_z - z, new_grad - grad
        sy = float(torch.dot(s, y))
        if sy > 1e-10 * float(torch.dot(y, y)):
            steps.append(s)
            grads.append(y)
            rhos.append(1.0 / sy)
            if len(steps) > history:
                del steps[0], grads[0], rhos[0]
        z, loss, grad, size = new_z, new_loss, new_grad, new_size
    return z


def _fit_softmax(z, y, n_classes: int, c: float, vectors, start=None):
    """Multinomial logistic regression of ``y`` (class indices) on rotated rows ``z`` (see :func:`_probe_axes`)
    at L2 strength ``c``: (W, b) in the rotated basis; ``vectors @ W`` are the coefficients of the original
    features, whose gradient entries must all fall within ``PROBE_TOL``."""
    import torch

    n, d = z.shape
    lam = 1.0 / ((c / 2 if n_classes == 2 else c) * n)
    rows, size = torch.arange(n), d * n_classes
    if start is None:
        prior = torch.bincount(y, minlength=n_classes).to(z.dtype) / n
        start = torch.zeros(d, n_classes, dtype=z.dtype), torch.log(prior.clamp_min(1.0 / n))

    def diagonal(w, b):  # the Hessian's diagonal at (w, b), as (w, b) scales: 1 / sqrt(curvature)
        h, hb = torch.zeros(n_classes, d, dtype=z.dtype), torch.zeros(n_classes, dtype=z.dtype)
        for i in range(0, n, PROBE_CHUNK):
            part = z[i:i + PROBE_CHUNK]
            p = torch.softmax(torch.addmm(b[:, None], w.T, part.T), dim=0)
            p.mul_(1 - p)
            h += p @ (part * part)
            hb += p.sum(dim=1)
        return torch.rsqrt(h.T / n + lam).contiguous(), torch.rsqrt((hb / n).clamp_min(1.0 / n))

    scales = diagonal(*start)

    def unpack(v):
        return scales[0] * v[:size].view(d, n_classes), v[size:] * scales[1]

    def objective(v):  # classes x rows logits: the layout MKL multiplies fastest here (0.15 s against 0.18 s)
        w, b = unpack(v)
        logits = torch.addmm(b[:, None], w.T, z.T)
        norm = torch.logsumexp(logits, dim=0)
        loss = float((norm.double().sum() - logits[y, rows].double().sum()) / n + 0.5 * lam * (w * w).sum())
        p = torch.exp(logits - norm)
        p[y, rows] -= 1
        p /= n
        grad_w, grad_b = (p @ z).T + lam * w, p.sum(dim=1)
        grad = torch.cat([(scales[0] * grad_w).reshape(-1), grad_b * scales[1]])
        return loss, grad, max(float((vectors @ grad_w).abs().max()), float(grad_b.abs().max()))

    def rescale(v):
        nonlocal scales
        old = scales
        scales = diagonal(*unpack(v))
        return torch.cat([(old[0] / scales[0]).view(-1), old[1] / scales[1]])

    v0 = torch.cat([(start[0] / scales[0]).view(-1), start[1] / scales[1]])
    return unpack(_lbfgs(objective, v0, lambda g: g <= PROBE_TOL, rescale, PROBE_MAX_ITER))


def probe_scaler(train: np.ndarray):
    """The probe's feature scaling, fitted on its training rows: each column centred and divided by its spread, but
    while the rows are too few to pin a linear fit down (at most dimensions + 1 of them), never by less than the
    median column's spread.

    Standardising gives every column the same prior weight under the L2 penalty. With fewer training rows than
    dimensions any labelling of them is linearly separable, so the data cannot tell signal columns from noise and
    the penalty alone decides; standardised, a low-variance column -- the tail of an SVD or PCA spectrum, one
    document's direction in TF-IDF's LSA -- weighs as much as the leading ones, and the probe fits noise. On 20
    ValueBench questions answered by 3 LLMs (60 QAs, TF-IDF, question split, 30 folds of 6 such files) it
    scored 46% (chance 33%) standardised and 59% with the spread floored at the median (minilm: 44% either way).
    With more rows than that the data decides and standardising is as good or better (TF-IDF, 360 training QAs
    in 256 dimensions: 67% standardised, 66% floored), so the scaling is then scikit-learn's ``StandardScaler``,
    as on every bundled set but for univar's 1,792 dimensions on XSTest, Moral Machine and local-llms (924-1,657
    training QAs; question split 59.2 -> 60.1, 98.9 -> 98.9, 31.5 -> 30.4).
    """
    scaler = _standard_scaler(train)
    if len(train) <= scaler.n_features_in_ + 1:
        scaler.scale_ = np.maximum(scaler.scale_, np.median(scaler.scale_))
    return scaler


def _standard_scaler(train: np.ndarray | Rows):
    """scikit-learn's ``StandardScaler().fit(train)``, with the same numbers, read ``PROBE_COPY_CHUNK`` rows at a time.

    Why: ``fit`` on float32 rows makes temporaries of the whole matrix: a float32 NaN mask, then ``X - mean`` in
    float64 (717 MB for the 50,000 x 1,792 probe rows of the 200k-QA evaluation), which made this fit the peak of
    bench/memory.py (3.63 GiB with the rows' copies around it). Here one chunk at a time is widened to float64.
    The sums are sklearn's two-pass ones (the column sums, then those of ``X - mean`` and its squares, with Chan
    et al.'s correction), each accumulated row by row in order as numpy's column sums are, so the results are
    equal to the last bit (tests/test_memory_evaluate.py). Rows with NaN, or a scikit-learn without the helpers
    used, take ``StandardScaler`` itself.
    """
    from sklearn.preprocessing import StandardScaler

    n = len(train)
    try:
        from sklearn.preprocessing._data import _handle_zeros_in_scale, _is_constant_feature
    except ImportError:  # a later scikit-learn: its own fit, whole
        return StandardScaler().fit(np.asarray(train))
    if n <= PROBE_COPY_CHUNK:
        return StandardScaler().fit(np.asarray(train))

    def column_sums(rows_of) -> np.ndarray:  # each column summed row by row in order, in float64
        total = None
        for i in range(0, n, PROBE_COPY_CHUNK):
            part = rows_of(i)
            total = part.sum(axis=0, dtype=np.float64) if total is None else \
                np.concatenate([total[None], part], axis=0, dtype=np.float64).sum(axis=0)
        return total

    def chunk(i: int) -> np.ndarray:
        part = np.asarray(train[i:i + PROBE_COPY_CHUNK])
        if part.dtype not in (np.float32, np.float64):
            part = part.astype(np.float64)
        if np.isnan(part).any():
            raise ValueError("NaN")
        return part

    try:
        mean = column_sums(chunk) / np.full(train.shape[1], n, dtype=np.float64)
    except ValueError:  # NaNs: sklearn's nan-aware sums
        return StandardScaler().fit(np.asarray(train))
    correction = column_sums(lambda i: chunk(i) - mean)
    squares = column_sums(lambda i: (chunk(i) - mean) ** 2)
    scaler = StandardScaler()
    scaler.n_features_in_, scaler.n_samples_seen_ = train.shape[1], np.float64(n)
    scaler.mean_, scaler.var_ = mean, (squares - correction**2 / n) / n
    constant = _is_constant_feature(scaler.var_, mean, scaler.n_samples_seen_)
    scaler.scale_ = _handle_zeros_in_scale(np.sqrt(scaler.var_), copy=False, constant_mask=constant)
    return scaler


def _scaled_rows(train: np.ndarray | Rows, scaler):
    """``scaler.transform(train)`` as one float32 tensor, filled ``PROBE_COPY_CHUNK`` rows at a time (no copy)."""
    import torch

    z = torch.empty(len(train), train.shape[1], dtype=torch.float32)
    rows = z.numpy()
    for i in range(0, len(train), PROBE_COPY_CHUNK):
        rows[i:i + PROBE_COPY_CHUNK] = scaler.transform(np.asarray(train[i:i + PROBE_COPY_CHUNK]))
    return z


def probe_scores(train: np.ndarray | Rows, y_train: np.ndarray, test: np.ndarray | Rows, seed: int = 0,
                 held_out: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Fit the linear probe on ``train`` and score ``test``: the classes (sorted) and a test x classes matrix.

    A multinomial logistic regression on standardised embeddings (:func:`probe_scaler`); ``C`` is picked from
    ``PROBE_CS`` by accuracy on ``held_out`` (a boolean mask over the training rows; question-disjoint from the rest
    when the test split is, see :meth:`ValueIdentification.score`), then the probe is refit on every training row
    with it. The test rows are never seen before they are scored. Value identification and the stance probe
    (:class:`univar.stance.StanceValidity`) both read it.
    """
    import torch

    y_train = np.asarray(y_train, dtype=object)
    classes, y_index = np.unique(y_train, return_inverse=True)  # sorted, as sklearn's classes_
    scaler = probe_scaler(train)
    z, vectors = _probe_axes(_scaled_rows(train, scaler), in_place=True)
    y = torch.from_numpy(y_index.astype(np.int64))
    mask = _probe_held_out(y_train, None if held_out is None else np.asarray(held_out, dtype=bool), seed)
    if mask is None:  # too few rows to hold any out: the middle of the grid
        chosen, start = 0.1, None
    else:
        # the grid from the strongest L2 down, each fit warm-started from the one before; the first of the
        # most accurate on the held-out rows wins, as in LogisticRegressionCV, and warm-starts the refit
        held = torch.from_numpy(mask)
        _partition_rows(z.numpy(), mask)  # z[~held], then z[held]: two views instead of two copies
        n_fit = int((~mask).sum())
        fit_z, fit_y, held_z, held_y = z[:n_fit], y[~held], z[n_fit:], y[held]
        path, accuracy = [], []
        for c in PROBE_CS:
            release_freed_memory()  # each fit's temporaries (classes x rows) left holes the next fit's outgrow
            path.append(_fit_softmax(fit_z, fit_y, len(classes), c, vectors, path[-1] if path else None))
            w, b = path[-1]
            accuracy.append(float((torch.addmm(b, held_z, w).argmax(dim=1) == held_y).double().mean()))
        del fit_z, held_z
        _unpartition_rows(z.numpy(), mask)  # the refit sums the rows in their own order, as before
        best = int(np.argmax(accuracy))
        chosen, start = PROBE_CS[best], path[best]
    release_freed_memory()
    w, b = _fit_softmax(z, y, len(classes), chosen, vectors, start)
    del z
    w = vectors @ w  # back to the standardised features
    test = test if isinstance(test, Rows) else np.asarray(test)  # Rows: copied a chunk at a time below
    scores = np.concatenate([torch.addmm(b, torch.from_numpy(np.ascontiguousarray(
        scaler.transform(test[i:i + PROBE_CHUNK]), dtype=np.float32)), w).double().numpy()
        for i in range(0, len(test), PROBE_CHUNK)]) if len(test) else np.zeros((0, len(classes)))
    log.info("linear probe: C=%g chosen on %s held-out training rows", chosen,
             "no" if mask is None else int(mask.sum()))
    return classes, scores


def linear_probe(train: np.ndarray | Rows, y_train: np.ndarray, test: np.ndarray | Rows, y_test: np.ndarray,
                 seed: int = 0, held_out: np.ndarray | None = None) -> dict:
    """Multinomial logistic regression on standardised embeddings, its L2 strength chosen on training rows.

    The paper trains a linear layer with Adam; an L2-regularised logistic regression fits the same model class
    to convergence, so the score does not depend on an epoch budget (the fit: :func:`probe_scores`).
    """
    from sklearn.metrics import f1_score

    classes, scores = probe_scores(train, y_train, test, seed, held_out)
    predicted = classes[scores.argmax(axis=1)]
    # with k or fewer classes a top-k guess holds every class, so acc@k would read 100% and mean nothing
    out = {f"acc@{k}": top_k_accuracy(scores, classes, y_test, k) if k == 1 or len(classes) > k else None
           for k in (1, 5, 10)}
    out["f1"] = float(f1_score(y_test, predicted, average="weighted", zero_division=0))
    return out


@dataclass(frozen=True)
class KnnScores:
    """k-NN value identification: a majority vote of the ``k`` nearest training QAs by cosine similarity.

    The non-parametric half of the test: it asks whether QAs of one LLM lie near each other, with nothing
    fitted on top of the embedding. Old code may read it as a dict (``scores["acc"]``).

    Attributes
    ----------
    k : int
        The k actually used; lower than asked when the training side is small (``ValueIdResult.warnings``
        says so).
    acc : float
        Accuracy on the test QAs, 0..1.
    f1 : float
        F1 weighted over classes, 0..1.
    correct : numpy.ndarray or None
        Per test QA, whether k-NN named its class (for paired comparisons and per-group accuracy); not in
        ``to_dict``, and None where it was not kept.
    """

    k: int  # the k actually used (see knn_k)
    acc: float
    f1: float  # weighted over classes
    # per test QA, whether k-NN named its class (for paired_difference and per-group accuracy); not in the JSON
    correct: np.ndarray | None = field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict:
        """The scores as the ``knn`` object of the ``--json`` output.

        Returns
        -------
        dict
            ``{"k": int, "acc": float, "f1": float}``.
        """
        return {"k": self.k, "acc": self.acc, "f1": self.f1}

    def __getitem__(self, key: str):
        """``scores["acc"]``: the dict these scores were before they were typed (kept for old callers)."""
        return self.to_dict()[key]


@dataclass(frozen=True)
class ProbeScores:
    """Linear-probe value identification: how well a multinomial logistic regression names the class.

    The parametric half of the test: whether the LLMs are linearly separable in the embedding, the L2
    strength chosen on held-out training QAs. Old code may read it as a dict (``scores["acc@1"]``).

    Attributes
    ----------
    acc_at_1 : float
        Top-1 accuracy on the test QAs, 0..1.
    acc_at_5 : float or None
        Top-5 accuracy; None with 5 training classes or fewer, where a top-5 guess holds every class.
    acc_at_10 : float or None
        Top-10 accuracy; None with 10 training classes or fewer.
    f1 : float
        F1 of the top-1 predictions, weighted over classes, 0..1.
    """

    acc_at_1: float
    acc_at_5: float | None
    acc_at_10: float | None
    f1: float  # weighted over classes

    @classmethod
    def from_dict(cls, scores: dict) -> "ProbeScores":
        """Build the scores from the dict :func:`linear_probe` and the ``--json`` output use.

        Parameters
        ----------
        scores : dict
            With the keys ``"acc@1"``, ``"acc@5"``, ``"acc@10"`` and ``"f1"``.

        Returns
        -------
        ProbeScores
            The same numbers, typed.
        """
        return cls(acc_at_1=scores["acc@1"], acc_at_5=scores["acc@5"], acc_at_10=scores["acc@10"], f1=scores["f1"])

    def to_dict(self) -> dict:
        """The scores as the ``linear`` object of the ``--json`` output (the inverse of :meth:`from_dict`).

        Returns
        -------
        dict
            ``{"acc@1": float, "acc@5": float | None, "acc@10": float | None, "f1": float}``.
        """
        return {"acc@1": self.acc_at_1, "acc@5": self.acc_at_5, "acc@10": self.acc_at_10, "f1": self.f1}

    def __getitem__(self, key: str):
        """``scores["acc@1"]``: the dict these scores were before they were typed (kept for old callers)."""
        return self.to_dict()[key]


@dataclass
class ValueIdResult:
    """One value-identification run: what was scored and how, beside the k-NN and linear-probe scores.

    The settings travel with the scores so that a saved result can be read, and compared with another,
    without the command that made it.

    Attributes
    ----------
    encoder : str
        The name of the encoder that embedded the QAs.
    split : str
        ``"random"`` or ``"question"`` (see :class:`ValueIdentification`).
    target : str
        What was identified: ``"class"`` (``model$lang``), ``"model"`` or ``"lang"``.
    n_classes : int
        Distinct labels of the target over the whole table.
    chance : float
        ``1 / n_classes``, the accuracy of a uniform guess.
    n_train : int
        Training QAs (k-NN neighbours; the probe fits on a seeded sample when there are very many).
    n_test : int
        Test QAs scored.
    knn : KnnScores
        The k-NN scores.
    linear : ProbeScores
        The linear-probe scores.
    warnings : list[str]
        What a reader should know about these numbers (k lowered, test classes never trained on); not in
        :meth:`to_dict`.
    """

    encoder: str
    split: str
    target: str
    n_classes: int
    chance: float
    n_train: int
    n_test: int
    knn: KnnScores
    linear: ProbeScores
    # what a person should know about these numbers (k lowered, classes never trained on); not in the JSON
    warnings: list[str] = field(default_factory=list, compare=False, repr=False)

    def to_dict(self) -> dict:
        """The result as ``univar evaluate value-id --json`` writes it, for files and comparisons across runs.

        Returns
        -------
        dict
            Plain JSON types: every attribute but ``warnings``, with ``knn`` and ``linear`` as their
            ``to_dict()``.
        """
        return {"encoder": self.encoder, "split": self.split, "target": self.target, "n_classes": self.n_classes,
                "chance": self.chance, "n_train": self.n_train, "n_test": self.n_test,
                "knn": self.knn.to_dict(), "linear": self.linear.to_dict()}

    def to_json(self) -> dict:
        """Deprecated name of :meth:`to_dict` (it never returned JSON text), kept for one release.

        Returns
        -------
        dict
            The same as :meth:`to_dict`.
        """
        warnings.warn("ValueIdResult.to_json is deprecated: use to_dict", DeprecationWarning, stacklevel=2)
        return self.to_dict()


# Fewer test QAs than this in the question split's fold 0 and a single QA moves a score by more than 5 points: said.
QUESTION_SPLIT_MIN_TEST = 20
BELOW_CHANCE_P = 0.05  # a score this unlikely (binomial, one-sided) under uniform guessing is not luck


def below_chance_notes(result: ValueIdResult, labels: np.ndarray, questions: np.ndarray, train: np.ndarray,
                       test: np.ndarray) -> list[str]:
    """A warning when k-NN or the probe scores under chance by more than luck, and the likely reason.

    Under chance is not "the encoder sees nothing" (that reads as chance) but a split that misleads. The usual
    one: every LLM answered the same questions once, so the random split holds out one LLM's answer to a question
    and trains on the others' answers to it; an encoder that sees the question's topic then points every test QA
    to another LLM. On 20 ValueBench questions answered by 3 LLMs the random split gave minilm 10% (chance 33%)
    and a plain logistic regression on TF-IDF 6%, where the question split gave both 44-56%.
    """
    from scipy.stats import binom

    n = len(test)
    low = [f"{name} {100 * acc:.1f}%" for name, acc in (("k-NN acc", result.knn.acc),
                                                          ("linear acc@1", result.linear.acc_at_1))
           if n and acc < result.chance and binom.cdf(round(acc * n), n, result.chance) < BELOW_CHANCE_P]
    if not low:
        return []
    pairs = set(zip(questions[train], labels[train]))
    asked = set(questions[train])
    others_only = sum(q in asked and (q, c) not in pairs for q, c in zip(questions[test], labels[test]))
    why = (f"{others_only:,} of the {n:,} test QAs have their question answered in training by other classes only, "
           "so an encoder that sees the question's topic points away from the right class; --split question keeps "
           "each question on one side" if others_only * 2 >= n else
           "the split or the data misleads here (not luck, and not an encoder that sees nothing: that reads chance)")
    return [f"{' and '.join(low)} {'is' if len(low) == 1 else 'are'} below chance ({100 * result.chance:.1f}%) by "
            f"more than luck on {n:,} test QAs: {why}"]


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


def value_identification(table: pd.DataFrame, encoder, *, split: str = "random", test_fraction: float = 0.2,
                         k: int = 50, seed: int = 0, target: str = "class", progress: bool = True,
                         stats=None) -> ValueIdResult:
    """Deprecated: ``ValueIdentification(split=..., k=...).evaluate(encoder, table)``."""
    warnings.warn("univar.evaluate.value_identification is deprecated; use univar.ValueIdentification(split=..., "
                  "k=...).evaluate(encoder, table)", DeprecationWarning, stacklevel=2)
    return ValueIdentification(split=split, k=k, target=target, test_fraction=test_fraction,
                               seed=seed).evaluate(encoder, table, progress=progress, stats=stats)


@dataclass(frozen=True)
class ValueIdentification:
    """Which LLM wrote this answer? Value identification as one evaluator object, settings checked once.

    An embedding that captures an LLM's values should tell its answers from other LLMs' answers; this scores
    how well it does, by k-NN and by a linear probe on per-QA vectors. Build it once, then
    :meth:`evaluate` an encoder or :meth:`score` vectors; the same settings give the same numbers.

    Parameters
    ----------
    split : str
        ``"random"``: a per-class random ``test_fraction`` of the QAs is the test side (the paper's
        protocol). ``"question"``: question fold 0 is (no test question was seen in training, so only how
        an LLM answers can identify it).
    k : int
        Neighbours of the k-NN vote, at least 1.
    target : str
        What to identify: ``"class"`` (``model$lang``), ``"model"`` or ``"lang"``.
    test_fraction : float
        Share of each class held out by the random split, strictly between 0 and 1.
    seed : int
        Seed of the random split, the probe's sample and its held-out rows.

    Raises
    ------
    SettingError
        (a :class:`~univar.errors.UnivarError`) when a setting is out of range; ``as_flag()`` words it with
        the command-line flag.

    Examples
    --------
    >>> result = ValueIdentification(split="question", k=50).evaluate(model, table)
    >>> result.knn.acc, result.linear.acc_at_1, result.to_dict()
    """

    split: str = "random"
    k: int = 50
    target: str = "class"
    test_fraction: float = 0.2
    seed: int = 0

    def __post_init__(self) -> None:
        # the only check of these settings: the CLI words a SettingError with its flag (--split must be ...)
        if self.split not in SPLITS:
            raise SettingError("split", f"must be one of {', '.join(SPLITS)}, got {self.split!r}")
        if self.target not in TARGETS:
            raise SettingError("target", f"must be one of {', '.join(TARGETS)}, got {self.target!r}")
        if self.k < 1:
            raise SettingError("k", f"must be at least 1, got {self.k}")
        if not 0.0 < self.test_fraction < 1.0:
            raise SettingError("test_fraction", f"must be between 0 and 1, got {self.test_fraction}")

    def evaluate(self, encoder: Encoder, table: pd.DataFrame, *, progress: bool = False,
                 stats: EmbedStats | None = None) -> ValueIdResult:
        """Embed ``table`` with ``encoder`` (through the embedding cache) and score how well it identifies LLMs.

        Parameters
        ----------
        encoder : Encoder
            What embeds the QAs: a :class:`~univar.model.api.UniVaR`, or ``univar.get_encoder(name)``.
        table : pandas.DataFrame
            A QA table (:func:`univar.read_qa`) with at least two classes of the target.
        progress : bool
            Show a progress bar while embedding.
        stats : EmbedStats, optional
            Counts texts, cache hits and newly embedded texts when given.

        Returns
        -------
        ValueIdResult
            The settings, sizes and scores of this run.

        Raises
        ------
        UnivarError
            When ``encoder`` is a name rather than an encoder, or the table and split leave fewer than two
            classes or an empty training or test side.
        """
        if isinstance(encoder, str):  # resolving names is the registry's job, a layer above this module
            raise UnivarError(f"pass an encoder, not its name: univar.get_encoder({encoder!r})")
        vectors = embed(qa_texts(table), encoder, progress=progress, stats=stats)
        # a model folder says which questions it was trained on (univar.seen): its scores on them are not held out
        return self.score(vectors, table, encoder=encoder.name, seen=read_seen(getattr(encoder, "path", None)))

    def score(self, vectors: np.ndarray, table: pd.DataFrame, encoder: str = "",
              seen: SeenQuestions | None = None) -> ValueIdResult:
        """Score precomputed per-QA vectors, for embeddings made elsewhere or reused across settings.

        Parameters
        ----------
        vectors : numpy.ndarray
            ``[len(table), dim]``, row i the embedding of row i of ``table``.
        table : pandas.DataFrame
            The QA table the vectors belong to (its ``question`` and target columns are read).
        encoder : str
            The name the result gives the vectors.
        seen : SeenQuestions, optional
            The questions the encoder was trained on (:func:`univar.seen.read_seen` of its model folder): the
            result then warns when test QAs are among them, and how many.

        Returns
        -------
        ValueIdResult
            The settings, sizes and scores of this run.

        Raises
        ------
        UnivarError
            When the vectors and the table differ in length, or the table and split leave fewer than two
            classes or an empty training or test side.
        """
        labels = np.asarray(class_labels(table, self.target).to_numpy(), dtype=object)
        if len(labels) != len(vectors):
            raise UnivarError(f"{len(vectors)} embeddings but {len(labels)} labels")
        n_classes = len(set(labels))
        if n_classes < 2:
            raise UnivarError(f"value identification needs at least 2 classes of target {self.target!r}, "
                              f"found {n_classes}")
        train, test = self._sides(labels, table["question"])
        x = np.asarray(vectors, dtype=np.float32)
        k, notes = knn_k(self.k, labels[train], labels[test])
        knn = replace(self, k=k).score_knn(Rows(x, train), labels[train], Rows(x, test), labels[test])
        release_freed_memory()  # k-NN's index slices and copies (0.3 GB at 200k QAs) before the probe's matrix
        probe = train if len(train) <= PROBE_MAX_TRAIN else np.sort(
            np.random.default_rng(self.seed).choice(train, PROBE_MAX_TRAIN, replace=False))
        # C is chosen on the training QAs of the next question fold: unseen questions, as the test fold's are
        held_out = (question_folds(table["question"].iloc[probe]) == (TEST_FOLD + 1) % N_FOLDS
                    if self.split == "question" else None)
        result = ValueIdResult(
            encoder=encoder, split=self.split, target=self.target, n_classes=n_classes, chance=1.0 / n_classes,
            n_train=int(len(train)), n_test=int(len(test)), knn=knn,
            linear=self.score_probe(Rows(x, probe), labels[probe], Rows(x, test), labels[test], held_out),
            warnings=notes)
        result.warnings.extend(self._notes(result, labels, table["question"], train, test, seen))
        return result

    def score_knn(self, train: np.ndarray | Rows, y_train: np.ndarray, test: np.ndarray | Rows,
                  y_test: np.ndarray) -> KnnScores:
        """k-NN scores of explicit partitions: each ``test`` row gets the majority label of its ``k`` nearest
        ``train`` rows by cosine similarity (ties: the lower label; ``k`` at most the training rows).

        :meth:`score` calls it on its split, after lowering ``k`` where the data needs it (:func:`knn_k`);
        training's validation calls it on its reference and held-out QAs.

        Parameters
        ----------
        train : numpy.ndarray or Rows
            The training vectors, ``[n_train, dim]`` (an array, or :class:`Rows` of one matrix).
        y_train : numpy.ndarray
            Their labels, one per row.
        test : numpy.ndarray or Rows
            The vectors to classify, ``[n_test, dim]``.
        y_test : numpy.ndarray
            Their true labels.

        Returns
        -------
        KnnScores
            Accuracy and weighted F1 over the test rows, the ``k`` used, and ``correct`` per test row.
        """
        from sklearn.metrics import f1_score

        y_test = np.asarray(y_test)
        predicted = knn_predict(train, y_train, test, self.k)
        correct = predicted == y_test
        f1 = float(f1_score(y_test, predicted, average="weighted", zero_division=0)) if len(y_test) else 0.0
        return KnnScores(k=max(1, min(self.k, len(train))), acc=float(np.mean(correct)), f1=f1, correct=correct)

    def score_probe(self, train: np.ndarray | Rows, y_train: np.ndarray, test: np.ndarray | Rows, y_test: np.ndarray,
                    held_out: np.ndarray | None = None) -> ProbeScores:
        """Linear-probe scores of explicit partitions (:func:`linear_probe`, seeded by ``seed``).

        :meth:`score` passes at most ``PROBE_MAX_TRAIN`` sampled training rows and, on the question split,
        marks those of question fold 1 as ``held_out``.

        Parameters
        ----------
        train : numpy.ndarray or Rows
            The training vectors, ``[n_train, dim]``.
        y_train : numpy.ndarray
            Their labels, one per row.
        test : numpy.ndarray or Rows
            The vectors to classify, ``[n_test, dim]``; never seen before the final score.
        y_test : numpy.ndarray
            Their true labels.
        held_out : numpy.ndarray, optional
            Boolean mask over the training rows that choose the probe's L2 strength; None: a seeded random
            fifth.

        Returns
        -------
        ProbeScores
            Top-1/5/10 accuracy and weighted F1 over the test rows.
        """
        return ProbeScores.from_dict(linear_probe(train, y_train, test, y_test, self.seed, held_out))

    def _notes(self, result: ValueIdResult, labels: np.ndarray, questions: pd.Series, train: np.ndarray,
               test: np.ndarray, seen: SeenQuestions | None) -> list[str]:
        """What a reader should know about these scores beyond k-NN's k (:func:`knn_k`): a question-split test
        fold too small to score steadily, scores under chance by more than luck, and test questions the encoder
        was trained on."""
        notes = []
        if self.split == "question" and len(test) < QUESTION_SPLIT_MIN_TEST:
            notes.append(f"the question split's test fold (question fold {TEST_FOLD}) holds only {len(test)} QAs "
                         f"({questions.iloc[test].nunique()} questions), under {QUESTION_SPLIT_MIN_TEST}: one QA "
                         f"moves a score by {100 / len(test):.1f} points; more questions give steadier scores")
        notes += below_chance_notes(result, labels, questions.to_numpy(), train, test)
        if seen is not None:
            trained, validated = count_seen(seen, questions.iloc[test])
            if trained or validated:
                also = f" (and chose its epoch on those of {validated:,} more)" if validated else ""
                notes.append(f"{result.encoder or 'the model'} was trained on the questions of {trained:,} of the "
                             f"{len(test):,} test QAs{also}, so these scores are not held out; --split question "
                             f"tests on question fold {TEST_FOLD}, which training leaves out by default")
        return notes

    def _sides(self, labels: np.ndarray, questions: pd.Series) -> tuple[np.ndarray, np.ndarray]:
        """The training and test rows of this split; refused where there is nothing to learn or to test."""
        train, test = split_indices(labels, questions, self.split, self.test_fraction, self.seed)
        if len(train) == 0 or len(test) == 0:
            raise UnivarError(f"the {self.split} split leaves {len(train)} training and {len(test)} test QAs; "
                              "need both")
        if len(set(labels[train])) < 2:
            raise UnivarError("the training side holds a single class; nothing to learn")
        return train, test


def results_table(results: Sequence[ValueIdResult], title: str = "value identification") -> FitTable:
    """A rich table: one row per encoder, accuracies in percent ("-" where a score means nothing, see linear_probe);
    laid out at print time for the console's width (univar.tables), so the encoder's name is never cut."""
    first = results[0]
    # the encoder's name (or model folder) stays whole; at a narrow console acc@10, acc@5, then the F1s go
    table = FitTable(Col("encoder", NAME), Col(f"k-NN acc\n(k={first.knn.k})"), Col("k-NN\nF1", drop=1),
                     Col("linear\nacc@1"), Col("acc@5", drop=2), Col("acc@10", drop=3), Col("linear\nF1", drop=1),
                     title=f"{escape(title)} · split={first.split} · target={first.target} · {first.n_classes} "
                           f"classes (chance {100 * first.chance:.2f}%) · train {first.n_train} / test {first.n_test}")
    for r in results:
        table.add_row(escape(r.encoder), *("-" if v is None else f"{100 * v:.2f}"
                                           for v in (r.knn.acc, r.knn.f1, r.linear.acc_at_1, r.linear.acc_at_5,
                                                     r.linear.acc_at_10, r.linear.f1)))
    return table
