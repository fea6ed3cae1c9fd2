"""Which encoder a name means: the one module that knows both the baselines and trained UniVaR models.

It sits above :mod:`univar.encoders` (baselines, joined encoders, sentence-transformers folders) and
:mod:`univar.model` (UniVaR models, the shipped one included), so neither of those imports the other.
"""

from __future__ import annotations

from pathlib import Path

from univar.encoders import BASELINES, Encoder, baseline_encoder
from univar.model.io import CONFIG
from univar.model.univar import UniVaR, shipped_model_path


def available_encoders() -> list[str]:
    """The encoder names :func:`get_encoder` accepts here, for menus, ``--help`` and error messages.

    Returns
    -------
    list[str]
        ``"univar"`` (only when the shipped model is built into the package), then the named baselines
        (``minilm``, ``minilm-int8``, ``use-multilingual``, ``e5-small``, ``tfidf``). A baseline whose package is
        not installed is still listed; :func:`get_encoder` then says which package it needs.
    """
    return (["univar"] if shipped_model_path() is not None else []) + list(BASELINES)


def get_encoder(spec: str, device: str = "auto") -> Encoder:
    """The encoder a name or folder means (``--encoder SPEC``): the one place that resolves both kinds.

    Parameters
    ----------
    spec : str
        A name (``"univar"``, ``"minilm"``, ``"e5-small"``, ...; see :func:`available_encoders`), names joined
        by ``+`` (``"minilm+use-multilingual"``: the parts' vectors side by side), a univar model directory,
        or a sentence-transformers folder.
    device : str
        Where torch runs the encoder: ``auto`` (the GPU when torch sees one), ``cpu``, ``cuda`` or ``cuda:N``, as
        in ``SentenceTransformer(path, device=)``. Baselines with CPU engines (int8 ONNX, USE, E5, TF-IDF) ignore it.

    Returns
    -------
    Encoder
        An :class:`~univar.encoders.Encoder`; a :class:`~univar.model.univar.UniVaR` for ``"univar"`` and for
        univar model directories.

    Raises
    ------
    UnivarError
        When ``spec`` names no known encoder or folder, ``device`` is not a device (a ``SettingError``), a
        baseline's package is not installed, or the shipped model or a model directory is missing or damaged.
    """
    if (Path(spec) / CONFIG).is_file():  # a model directory, even one named like the shipped model
        return UniVaR.load(spec, device=device)
    if spec == "univar":
        return UniVaR.load("univar", device=device)
    return baseline_encoder(spec, device)
