"""What an evaluation returns: typed scores that carry their settings, and their JSON form (``to_dict``)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class KnnScores:
    """k-NN value identification: a majority vote of the ``k`` nearest training QAs by cosine similarity.

    The non-parametric half of the test: it asks whether QAs of one LLM lie near each other, with nothing
    fitted on top of the embedding.

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


@dataclass(frozen=True)
class ProbeScores:
    """Linear-probe value identification: how well a multinomial logistic regression names the class.

    The parametric half of the test: whether the LLMs are linearly separable in the embedding, the L2
    strength chosen on held-out training QAs.

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



@dataclass(frozen=True)
class Interval:
    """A point estimate with a bootstrap interval over questions (``low``..``high`` at ``level``)."""

    value: float | None
    low: float | None = None
    high: float | None = None

    def to_list(self) -> list[float | None]:
        """``[low, high]``, as the JSON writes an interval."""
        return [self.low, self.high]


@dataclass
class StanceResult:
    """One stance-validity run: the three measures with their intervals and what they were computed on.

    Attributes
    ----------
    encoder : str
        The name of the encoder that embedded the QAs.
    stance_auc : Interval
        Within-question AUC of same- against different-label pairs (see the module docstring).
    stance_auc_cross_llm : Interval
        The same over pairs by different LLMs; ``value`` None where there are no such pairs of both kinds.
    probe_balanced_acc : Interval
        The leave-one-LLM-out probe's balanced accuracy; ``value`` None with a single LLM.
    n_questions : int
        Questions with two labels or more among their labelled answers (the ones the AUCs pool).
    n_pairs : int
        Answer pairs within those questions.
    n_pairs_cross_llm : int
        Those of them by two different LLMs.
    n_labelled : int
        Labelled QAs scored (after exact duplicates are dropped).
    labels : list[str]
        The distinct stance labels.
    probe_chance : float
        Balanced accuracy of a constant guess, ``1 / len(labels)``.
    n_probe_test : int
        QAs the probe scored (each LLM's, on folds where the other LLMs give two labels or more).
    level : float
        Coverage of the intervals.
    warnings : list[str]
        What a reader should know about these numbers; not in :meth:`to_dict`.
    """

    encoder: str
    stance_auc: Interval
    stance_auc_cross_llm: Interval
    probe_balanced_acc: Interval
    n_questions: int
    n_pairs: int
    n_pairs_cross_llm: int
    n_labelled: int
    labels: list[str]
    probe_chance: float
    n_probe_test: int
    level: float = 0.95
    warnings: list[str] = field(default_factory=list, compare=False, repr=False)

    def to_dict(self) -> dict:
        """The result as ``univar evaluate stance --json`` writes it.

        Returns
        -------
        dict
            ``stance_auc``, ``stance_auc_cross_llm`` and ``probe_balanced_acc`` as numbers (null where
            undefined), each with a ``*_ci`` ``[low, high]``, plus the counts, labels and chance.
        """
        out: dict = {"encoder": self.encoder}
        for name in ("stance_auc", "stance_auc_cross_llm", "probe_balanced_acc"):
            value: Interval = getattr(self, name)
            out[name], out[f"{name}_ci"] = value.value, value.to_list()
        out.update({"ci_level": self.level, "n_questions": self.n_questions, "n_pairs": self.n_pairs,
                    "n_pairs_cross_llm": self.n_pairs_cross_llm, "n_labelled": self.n_labelled,
                    "labels": self.labels, "probe_chance": self.probe_chance, "n_probe_test": self.n_probe_test})
        return out
