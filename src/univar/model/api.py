"""The Python API of a trained UniVaR model, and its adapter to the ``Encoder`` interface.

>>> from univar.model import UniVaR
>>> model = UniVaR.load("univar")                 # the shipped model, or a directory
>>> vectors = model.encode_qas(table)             # one value vector per QA
>>> llms = model.embed_llm(table)                 # one value vector per (LLM, language), with spread
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Union

import numpy as np
import pandas as pd
import torch

from univar.encoders import Encoder, embed, get_encoder
from univar.errors import UnivarError
from univar.model import io
from univar.model.heads import SetViewEncoder
from univar.qa import CLASS_SEP, class_labels, qa_texts, question_text_of

QAs = Union[pd.DataFrame, Sequence[str], Sequence[tuple[str, str]]]


def as_texts(qas: QAs) -> list[str]:
    """A QA table, ``(question, answer)`` pairs, or ready ``Q: .. A: ..`` texts -> texts."""
    if isinstance(qas, pd.DataFrame):
        return qa_texts(qas)
    out = []
    for item in qas:
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, (tuple, list)) and len(item) == 2:
            out.append(f"Q: {str(item[0]).strip()} A: {str(item[1]).strip()}")
        else:
            raise UnivarError(f"expected a QA text or a (question, answer) pair, got {type(item).__name__}")
    return out


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
        _BASES[spec] = get_encoder(spec)
    return _BASES[spec]


class UniVaR:
    """A trained value encoder (set or concat mode) loaded from a model directory."""

    def __init__(self, path: Path, config: dict, digest: str):
        self.path, self.config, self.digest = path, config, digest
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
    def load(cls, path: str | Path = "univar") -> "UniVaR":
        """Load a model directory; ``"univar"`` is the shipped default model. Refuses pickles and damage."""
        if str(path) == "univar" and not Path(path).is_dir():
            shipped = shipped_model_path()
            if shipped is None:
                raise UnivarError("the shipped univar model is missing; rebuild it with `make model`")
            path = shipped
        path = Path(path)
        config = io.read_config(path)
        return cls(path, config, io.weights_digest(path, config))

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

    def encode_qas(self, qas: QAs, progress: bool = False) -> np.ndarray:
        """One L2-normalised value vector per QA (``[n, dim]`` float32)."""
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
            model, _, lang = cls.partition(CLASS_SEP)
            rows.append({"class": cls, "model": model, "lang": lang, "n_qas": int(len(idx)),
                         "vector": vec.numpy().astype(np.float32), "spread": spread, "spread_p95": p95})
        return pd.DataFrame(rows)


def _pool(items: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
    weights = torch.softmax(scores, dim=0)
    return torch.nn.functional.normalize((weights[:, None] * items).sum(0), dim=0)


class UniVaREncoder(Encoder):
    """A UniVaR model behind the ``Encoder`` interface (``--encoder univar`` or ``--encoder DIR``)."""

    batch_size = 512

    def __init__(self, model: UniVaR, name: str | None = None):
        self.model = model
        self.name = name or str(model.path)
        self.dim = model.dim
        self.id = model.id

    def encode_batch(self, texts: list[str]) -> np.ndarray:
        return self.model.encode_texts(texts)


def load_encoder(path: str | Path, name: str | None = None) -> Encoder:
    """The ``Encoder`` for a univar model directory; its ``id`` carries a hash of the weights."""
    return UniVaREncoder(UniVaR.load(Path(path)), name=name)


def shipped_model_path() -> Path | None:
    """The default model inside the package (``univar/model/shipped``), or None if it was not built."""
    folder = Path(__file__).with_name("shipped")
    return folder if (folder / io.CONFIG).is_file() and (folder / io.WEIGHTS).is_file() else None
