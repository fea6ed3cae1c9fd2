"""How well an encoder's vectors measure what univar claims: who wrote an answer, and what position it takes.

- :class:`ValueIdentification` (:mod:`~univar.evaluate.identification`): which (LLM, language) wrote one QA, by
  k-NN (:mod:`~univar.evaluate.knn`) and a linear probe (:mod:`~univar.evaluate.probe`), on the random or the
  question split (:mod:`~univar.evaluate.splits`);
- :class:`StanceValidity` (:mod:`~univar.evaluate.stance`): whether answers that take the same position on a
  question sit nearer each other than answers that take opposite ones;
- the typed results both return (:mod:`~univar.evaluate.results`), and a paired comparison of two encoders on the
  same test QAs (:mod:`~univar.evaluate.compare`).

Tables for the terminal are the command line's (:mod:`univar.commands.tables`).
"""

from univar.evaluate.compare import paired_difference
from univar.evaluate.identification import ValueIdentification
from univar.evaluate.knn import knn_k, knn_predict
from univar.evaluate.probe import linear_probe, probe_scores
from univar.evaluate.results import Interval, KnnScores, ProbeScores, StanceResult, ValueIdResult
from univar.evaluate.splits import SPLITS, Rows, split_indices
from univar.evaluate.stance import StanceValidity

__all__ = ["SPLITS", "Interval", "KnnScores", "ProbeScores", "Rows", "StanceResult", "StanceValidity",
           "ValueIdResult", "ValueIdentification", "knn_k", "knn_predict", "linear_probe", "paired_difference",
           "probe_scores", "split_indices"]
