"""The Python API of a trained UniVaR model, which is an ``Encoder`` like the baselines.

>>> from univar.model import UniVaR
>>> model = UniVaR.load("univar")                 # the shipped model, or a directory
>>> vectors = model.encode(table)                 # one value vector per QA (cached, like any encoder)
>>> llms = model.embed_llm(table)                 # one value vector per (LLM, language), with spread
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Union

import numpy as np
import pandas as pd
import torch

from univar.device import check
from univar.encoders import Encoder, SentenceTransformerEncoder, baseline_encoder, embed
from univar.errors import UnivarError
from univar.files import atomic_folder
from univar.model import io, stance
from univar.model.heads import SetViewEncoder
from univar.qa import as_texts, class_labels, question_text_of, split_class

QAs = Union[pd.DataFrame, Sequence[str], Sequence[tuple[str, str]]]


_BASES: dict[tuple[str, str], Encoder] = {}


def base_encoder(spec: str, device: str = "auto") -> Encoder:
    """The frozen per-QA encoder under a set-mode head (a named baseline or a sentence-transformers folder).

    Named bases are loaded once per process and device: they never change, and loading a transformer costs
    seconds.
    """
    if spec in ("univar", "tfidf"):
        raise UnivarError(f"base encoder {spec!r} cannot be used (tfidf is refitted per corpus; univar is circular)")
    if Path(spec).is_dir() and (Path(spec) / io.CONFIG).exists():
        raise UnivarError("a univar model cannot be the base of another univar model")
    key = (spec, check(device))
    if key not in _BASES or Path(spec).is_dir():
        _BASES[key] = baseline_encoder(spec, device)
    return _BASES[key]


class UniVaR(Encoder):
    """A trained value encoder (set or concat mode) loaded from a model directory; an ``Encoder`` like any other.

    It maps QAs to vectors in which answers of one LLM lie together whatever the question, so value
    identification, maps and comparisons of LLMs take it wherever they take a baseline. Make one with
    :meth:`load` (or :func:`univar.train`) rather than the constructor.

    Parameters
    ----------
    path : pathlib.Path
        The model directory.
    config : dict
        Its validated ``univar.json`` (``mode``, ``dim``, ``base``, ``head``, ...).
    digest : str
        Hash of its weights; part of :attr:`id`, so the embedding cache follows the weights.
    name : str, optional
        What results call the model; default: the path.
    device : str
        Where the transformers run (the base encoder, the stance part, concat mode's transformer): ``auto``,
        ``cpu``, ``cuda`` or ``cuda:N``. The set-mode head is a few matrix products and runs on the CPU.

    Raises
    ------
    UnivarError
        When the base encoder now differs from the one the model was trained on, or the weights do not
        match ``univar.json``.

    Examples
    --------
    >>> model = UniVaR.load("univar")          # the shipped model, or a model directory
    >>> vectors = model.encode(table)          # a QA table, (question, answer) pairs or QA texts
    >>> model.save("models/copy")
    """

    batch_size = 512

    def __init__(self, path: Path, config: dict, digest: str, name: str | None = None, device: str = "auto") -> None:
        self.path, self.config, self.digest = path, config, digest
        self.device = check(device)
        self.name = name or str(path)
        self.mode: str = config["mode"]
        self.dim: int = int(config["dim"])
        if self.mode == "set":
            self.base = base_encoder(config["base"], self.device)
            if config.get("base_id") and self.base.id != config["base_id"]:
                raise UnivarError(f"{path}: trained on base encoder {config['base_id']}, but {config['base']} "
                                  f"is now {self.base.id}; retrain the model")
            self.head = SetViewEncoder(self.base.dim, **config["head"])
            tensors, part = stance.split_tensors(io.load_tensors(path / io.WEIGHTS))
            try:
                self.head.load_state_dict(tensors, strict=True)
            except RuntimeError as exc:
                raise UnivarError(f"{path}: weights do not match univar.json ({str(exc).splitlines()[0]})") from None
            self.head.eval()
            self.stance: stance.StanceEncoder | None = None
            if "stance" in config:  # a stance part: the tuned layers over its pip-installed base
                spec = config["stance"]
                if not part:
                    raise UnivarError(f"{path}: univar.json names a stance part but the weights hold none")
                self.stance = stance.StanceEncoder(spec["base"], part, int(spec["max_length"]), self.device)
                if spec.get("base_id") and self.stance.transformer.id != spec["base_id"]:
                    raise UnivarError(f"{path}: the stance part was tuned from {spec['base_id']}, but "
                                      f"{spec['base']} is now {self.stance.transformer.id}; retrain the model")
        else:
            self.transformer = SentenceTransformerEncoder(path / io.TRANSFORMER, name="univar-concat",
                                                          device=self.device)
            self.transformer.model.max_seq_length = int(config.get("max_length", 512))

    @classmethod
    def load(cls, path: str | Path = "univar", name: str | None = None, device: str = "auto") -> "UniVaR":
        """Load a model directory, checked before use: pickles are refused and damaged files named.

        Parameters
        ----------
        path : str or pathlib.Path
            A model directory, or ``"univar"`` for the model shipped with the package (unless ``./univar``
            is itself a model directory).
        name : str, optional
            What results call the model; default: ``"univar"`` for the shipped model, else the path.
        device : str
            Where its transformers run: ``auto`` (the GPU when torch sees one), ``cpu``, ``cuda`` or ``cuda:N``,
            as in ``SentenceTransformer(path, device=)``.

        Returns
        -------
        UniVaR
            The model, ready to encode.

        Raises
        ------
        UnivarError
            When the shipped model is not built, or the directory is missing, holds a pickle, or has a missing
            or damaged ``univar.json`` or weights file.
        """
        if str(path) == "univar" and not (Path(path) / io.CONFIG).is_file():  # a folder ./univar of other files
            shipped = shipped_model_path()
            if shipped is None:
                raise UnivarError("the shipped univar model is missing; rebuild it with `make model`")
            path, name = shipped, name or "univar"
        path = Path(path)
        config = io.read_config(path)
        return cls(path, config, io.weights_digest(path, config), name=name, device=device)

    def save(self, path: str | Path, overwrite: bool = False) -> Path:
        """Copy this model to a directory of its own, to keep, share or ship it apart from where it was trained.

        The files are copied as they are (config, weights, model card, the concat-mode transformer), so the
        copy encodes exactly as this model and shares its embedding cache (same ``id``). The copy is built
        beside ``path`` and swapped in only when complete, so a kill leaves the old directory or the new one.

        Parameters
        ----------
        path : str or pathlib.Path
            The directory to write: created if missing. The model's own directory is left as it is.
        overwrite : bool
            Replace a univar model (or training run) already in ``path``; without it such a directory is
            refused, so that a model is never lost by accident.

        Returns
        -------
        pathlib.Path
            ``path``, as a ``Path``; :meth:`load` it to get the copy.

        Raises
        ------
        UnivarError
            When ``path`` holds a model and ``overwrite`` is False, or holds files but no univar model (nothing
            there is overwritten).
        """
        path = Path(path)
        if path.resolve() == self.path.resolve():
            return path
        held = io.contents(path)
        if held == "other":
            raise UnivarError(f"{path} exists and is not a univar model directory; choose an empty folder")
        if held is not None and not overwrite:
            raise UnivarError(f"{path} already holds a univar model; pass overwrite=True to replace it, or choose "
                              "another directory")
        with atomic_folder(path, tmp_name=path.name + ".tmp-save") as tmp:
            shutil.copytree(self.path, tmp, ignore=shutil.ignore_patterns(io.CHECKPOINT, "*.tmp"))
        return path

    @property
    def id(self) -> str:
        """``univar:{mode}:{base}:{weights digest}``: the embedding cache's key, unique to these weights."""
        base = self.config.get("base_id", self.config["base"])
        return f"univar:{self.mode}:{base}:{self.digest}"

    # -- encoding -------------------------------------------------------------------------------------
    def _base_vectors(self, texts: list[str], progress: bool) -> torch.Tensor:
        """What the head reads for each QA text: its base vector, minus the topic part when the model has one."""
        x = torch.from_numpy(embed(texts, self.base, progress=progress))
        if self.head.topic is None:
            return x
        questions = torch.from_numpy(embed([question_text_of(t) for t in texts], self.base, progress=progress))
        return self.head.inputs(x, questions)

    @torch.no_grad()
    def encode_texts(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        """One value vector per QA text, each text a view of one QA; :meth:`encode_qas` forms the texts.

        Parameters
        ----------
        texts : Sequence[str]
            QA texts, ``"Q: {question} A: {answer}"``.
        progress : bool
            Show a progress bar while the base encoder embeds (set mode).

        Returns
        -------
        numpy.ndarray
            float32, shape ``[len(texts), dim]``.
        """
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if self.mode == "set":
            items = self.head.encode_items(self._base_vectors(texts, progress))
            if self.stance is not None:  # [w * stance, identity], normalised: the head's part stays last
                part = torch.from_numpy(embed(texts, self.stance, progress=progress))
                items = torch.nn.functional.normalize(
                    torch.cat([float(self.config["stance"]["weight"]) * part, items], dim=-1), dim=-1)
            return items.numpy().astype(np.float32)
        return self.transformer.encode_batch(texts)

    def encode_batch(self, texts: list[str]) -> np.ndarray:
        return self.encode_texts(texts)

    def encode_qas(self, qas: QAs, progress: bool = False) -> np.ndarray:
        """One L2-normalised value vector per QA, computed now: the model's own vectors skip the cache.

        :meth:`~univar.encoders.Encoder.encode` gives the same vectors through the embedding cache; this is
        for checking the cache, or for QAs encoded once. (The base encoder's vectors are cached either way.)

        Parameters
        ----------
        qas : pandas.DataFrame, Sequence[str] or Sequence[tuple[str, str]]
            A QA table, ``(question, answer)`` pairs, or ready ``"Q: {question} A: {answer}"`` texts.
        progress : bool
            Show a progress bar while the base encoder embeds (set mode).

        Returns
        -------
        numpy.ndarray
            float32, shape ``[len(qas), dim]``.

        Raises
        ------
        UnivarError
            When ``qas`` is a single string, or holds something that is neither a text nor a pair.
        """
        return self.encode_texts(as_texts(qas), progress)

    @torch.no_grad()
    def encode_views(self, qa_sets: Sequence[QAs], progress: bool = False) -> np.ndarray:
        """One vector per view, a set of QAs of one LLM: the unit the model was trained to embed.

        Set mode pools the QAs' vectors with the model's head (mean or attention); concat mode embeds the
        QA texts joined by newlines.

        Parameters
        ----------
        qa_sets : Sequence of QA collections
            Each view as a QA table, ``(question, answer)`` pairs, or QA texts.
        progress : bool
            Show a progress bar while the base encoder embeds (set mode).

        Returns
        -------
        numpy.ndarray
            float32, shape ``[len(qa_sets), dim]``.

        Raises
        ------
        UnivarError
            When a view holds no QA.
        """
        views = [as_texts(v) for v in qa_sets]
        if any(len(v) == 0 for v in views):
            raise UnivarError("every view needs at least one QA")
        if self.mode == "concat":
            return self.transformer.encode_batch(["\n".join(v) for v in views])
        flat = [t for v in views for t in v]
        x = torch.from_numpy(self.encode_texts(flat, progress))  # each QA's vector, as encode_qas gives it
        width = max(len(v) for v in views)
        batch = torch.zeros(len(views), width, x.shape[1])
        mask = torch.zeros(len(views), width, dtype=torch.bool)
        at = 0
        for i, v in enumerate(views):
            batch[i, : len(v)], mask[i, : len(v)] = x[at : at + len(v)], True
            at += len(v)
        return self.head.pool(batch, mask).numpy().astype(np.float32)

    @torch.no_grad()
    def embed_llm(self, qa_table: pd.DataFrame, n_bootstrap: int = 200, seed: int = 0,
                  progress: bool = False) -> pd.DataFrame:
        """One value vector per (LLM, language) class, with a bootstrap spread.

        The class vector pools all of its QA vectors (the view of the whole class). The spread resamples
        the class's QAs with replacement ``n_bootstrap`` times: ``spread`` is the mean cosine distance of
        the resampled vectors to the class vector (how much the vector would move with other answers),
        ``spread_p95`` its 95th percentile; compare it with distances between LLMs before calling them
        different.

        Parameters
        ----------
        qa_table : pandas.DataFrame
            A QA table (:func:`univar.read_qa`); its ``model`` and ``lang`` columns form the classes.
        n_bootstrap : int
            Resamples per class for the spread; 0 skips it (the spread is then NaN, as for a class of one QA).
        seed : int
            Seed of the resampling.
        progress : bool
            Show a progress bar while the QAs are encoded.

        Returns
        -------
        pandas.DataFrame
            One row per class, sorted by class: ``class``, ``model``, ``lang``, ``n_qas``, ``vector`` (an
            L2-normalised float32 array), ``spread`` and ``spread_p95``.
        """
        labels = class_labels(qa_table).to_numpy()
        items = torch.from_numpy(self.encode_qas(qa_table, progress))
        if self.mode == "set" and self.config["head"].get("pooling") == "attention":
            scores = self.head.attention_scores(items)
        else:
            scores = torch.zeros(len(items))
        rng = np.random.default_rng(seed)
        rows = []
        for cls in sorted(set(labels)):
            idx = np.flatnonzero(labels == cls)
            vec = _pool(items[idx], scores[idx])
            if n_bootstrap > 0 and len(idx) > 1:
                draws = rng.integers(0, len(idx), size=(n_bootstrap, len(idx)))
                boot = torch.stack([_pool(items[idx[d]], scores[idx[d]]) for d in draws])
                dist = (1 - boot @ vec).numpy()
                spread, p95 = float(dist.mean()), float(np.quantile(dist, 0.95))
            else:
                spread = p95 = float("nan")
            model, lang = split_class(cls)
            rows.append({"class": cls, "model": model, "lang": lang, "n_qas": int(len(idx)),
                         "vector": vec.numpy().astype(np.float32), "spread": spread, "spread_p95": p95})
        return pd.DataFrame(rows)


def _pool(items: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
    weights = torch.softmax(scores, dim=0)
    return torch.nn.functional.normalize((weights[:, None] * items).sum(0), dim=0)


def shipped_model_path() -> Path | None:
    """The default model inside the package (``univar/model/shipped``), or None if it was not built."""
    folder = Path(__file__).with_name("shipped")
    return folder if (folder / io.CONFIG).is_file() and (folder / io.WEIGHTS).is_file() else None
