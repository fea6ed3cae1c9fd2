"""Stance validity: does an encoder's geometry see the *position* an answer takes, not only who wrote it?

Value identification rewards any signal that tells LLMs apart, and how an LLM writes tells them apart best (LLM
fingerprinting: word choice alone names the model). A value space must also place two answers that take the same
position on a question nearer each other than two that take opposite positions. Three measures, on QAs that carry a
``stance`` label (:func:`univar.qa.stance_labels`):

- ``stance_auc``: within one question, the probability that a same-label pair of answers is more similar (cosine)
  than a different-label pair, pooled over every question with two labels or more (0.5: the stance is invisible;
  the topic is held fixed, so it cannot help);
- ``stance_auc_cross_llm``: the same over pairs of answers by *different* LLMs only, where the writer's style
  cannot make a pair similar (the same-LLM pairs are where a fingerprint would score);
- ``probe_balanced_acc``: a linear probe trained on the other LLMs' answers to the other questions (five folds of
  the questions, each LLM left out in turn), scored on the held-out LLM's answers: balanced accuracy over the
  labels, so a probe that always names the commonest label scores chance.

Each comes with a 95% interval from resampling questions (a question's answers are not independent draws).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from univar.encoders.base import Encoder
from univar.encoders.embed import EmbedStats, embed
from univar.errors import SettingError, UnivarError
from univar.evaluate.probe import probe_scores
from univar.evaluate.results import Interval, StanceResult
from univar.qa import N_FOLDS, qa_texts, stance_labels
from univar.vectors import unit_rows

# Answers of one question scored at most: a question answered 1,000 times would give 500k pairs alone and outweigh
# every other question in the pooled AUC; a seeded sample of this many keeps each question's weight bounded.
MAX_ANSWERS_PER_QUESTION = 100


@dataclass(frozen=True)
class StanceValidity:
    """Does the encoder place answers that take the same position on a question together? (See the module.)

    Parameters
    ----------
    n_boot : int
        Bootstrap resamples of the questions for the intervals (0: no intervals).
    level : float
        Coverage of the intervals, strictly between 0 and 1.
    seed : int
        Seed of the resamples, of the per-question sample of answers and of the probe.
    probe : bool
        Fit the leave-one-LLM-out probe (the costlier part: one fit per LLM and question fold).

    Raises
    ------
    SettingError
        When a setting is out of range.

    Examples
    --------
    >>> result = StanceValidity().evaluate(univar.get_encoder("minilm"), univar.read_qa("bundled:xstest"))
    >>> result.stance_auc.value, result.to_dict()["probe_balanced_acc"]
    """

    n_boot: int = 1000
    level: float = 0.95
    seed: int = 0
    probe: bool = True

    def __post_init__(self) -> None:
        if self.n_boot < 0:
            raise SettingError("n_boot", f"must be 0 or more, got {self.n_boot}")
        if not 0.0 < self.level < 1.0:
            raise SettingError("level", f"must be between 0 and 1, got {self.level}")

    def evaluate(self, encoder: Encoder, table: pd.DataFrame, *, progress: bool = False,
                 stats: EmbedStats | None = None) -> StanceResult:
        """Embed the labelled QAs of ``table`` with ``encoder`` (through the cache) and score them.

        Parameters
        ----------
        encoder : Encoder
            What embeds the QAs (``univar.get_encoder(name)`` or a :class:`~univar.model.univar.UniVaR`).
        table : pandas.DataFrame
            A QA table with a ``stance`` column (:func:`univar.read_qa`).
        progress : bool
            Show a progress bar while embedding.
        stats : EmbedStats, optional
            Counts texts, cache hits and newly embedded texts when given.

        Returns
        -------
        StanceResult
            The measures, their intervals and counts.

        Raises
        ------
        UnivarError
            When the table has no stance labels or no question with two labels.
        """
        if isinstance(encoder, str):
            raise UnivarError(f"pass an encoder, not its name: univar.get_encoder({encoder!r})")
        rows = self.labelled_rows(table)
        vectors = embed(qa_texts(table.iloc[rows]), encoder, progress=progress, stats=stats)
        return self._score(vectors, table.iloc[rows].reset_index(drop=True), encoder.name)

    def score(self, vectors: np.ndarray, table: pd.DataFrame, encoder: str = "") -> StanceResult:
        """Score precomputed per-QA vectors (row i of ``vectors`` embeds row i of ``table``).

        Parameters
        ----------
        vectors : numpy.ndarray
            ``[len(table), dim]``.
        table : pandas.DataFrame
            The QA table, with a ``stance`` column.
        encoder : str
            The name the result gives the vectors.

        Returns
        -------
        StanceResult
            The measures, their intervals and counts.

        Raises
        ------
        UnivarError
            When lengths differ, or the table has no stance labels or no question with two labels.
        """
        if len(vectors) != len(table):
            raise UnivarError(f"{len(vectors)} embeddings but {len(table)} QAs")
        rows = self.labelled_rows(table)
        return self._score(np.asarray(vectors)[rows], table.iloc[rows].reset_index(drop=True), encoder)

    @staticmethod
    def labelled_rows(table: pd.DataFrame) -> np.ndarray:
        """Positions of the rows that take part: labelled, and not an exact repeat of an earlier QA.

        ValueBench asks one question under several inventories; its repeated answers would pair with
        themselves at similarity 1.

        Parameters
        ----------
        table : pandas.DataFrame
            A QA table, with a ``stance`` column.

        Returns
        -------
        numpy.ndarray
            Row positions (0-based) of the QAs that take part.

        Raises
        ------
        UnivarError
            When there is no ``stance`` column, every label is empty, or no question has two labels.
        """
        where = table.attrs.get("source", "the QA table")
        if "stance" not in table.columns:
            raise UnivarError(f"no column 'stance' of position labels (name one with --stance COL), {where}")
        labels = stance_labels(table)
        keep = labels.notna().to_numpy() & ~table.duplicated(subset=["question", "answer", "model"]).to_numpy()
        if not keep.any():
            raise UnivarError(f"every value of column 'stance' is empty, {where}")
        groups = _question_keys(table["question"][keep])
        if pd.Series(labels[keep].to_numpy()).groupby(groups).nunique().max() < 2:
            raise UnivarError(f"no question has answers with two different stance labels, so none can be compared, "
                              f"{where}")
        return np.flatnonzero(keep)

    def _score(self, vectors: np.ndarray, table: pd.DataFrame, encoder: str) -> StanceResult:
        labels = stance_labels(table).to_numpy(dtype=object)
        models = table["model"].astype(str).to_numpy()
        question = _question_keys(table["question"])
        x = unit_rows(np.ascontiguousarray(vectors, dtype=np.float32))
        pairs = _pairs(x, labels, models, question, self.seed)
        rng = np.random.default_rng(self.seed)
        n_q = int(question.max()) + 1
        weights = rng.multinomial(n_q, np.full(n_q, 1.0 / n_q), size=self.n_boot) if self.n_boot else None
        auc = _auc_interval(pairs["sim"], pairs["same"], pairs["question"], weights, self.level)
        cross = pairs["cross"]
        warnings = []
        if cross.any() and pairs["same"][cross].any() and (~pairs["same"][cross]).any():
            auc_cross = _auc_interval(pairs["sim"][cross], pairs["same"][cross], pairs["question"][cross], weights,
                                      self.level)
        else:
            auc_cross = Interval(None)
            warnings.append("no same- and different-label pairs of answers by different LLMs; "
                            "stance_auc_cross_llm is undefined")
        distinct = sorted(set(labels))
        probe, n_probe = Interval(None), 0
        if self.probe and len(set(models)) >= 2:
            correct, truth, q_rows = self._probe(x, labels, models, table["question"])
            n_probe = int(len(correct))
            if n_probe:
                probe = _balanced_interval(correct, truth, question[q_rows], weights, self.level)
        elif self.probe:
            warnings.append("one LLM only: the leave-one-LLM-out probe needs two or more")
        used_q = np.unique(pairs["question"])
        return StanceResult(
            encoder=encoder, stance_auc=auc, stance_auc_cross_llm=auc_cross, probe_balanced_acc=probe,
            n_questions=int(len(used_q)), n_pairs=int(len(pairs["sim"])), n_pairs_cross_llm=int(cross.sum()),
            n_labelled=int(len(table)), labels=[str(v) for v in distinct], probe_chance=1.0 / len(distinct),
            n_probe_test=n_probe, level=self.level, warnings=warnings)

    def _probe_folds(self, questions: pd.Series) -> np.ndarray:
        return _fold_of_questions(questions, self.seed)

    def _probe(self, x: np.ndarray, labels: np.ndarray, models: np.ndarray,
               questions: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each LLM's answers to one question fold, predicted by a probe fitted on the other LLMs' answers to
        the other folds: whether each prediction was right, its true label, and its row."""
        folds = self._probe_folds(questions)
        correct, truth, rows = [], [], []
        for model in sorted(set(models)):
            for fold in range(N_FOLDS):
                test = np.flatnonzero((models == model) & (folds == fold))
                train = np.flatnonzero((models != model) & (folds != fold))
                if len(test) == 0 or len(set(labels[train])) < 2:
                    continue
                classes, scores = probe_scores(x[train], labels[train], x[test], seed=self.seed)
                correct.append(classes[scores.argmax(axis=1)] == labels[test])
                truth.append(labels[test])
                rows.append(test)
        if not correct:
            return np.zeros(0, bool), np.zeros(0, object), np.zeros(0, int)
        return np.concatenate(correct), np.concatenate(truth), np.concatenate(rows)


def _fold_of_questions(questions: pd.Series, seed: int) -> np.ndarray:
    """Each QA's probe fold: its question's place in a seeded shuffle of the distinct questions, in N_FOLDS parts.

    Not the global question folds: a table of one fold's questions (a benchmark's held-out fold 0) would
    then leave the probe nothing to train on.
    """
    keys = _question_keys(questions)
    order = np.random.default_rng(seed).permutation(keys.max() + 1)
    return (order[keys] % N_FOLDS).astype(np.int64)


def _question_keys(questions: pd.Series) -> np.ndarray:
    """One integer per distinct question, as the question folds normalise it (case and outer spaces)."""
    return pd.factorize(questions.astype(str).str.strip().str.lower())[0]


def _pairs(x: np.ndarray, labels: np.ndarray, models: np.ndarray, question: np.ndarray, seed: int) -> dict:
    """Every pair of answers within each question with two labels or more: cosine, same label, by two LLMs."""
    rng = np.random.default_rng(seed)
    sims, same, cross, of = [], [], [], []
    order = np.argsort(question, kind="stable")
    bounds = np.flatnonzero(np.diff(question[order])) + 1
    for rows in np.split(order, bounds):
        if len(set(labels[rows])) < 2:
            continue
        if len(rows) > MAX_ANSWERS_PER_QUESTION:
            rows = np.sort(rng.choice(rows, MAX_ANSWERS_PER_QUESTION, replace=False))
        i, j = np.triu_indices(len(rows), 1)
        a, b = rows[i], rows[j]
        sims.append(np.einsum("ij,ij->i", x[a], x[b]))
        same.append(labels[a] == labels[b])
        cross.append(models[a] != models[b])
        of.append(np.full(len(a), question[rows[0]]))
    return {"sim": np.concatenate(sims).astype(np.float64), "same": np.concatenate(same).astype(bool),
            "cross": np.concatenate(cross).astype(bool), "question": np.concatenate(of)}


def weighted_auc(scores: np.ndarray, positive: np.ndarray, weights: np.ndarray | None = None,
                 groups: np.ndarray | None = None) -> np.ndarray:
    """Mann-Whitney AUC of ``scores`` for ``positive`` against the rest, ties counted a half.

    ``weights`` (resamples x groups, with ``groups`` the group of each item; or None for one unweighted AUC)
    repeats whole groups as a bootstrap draw of them does. The scores are ranked once and every resample costs two
    weighted counts: a thousand question resamples of 100k pairs take seconds, not a thousand sorts.
    """
    values, rank = np.unique(scores, return_inverse=True)
    positive = np.asarray(positive, dtype=bool)
    w = np.ones((1, 1)) if weights is None else np.atleast_2d(weights).astype(np.float64)
    groups = np.zeros(len(scores), dtype=np.int64) if weights is None or groups is None else groups
    out = np.empty(len(w))
    for r, row in enumerate(w):
        row = row[groups]
        pos = np.bincount(rank, row * positive, minlength=len(values))
        neg = np.bincount(rank, row * ~positive, minlength=len(values))
        below = np.cumsum(neg) - neg
        total = pos.sum() * neg.sum()
        out[r] = float((pos * (below + 0.5 * neg)).sum() / total) if total > 0 else np.nan
    return out


def _auc_interval(sim: np.ndarray, same: np.ndarray, question: np.ndarray, weights: np.ndarray | None,
                  level: float) -> Interval:
    point = float(weighted_auc(sim, same)[0])
    if weights is None:
        return Interval(point)
    boot = weighted_auc(sim, same, weights, question)
    return _interval(point, boot, level)


def _balanced_interval(correct: np.ndarray, truth: np.ndarray, question: np.ndarray, weights: np.ndarray | None,
                       level: float) -> Interval:
    """Balanced accuracy (mean recall over the labels), resampled by question like the AUCs."""
    _, label = np.unique(truth.astype(str), return_inverse=True)

    def balanced(w: np.ndarray) -> float:
        hits = np.bincount(label, w * correct, minlength=label.max() + 1)
        count = np.bincount(label, w, minlength=label.max() + 1)
        seen = count > 0
        return float((hits[seen] / count[seen]).mean())

    point = balanced(np.ones(len(correct)))
    if weights is None:
        return Interval(point)
    return _interval(point, np.array([balanced(row[question]) for row in weights]), level)


def _interval(point: float, boot: np.ndarray, level: float) -> Interval:
    boot = boot[np.isfinite(boot)]
    if not len(boot):
        return Interval(point)
    tail = (1 - level) / 2
    return Interval(point, float(np.quantile(boot, tail)), float(np.quantile(boot, 1 - tail)))
