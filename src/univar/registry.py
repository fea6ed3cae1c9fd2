"""Which encoder a name means: the one module that knows both the baselines and trained UniVaR models.

It sits above :mod:`univar.encoders` (baselines, joined encoders, sentence-transformers folders) and
:mod:`univar.model` (UniVaR models, the shipped one included), so neither of those imports the other.
"""

from __future__ import annotations

from pathlib import Path

from univar.encoders import BASELINES, Encoder, baseline_encoder
from univar.model.api import UniVaR, shipped_model_path
from univar.model.io import CONFIG


def available_encoders() -> list[str]:
    """Named encoders that can load here: ``univar`` (once the shipped model is present) and the baselines."""
    return (["univar"] if shipped_model_path() is not None else []) + list(BASELINES)


def get_encoder(spec: str) -> Encoder:
    """The encoder ``--encoder SPEC`` means.

    Parameters: ``spec`` a name (``"univar"``, ``"minilm"``, ``"e5-small"``, ``"minilm+use-multilingual"``,
    ...), a univar model directory, or a sentence-transformers folder.
    Returns: an :class:`~univar.encoders.Encoder` (a :class:`~univar.model.api.UniVaR` for univar models).
    """
    if spec == "univar" and not Path(spec).is_dir():
        return UniVaR.load("univar")
    if Path(spec).is_dir() and (Path(spec) / CONFIG).exists():
        return UniVaR.load(spec)
    return baseline_encoder(spec)
