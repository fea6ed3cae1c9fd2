"""univar: measure the human values that LLMs express, as high-dimensional embeddings (UniVaR).

>>> import univar
>>> table = univar.read_qa("bundled:valuebench")
>>> model = univar.UniVaR.load("univar", device="cpu")   # the shipped model or a directory; device="cuda" too
>>> vectors = model.encode(table)                         # a QA table, (question, answer) pairs, or texts
>>> result = univar.ValueIdentification(split="question", k=50).evaluate(model, table)
>>> result.knn.acc, result.linear.acc_at_1, result.to_dict()
>>> trained = univar.train(table, mode="set", lam=5, out="models/mine")   # returns a UniVaR

The names below load on first use: ``import univar`` (and so every ``univar`` command, ``--help`` too)
stays free of torch and transformers, which take seconds to import.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

# public name -> (module, attribute)
_EXPORTS = {
    "read_qa": ("univar.qa", "read_qa"),
    "read_many": ("univar.qa", "read_many"),
    "write_qa": ("univar.qa", "write_qa"),
    "Encoder": ("univar.encoders.base", "Encoder"),
    "get_encoder": ("univar.registry", "get_encoder"),
    "available_encoders": ("univar.registry", "available_encoders"),
    "UniVaR": ("univar.model.univar", "UniVaR"),
    "train": ("univar.model.train", "train"),
    "TrainConfig": ("univar.model.config", "TrainConfig"),
    "ValueIdentification": ("univar.evaluate.identification", "ValueIdentification"),
    "ValueIdResult": ("univar.evaluate.results", "ValueIdResult"),
    "KnnScores": ("univar.evaluate.results", "KnnScores"),
    "ProbeScores": ("univar.evaluate.results", "ProbeScores"),
    "StanceValidity": ("univar.evaluate.stance", "StanceValidity"),
    "StanceResult": ("univar.evaluate.results", "StanceResult"),
    "UnivarError": ("univar.errors", "UnivarError"),
}
__all__ = ["Encoder", "KnnScores", "ProbeScores", "StanceResult", "StanceValidity", "TrainConfig", "UniVaR",
           "UnivarError", "ValueIdResult", "ValueIdentification", "__version__", "available_encoders", "get_encoder",
           "read_many", "read_qa", "train", "write_qa"]
assert sorted(__all__) == sorted([*_EXPORTS, "__version__"])

if TYPE_CHECKING:  # what type checkers and IDEs see ("X as X": a re-export, not an unused import)
    from univar.encoders.base import Encoder as Encoder
    from univar.errors import UnivarError as UnivarError
    from univar.evaluate.identification import ValueIdentification as ValueIdentification
    from univar.evaluate.results import KnnScores as KnnScores
    from univar.evaluate.results import ProbeScores as ProbeScores
    from univar.evaluate.results import StanceResult as StanceResult
    from univar.evaluate.results import ValueIdResult as ValueIdResult
    from univar.evaluate.stance import StanceValidity as StanceValidity
    from univar.model.config import TrainConfig as TrainConfig
    from univar.model.train import train as train
    from univar.model.univar import UniVaR as UniVaR
    from univar.qa import read_many as read_many
    from univar.qa import read_qa as read_qa
    from univar.qa import write_qa as write_qa
    from univar.registry import available_encoders as available_encoders
    from univar.registry import get_encoder as get_encoder


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'univar' has no attribute {name!r}")
    module, attribute = _EXPORTS[name]
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value  # once loaded, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
