"""The stance part of a univar model: a transformer fine-tuned so that answers taking the same position sit together.

Why a part of its own: frozen sentence vectors of ``Q: .. A: ..`` barely carry the position an answer takes (a
head over them, trained on position labels, moved the held-out stance AUC by 0.02), and the class InfoNCE that
trains the head rewards how an LLM writes. Here the transformer that reads the QA is itself fine-tuned, its top
``layers`` only, with :class:`~univar.model.loss.StanceContrastLoss` on QAs with a ``stance`` label: within a
question, an answer by another LLM with the same label is a positive and one with another label a negative, so
neither the topic nor the writer's style can separate them; only the position can. Each QA's vector is then
``[identity part, weight * stance part]`` (normalised): the identity part is the set-mode vector as before.

The tuned layers are stored in the model's ``model.safetensors`` under ``stance.`` (a few MB, half precision); the
rest of the transformer is the pip-installed base (``all-MiniLM-L6-v2``), checked by its id when loaded.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from univar.cache import cache_dir
from univar.encoders import Encoder, SentenceTransformerEncoder, baseline_encoder
from univar.errors import UnivarError
from univar.model import io
from univar.model.loss import StanceContrastLoss
from univar.progress import bar
from univar.qa import stance_labels

log = logging.getLogger("univar")
PREFIX = "stance."  # the stance part's tensors in model.safetensors
CHECKPOINT_FILE = "stance.safetensors"  # the tuned part, kept in the checkpoint folder so a resumed run reuses it
MAX_ANSWERS = 16  # answers of one question in one step (a seeded sample): bounds a step's batch


def _transformer(base: str, device: str = "auto") -> SentenceTransformerEncoder:
    """A fresh copy of the base sentence-transformer (its weights are changed by tuning or by the stored layers):
    ``baseline_encoder`` builds a new encoder, whose model loads on first use, on every call."""
    encoder = baseline_encoder(base, device)
    if not isinstance(encoder, SentenceTransformerEncoder):
        raise UnivarError(f"the stance part fine-tunes a sentence-transformers model; {base!r} is not one")
    return encoder


def _top_layers(model, layers: int) -> list[str]:
    """Parameter names of the top ``layers`` transformer layers (0: every parameter)."""
    names = [n for n, _ in model.named_parameters()]
    if layers <= 0:
        return names
    blocks = sorted({int(n.split(".layer.")[1].split(".")[0]) for n in names if ".layer." in n})
    keep = {f".layer.{i}." for i in blocks[-layers:]}
    return [n for n in names if any(k in n for k in keep)]


class StanceEncoder(Encoder):
    """The tuned transformer as an encoder: unit vectors per QA text, cached like any other encoder.

    Parameters
    ----------
    base : str
        The named base it was tuned from (``"minilm"``) or a sentence-transformers folder.
    tensors : dict[str, torch.Tensor]
        The tuned parameters, named as in the base's ``state_dict``.
    max_length : int
        Word pieces read per QA.
    device : str
        Where the transformer runs (``auto``, ``cpu``, ``cuda``, ``cuda:N``).
    """

    def __init__(self, base: str, tensors: dict[str, torch.Tensor], max_length: int, device: str = "auto") -> None:
        self.transformer = _transformer(base, device)
        model = self.transformer.model
        missing = sorted(set(tensors) - set(model.state_dict()))
        if missing:
            raise UnivarError(f"stance part: {missing[0]} is not a parameter of {base}")
        model.load_state_dict({k: v.float() for k, v in tensors.items()}, strict=False)
        model.max_seq_length = max_length
        model.eval()
        digest = hashlib.sha256()
        for name in sorted(tensors):
            digest.update(name.encode())
            digest.update(tensors[name].to(torch.float16).numpy().tobytes())
        self.name, self.dim = "univar-stance", self.transformer.dim
        self.id = f"stance:{self.transformer.id}:{digest.hexdigest()[:16]}:len{max_length}"

    def encode_batch(self, texts: list[str]) -> np.ndarray:
        return self.transformer.encode_batch(texts)

    def count_truncated(self, texts: Sequence[str]) -> tuple[int, int] | None:
        return self.transformer.count_truncated(texts)


def question_groups(table: pd.DataFrame, rows: np.ndarray) -> list[np.ndarray]:
    """The labelled training rows of each question that has two labels or more (only those can be contrasted)."""
    labels = stance_labels(table).to_numpy(dtype=object)
    rows = np.asarray(rows)
    rows = rows[~pd.isna(labels[rows])]
    source = table["dataset"].astype(str).to_numpy() if "dataset" in table.columns else np.full(len(table), "")
    key = pd.Series(source[rows]) + "|" + table["question"].iloc[rows].astype(str).str.strip().str.lower().to_numpy()
    groups = [rows[np.asarray(idx)] for idx in key.groupby(key, sort=True).indices.values()]
    return [g for g in groups if len(set(labels[g])) >= 2]


def tune(cfg, table: pd.DataFrame, rows: np.ndarray, texts: Sequence[str], progress: bool = True,
         report=None) -> dict[str, torch.Tensor]:
    """Fine-tune the stance part on the labelled QAs among ``rows``; the tuned parameters, half precision.

    One epoch is one pass over the questions with two labels or more, ``cfg.stance_questions`` questions a step
    (at most ``MAX_ANSWERS`` answers each). Seeded by ``cfg.seed``: the same data and settings give the same
    weights on the same machine.
    """
    groups = question_groups(table, rows)
    if not groups:
        raise UnivarError("--stance-weight needs training QAs with a 'stance' label: no question outside the "
                          "held-out folds has answers with two different labels (name the column with --stance)")
    labels = stance_labels(table).to_numpy(dtype=object).astype(str)
    models = table["model"].astype(str).to_numpy()
    question = np.empty(len(table), dtype=np.int64)
    for i, g in enumerate(groups):
        question[g] = i
    transformer = _transformer(cfg.stance_base, cfg.device)
    model = transformer.model
    model.max_seq_length = cfg.stance_max_length
    trainable = set(_top_layers(model, cfg.stance_layers))
    for name, param in model.named_parameters():
        param.requires_grad = name in trainable
    params = [p for n, p in model.named_parameters() if n in trainable]
    optimizer = torch.optim.AdamW(params, lr=cfg.stance_lr, weight_decay=cfg.weight_decay)
    loss_fn = StanceContrastLoss(cfg.stance_tau)
    rng = np.random.default_rng(cfg.seed + 11)
    torch.manual_seed(cfg.seed + 11)
    per_step = min(cfg.stance_questions, len(groups))
    steps = max(1, int(round(cfg.stance_epochs * len(groups) / per_step)))
    model.train()
    started, losses = time.perf_counter(), []
    with bar(steps if progress else 0, "tune stance part", "steps") as advance:
        for _ in range(steps):
            picked = [groups[i] for i in rng.choice(len(groups), per_step, replace=False)]
            batch = np.concatenate([g if len(g) <= MAX_ANSWERS else rng.choice(g, MAX_ANSWERS, replace=False)
                                    for g in picked])
            tokenize = getattr(model, "preprocess", None) or model.tokenize  # renamed in sentence-transformers 6
            features = {k: v.to(model.device) if torch.is_tensor(v) else v
                        for k, v in tokenize([texts[i] for i in batch]).items()}
            z = F.normalize(model(features)["sentence_embedding"], dim=-1)
            ids = [torch.from_numpy(np.asarray(x)).to(z.device) for x in
                   (question[batch], pd.factorize(labels[batch])[0], pd.factorize(models[batch])[0])]
            loss = loss_fn(z, *ids)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            losses.append(float(loss.detach()))
            advance(1)
    model.eval()
    if report:
        report(f"stance part: {steps} steps over {len(groups)} questions with 2+ labels, loss {losses[0]:.4f} -> "
               f"{np.mean(losses[-max(1, steps // 10):]):.4f}; {time.perf_counter() - started:.1f}s")
    state = model.state_dict()
    return {name: state[name].detach().to(torch.float16).clone() for name in sorted(trainable)}


def tuning_key(cfg, table: pd.DataFrame, rows: np.ndarray, texts: Sequence[str]) -> str:
    """What tuning reads, hashed: its settings and, of the questions it contrasts, every answer's text, label and
    LLM. A checkpoint's or the cache's part is reused only under the same key; QAs without a label never enter,
    so models trained on other unlabelled data share one tuned part."""
    from dataclasses import asdict

    settings = {k: v for k, v in asdict(cfg).items() if k.startswith("stance_") and k != "stance_weight"}
    settings.update(seed=cfg.seed, weight_decay=cfg.weight_decay)
    digest = hashlib.sha256(repr(sorted(settings.items())).encode())
    labels = stance_labels(table).to_numpy(dtype=object)
    models = table["model"].astype(str).to_numpy()
    for group in question_groups(table, rows):
        for i in group:
            digest.update(f"{texts[i]}\0{labels[i]}\0{models[i]}\0".encode())
        digest.update(b"\1")
    return digest.hexdigest()[:32]


def cached_file(key: str):
    """Where the embedding cache keeps a tuned part (``$UNIVAR_CACHE_DIR/stance/<key>.safetensors``): tuning
    is minutes of CPU, and the benchmarks train the same recipe on the same QAs more than once."""
    return cache_dir() / "stance" / f"{key}.safetensors"


def write_tuned(path, tensors: dict[str, torch.Tensor], key: str) -> None:
    """Keep the tuned part beside the checkpoint, under ``key`` (see :func:`tuning_key`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    io.save_tensors(path, tensors, metadata={"format": "univar-stance", "key": key})


def read_tuned(path, key: str) -> dict[str, torch.Tensor] | None:
    """The tuned part a checkpoint holds, if it was tuned under ``key``; else None."""
    from safetensors import safe_open

    if path is None or not path.is_file():
        return None
    with safe_open(str(path), framework="pt") as fh:
        if (fh.metadata() or {}).get("key") != key:
            return None
    return io.load_tensors(path)


def part_config(cfg, encoder: StanceEncoder) -> dict:
    """The ``stance`` entry of ``univar.json``: how to rebuild the part from its base and stored layers."""
    return {"base": cfg.stance_base, "base_id": encoder.transformer.id, "weight": cfg.stance_weight,
            "max_length": cfg.stance_max_length, "layers": cfg.stance_layers, "dim": encoder.dim}


def split_tensors(tensors: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """``model.safetensors`` -> (the head's tensors, the stance part's, without the prefix)."""
    head = {k: v for k, v in tensors.items() if not k.startswith(PREFIX)}
    part = {k[len(PREFIX):]: v for k, v in tensors.items() if k.startswith(PREFIX)}
    return head, part
