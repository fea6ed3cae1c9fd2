"""The Python API of a trained UniVaR model, which is an ``Encoder`` like the baselines.

>>> from univar.model import UniVaR
>>> model = UniVaR.load("univar")                 # the shipped model, or a directory
>>> vectors = model.encode(table)                 # one value vector per QA (cached, like any encoder)
>>> llms = model.embed_llm(table)                 # one value vector per (LLM, language), with spread
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Union

import numpy as np
import pandas as pd
import torch

from univar.encoders import Encoder, baseline_encoder, embed
from univar.errors import UnivarError
from univar.model import io
from univar.model.heads import SetViewEncoder
from univar.qa import as_texts, class_labels, question_text_of, split_class

QAs = Union[pd.DataFrame, Sequence[str], Sequence[tuple[str, str]]]


_BASES: dict[str, Encoder] = {}


def base_encoder(spec: str) -> Encoder:
    """The frozen per-QA encoder under a set-mode head (a named baseline or a sentence-transformers folder).

    Named bases are loaded once per process: they never change, and loading a transformer costs seconds.
    """
    if spec in ("univar", "tfidf"):
        raise UnivarError(f"base encoder {spec!r} cannot be used (tfidf is refitted per corpus; univar is circular)")
    if Path(spec).is_dir() and (Path(spec) / io.CONFIG).exists():
        raise UnivarError("a univar model cannot be the base of another univar model")
    if spec not in _BASES or Path(spec).is_dir():
        _BASES[spec] = baseline_encoder(spec)
    return _BASES[spec]


class UniVaR(Encoder):
    """A trained value encoder (set or concat mode) loaded from a model directory; an ``Encoder`` like any other.

    >>> model = UniVaR.load("univar")          # the shipped model, or a model directory
    >>> vectors = model.encode(table)          # a QA table, (question, answer) pairs or QA texts
    >>> model.save("models/copy")
    """

    batch_size = 512

    def __init__(self, path: Path, config: dict, digest: str, name: str | None = None):
        self.path, self.config, self.digest = path, config, digest
        self.name = name or str(path)
        self.mode: str = config["mode"]
        self.dim: int = int(config["dim"])
        if self.mode == "set":
            self.base = base_encoder(config["base"])
            if config.get("base_id") and self.base.id != config["base_id"]:
                raise UnivarError(f"{path}: trained on base encoder {config['base_id']}, but {config['base']} "
                                  f"is now {self.base.id}; retrain the model")
            self.head = SetViewEncoder(self.base.dim, **config["head"])
            tensors = io.load_tensors(path / io.WEIGHTS)
            try:
                self.head.load_state_dict(tensors, strict=True)
            except RuntimeError as exc:
                raise UnivarError(f"{path}: weights do not match univar.json ({str(exc).splitlines()[0]})") from None
            self.head.eval()
        else:
            from univar.encoders import SentenceTransformerEncoder

            self.transformer = SentenceTransformerEncoder(path / io.TRANSFORMER, name="univar-concat")
            self.transformer.model.max_seq_length = int(config.get("max_length", 512))

    @classmethod
    def load(cls, path: str | Path = "univar", name: str | None = None) -> "UniVaR":
        """Load a model directory; ``"univar"`` is the shipped default model. Refuses pickles and damage.

        Parameters: ``path`` a model directory or ``"univar"``; ``name`` what results call it (default:
        ``"univar"`` for the shipped model, else the path). Returns: the model.
        """
        if str(path) == "univar" and not Path(path).is_dir():
            shipped = shipped_model_path()
            if shipped is None:
                raise UnivarError("the shipped univar model is missing; rebuild it with `make model`")
            path, name = shipped, name or "univar"
        path = Path(path)
        config = io.read_config(path)
        return cls(path, config, io.weights_digest(path, config), name=name)

    def save(self, path: str | Path) -> Path:
        """Write this model to the directory ``path`` (created; an existing model there is replaced).

        The files are copied as they are (config, weights, model card, the concat-mode transformer), so the
        copy encodes exactly as this model and shares its embedding cache (same ``id``). Returns: the path.
        """
        import shutil

        path = Path(path)
        if path.resolve() == self.path.resolve():
            return path
        if path.exists() and any(path.iterdir()) and not (path / io.CONFIG).is_file():
            raise UnivarError(f"{path} exists and is not a univar model directory; choose an empty folder")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp-save")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(self.path, tmp, ignore=shutil.ignore_patterns(io.CHECKPOINT, "*.tmp"))
        shutil.rmtree(path, ignore_errors=True)
        tmp.replace(path)
        return path

    @property
    def id(self) -> str:
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
        """One value vector per QA text (a view of one QA)."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if self.mode == "set":
            return self.head.encode_items(self._base_vectors(texts, progress)).numpy().astype(np.float32)
        return self.transformer.encode_batch(texts)

    def encode_batch(self, texts: list[str]) -> np.ndarray:
        return self.encode_texts(texts)

    def encode_qas(self, qas: QAs, progress: bool = False) -> np.ndarray:
        """One L2-normalised value vector per QA (``[n, dim]`` float32), computed without the cache."""
        return self.encode_texts(as_texts(qas), progress)

    @torch.no_grad()
    def encode_views(self, qa_sets: Sequence[QAs], progress: bool = False) -> np.ndarray:
        """One vector per view (a set of QAs of one LLM): pooled QA vectors (set) or joined texts (concat)."""
        views = [as_texts(v) for v in qa_sets]
        if any(len(v) == 0 for v in views):
            raise UnivarError("every view needs at least one QA")
        if self.mode == "concat":
            return self.transformer.encode_batch(["\n".join(v) for v in views])
        flat = [t for v in views for t in v]
        x = self._base_vectors(flat, progress)
        width = max(len(v) for v in views)
        batch = torch.zeros(len(views), width, x.shape[1])
        mask = torch.zeros(len(views), width, dtype=torch.bool)
        at = 0
        for i, v in enumerate(views):
            batch[i, : len(v)], mask[i, : len(v)] = x[at : at + len(v)], True
            at += len(v)
        return self.head(batch, mask).numpy().astype(np.float32)

    @torch.no_grad()
    def embed_llm(self, qa_table: pd.DataFrame, n_bootstrap: int = 200, seed: int = 0,
                  progress: bool = False) -> pd.DataFrame:
        """One value vector per (LLM, language) class, with a bootstrap spread.

        The class vector pools all of its QA vectors (the view of the whole class). The spread resamples
        the class's QAs with replacement ``n_bootstrap`` times: ``spread`` is the mean cosine distance of
        the resampled vectors to the class vector (how much the vector would move with other answers),
        ``spread_p95`` its 95th percentile; compare it with distances between LLMs before calling them
        different.
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


def UniVaREncoder(model: UniVaR, name: str | None = None) -> UniVaR:  # noqa: N802 - the old class name
    """Deprecated: a :class:`UniVaR` model is an ``Encoder`` itself; this returns the model (renamed)."""
    warnings.warn("UniVaREncoder is deprecated: a UniVaR model is an Encoder", DeprecationWarning, stacklevel=2)
    if name:
        model.name = name
    return model


def load_encoder(path: str | Path, name: str | None = None) -> Encoder:
    """The model in a univar model directory, as an ``Encoder``; its ``id`` carries a hash of the weights."""
    return UniVaR.load(Path(path), name=name)


def train_model(data, out: str | Path, *, resume: bool = False, progress: bool = True, **settings) -> UniVaR:
    """Train a value encoder and return it, loaded (``univar.train``).

    Parameters: ``data`` a QA table, or one or more sources (``"bundled:valuebench"``, file paths);
    ``out`` the model directory to write; ``resume`` continue a killed run in ``out``; ``progress`` bars
    and epoch lines; ``settings`` any :class:`~univar.model.train.TrainConfig` field (``mode="set"``,
    ``lam=5``, ``base="minilm+use-multilingual"``, ``epochs``, ``topic_alpha``, ``keep_base``, ...).
    Returns: the trained :class:`UniVaR`.
    """
    from dataclasses import fields

    from univar.model.train import TrainConfig, train
    from univar.qa import read_many

    known = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise UnivarError(f"unknown training setting(s) {', '.join(unknown)} (settings: {', '.join(sorted(known))})")
    if isinstance(data, pd.DataFrame):
        table = data
    else:
        table = read_many([data] if isinstance(data, (str, Path)) else list(data))
    train(table, TrainConfig(**settings), out, resume=resume, progress=progress)
    return UniVaR.load(out)


def shipped_model_path() -> Path | None:
    """The default model inside the package (``univar/model/shipped``), or None if it was not built."""
    folder = Path(__file__).with_name("shipped")
    return folder if (folder / io.CONFIG).is_file() and (folder / io.WEIGHTS).is_file() else None
