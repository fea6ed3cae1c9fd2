"""Class evidence: how much each answer looks like each LLM's answers, the coordinates the value map is drawn from.

A UMAP of raw per-QA embeddings lays answers out by what they are about: every LLM's answer to one
question lands in one clump, and the LLMs' centroids coincide even where value identification tells them
apart from one answer. Value identification finds its structure with a linear probe over the embedding, so
the map is drawn from what that probe sees: each QA becomes its vector of class log-probabilities, centred.

The probe is *cross-fitted* over question folds: a QA's evidence comes from a probe trained on the other
folds' questions, never on its own label or its own question. A map of an encoder with no class signal is
therefore as mixed as the encoder is, and a map of one with signal shows it; :func:`map_fidelity` measures
which (10 nearest neighbours on the map against the class). New QAs (``univar map --add``) get the mean
evidence of the fold probes and are placed into the fitted map without refitting it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from univar.qa import N_FOLDS, question_folds
from univar.vectors import unit_rows

# A fold probe fits on at most this many QAs (a seeded sample): the map needs where answers sit, not the
# last point of accuracy, and lbfgs time grows with rows x dimensions x classes.
MAX_FIT_ROWS = 20_000
FLOOR = np.log(1e-4)  # log-probabilities below this carry no more information, only distance


def _unit(x: np.ndarray) -> np.ndarray:
    return unit_rows(np.asarray(x, dtype=np.float64))


def _folds(questions: Sequence[str]) -> np.ndarray:
    """Question folds: the value-identification folds when all are used, else one fold per question (<= 5)."""
    questions = np.asarray(questions, dtype=object)
    folds = question_folds(questions)
    if len(set(folds.tolist())) == N_FOLDS:
        return folds
    uniq, inverse = np.unique(questions.astype(str), return_inverse=True)
    if len(uniq) >= 2:
        return (inverse % min(N_FOLDS, len(uniq))).astype(np.int64)
    return np.arange(len(questions)) % min(N_FOLDS, max(len(questions), 1))  # one question: rows as units


@dataclass
class ClassEvidence:
    """Fold probes over one set of classes; ``transform`` gives new QAs the mean of their evidence."""

    classes: list[str]
    probes: list  # fitted sklearn LogisticRegression, one per fold that had two classes to learn

    def _scores(self, probe, vectors: np.ndarray) -> np.ndarray:
        out = np.full((len(vectors), len(self.classes)), FLOOR)
        cols = [self.classes.index(c) for c in probe.classes_]
        out[:, cols] = np.maximum(probe.predict_log_proba(vectors), FLOOR)
        return out - out.mean(1, keepdims=True)  # a log-probability vector is defined up to a shift

    def transform(self, vectors: np.ndarray) -> np.ndarray:
        """Evidence of QAs no probe was trained on (new LLMs): the mean over the fold probes."""
        vectors = _unit(vectors)
        return np.mean([self._scores(p, vectors) for p in self.probes], axis=0)


def fit_evidence(vectors: np.ndarray, labels: Sequence[str], questions: Sequence[str],
                 seed: int = 0) -> tuple[ClassEvidence, np.ndarray] | None:
    """Fit the fold probes and return them with each row's cross-fitted evidence (None: fewer than 2 classes)."""
    from sklearn.linear_model import LogisticRegression

    labels = np.asarray(labels, dtype=object)
    classes = sorted(set(labels.tolist()))
    if len(classes) < 2:
        return None
    x = _unit(vectors)
    folds = _folds(questions)
    rng = np.random.default_rng(seed)
    evidence = np.zeros((len(x), len(classes)))
    model = ClassEvidence(classes=classes, probes=[])
    missing = np.zeros(len(x), dtype=bool)
    for fold in sorted(set(folds.tolist())):
        rows, train = np.flatnonzero(folds == fold), np.flatnonzero(folds != fold)
        if len(set(labels[train].tolist())) < 2:
            missing[rows] = True
            continue
        if len(train) > MAX_FIT_ROWS:
            train = np.sort(rng.choice(train, MAX_FIT_ROWS, replace=False))
        # newton-cg: ~5 iterations where lbfgs needs ~40 on these unit vectors (2.2 s against 9.9 s, demo map)
        probe = LogisticRegression(C=1.0, solver="newton-cg", max_iter=200).fit(x[train], labels[train])
        model.probes.append(probe)
        evidence[rows] = model._scores(probe, x[rows])
    if not model.probes:
        return None
    if missing.any():  # folds whose complement held a single class: the other probes, which saw those rows
        evidence[missing] = model.transform(x[missing])
    return model, evidence


def neighbour_accuracy(coords: np.ndarray, labels: Sequence[str], k: int = 10,
                       query: np.ndarray | None = None, reference: np.ndarray | None = None) -> float:
    """Share of ``query`` rows whose ``k`` nearest ``reference`` rows on the map (majority) have their class.

    Without ``query``/``reference`` masks, every row is scored against all the others (leave one out).
    """
    from sklearn.neighbors import NearestNeighbors

    labels = np.asarray(labels, dtype=object)
    n = len(labels)
    query = np.ones(n, dtype=bool) if query is None else np.asarray(query, dtype=bool)
    reference = np.ones(n, dtype=bool) if reference is None else np.asarray(reference, dtype=bool)
    ref_rows = np.flatnonzero(reference)
    q_rows = np.flatnonzero(query)
    if len(ref_rows) < 2 or not len(q_rows):
        return float("nan")
    k = min(k, len(ref_rows) - 1)
    nn = NearestNeighbors(n_neighbors=k + 1).fit(coords[ref_rows])
    _, idx = nn.kneighbors(coords[q_rows])
    classes, codes = np.unique(labels, return_inverse=True)
    hits = 0
    for row, neighbours in zip(q_rows, ref_rows[idx]):
        neighbours = neighbours[neighbours != row][:k]
        votes = np.bincount(codes[neighbours], minlength=len(classes))
        hits += int(np.argmax(votes) == codes[row])  # ties: the first class in sorted order, as sklearn
    return hits / len(q_rows)
