"""Value identification: given the embedding of ONE QA, which (LLM, language) produced it?

This is the paper's test of a value representation (UniVaR, section 5): a k-NN classifier and a linear
probe on per-QA embeddings, scored by accuracy and weighted F1 against chance, on the random or the question
split (:mod:`univar.evaluate.splits`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from univar.encoders.base import Encoder
from univar.encoders.embed import EmbedStats, embed, release_freed_memory
from univar.errors import SettingError, UnivarError
from univar.evaluate.knn import knn_k, knn_predict
from univar.evaluate.probe import PROBE_MAX_TRAIN, linear_probe
from univar.evaluate.results import KnnScores, ProbeScores, ValueIdResult
from univar.evaluate.splits import SPLITS, Rows, split_indices
from univar.qa import N_FOLDS, TEST_FOLD, class_labels, qa_texts, question_folds
from univar.seen import SeenQuestions, count_seen, read_seen

TARGETS = ("class", "model", "lang")
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
            What embeds the QAs: a :class:`~univar.model.univar.UniVaR`, or ``univar.get_encoder(name)``.
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
