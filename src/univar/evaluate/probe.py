"""The linear probe: a multinomial logistic regression on standardised vectors, its L2 strength chosen on
held-out training rows.

The parametric half of value identification, and the stance probe (:mod:`univar.evaluate.stance`). One fit,
:func:`probe_scores`; scikit-learn's ``LogisticRegression`` on the same standardised rows is the reference it is
tested against (tests/test_evaluate.py, bench/experiments/probe_agreement.py).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from univar.encoders.embed import release_freed_memory
from univar.evaluate.splits import Rows

log = logging.getLogger("univar")

# The linear probe fits on at most this many training QAs (a seeded sample), which bounds its time: on all 160k
# training QAs of the 200k benchmark (bench/probe_speed.py) it would take about 3x as long, more than the whole
# evaluation's budget. Every bundled dataset is below it, so their scores are unchanged; k-NN always uses every
# training QA.
PROBE_MAX_TRAIN = 50_000


def top_k_accuracy(scores: np.ndarray, classes: Sequence[str], truth: Sequence[str], k: int) -> float:
    """Fraction of rows whose true label is among the ``k`` highest-scoring classes (ties: lower index)."""
    classes = np.asarray(classes, dtype=object)
    k = min(k, scores.shape[1])
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    hits = (classes[top] == np.asarray(truth, dtype=object)[:, None]).any(axis=1)
    return float(hits.mean()) if len(hits) else 0.0

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
    (:class:`univar.evaluate.stance.StanceValidity`) both read it.
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
