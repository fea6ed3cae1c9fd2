"""Set-mode training step: frozen, cached base embeddings -> trainable head -> pooled views -> InfoNCE.

Per-QA base embeddings are computed once through ``univar.encoders.embed`` (so they land in, and come
from, the same on-disk cache every other command uses); a training step is then a few small matrix
products, which is why a model trains on 2 CPU cores in minutes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from univar.encoders import embed
from univar.model import distributed, io, stance
from univar.model.heads import SetViewEncoder
from univar.model.loss import InfoNCELoss
from univar.model.univar import base_encoder
from univar.model.views import ViewBatch


class SetTrainer:
    """``questions`` (the question-alone texts, ``qa.question_texts``) and ``fit_rows`` (the training QAs)
    are needed when the config removes topic (``topic_alpha``): the ridge map is fitted once on those rows,
    before the head is trained on the residuals."""

    def __init__(self, cfg, texts: list[str], ctx: distributed.Dist, progress: bool = True,
                 questions: list[str] | None = None, fit_rows: np.ndarray | None = None, table=None,
                 out: Path | None = None, report=None):
        self.cfg, self.ctx = cfg, ctx
        self.stance_tensors, self.stance_x = None, None
        if cfg.stance_weight:  # first, so a bad stance column fails before the head's work
            self._tune_stance(table, fit_rows, texts, out, progress, report)
        self.base = base_encoder(cfg.base, cfg.device)
        self.x = self._embed(texts, progress)
        self.dim = self.x.shape[1]
        self.blocks = [p.dim for p in getattr(self.base, "parts", [self.base])]  # a joined base: one map per part
        encoder = SetViewEncoder(self.dim, cfg.hidden, cfg.dropout, cfg.pooling, cfg.keep_base, cfg.topic_alpha,
                                 self.blocks)
        if encoder.topic is not None:
            if questions is None or fit_rows is None:
                raise ValueError("topic removal needs the question texts and the rows to fit it on")
            q = self._embed(questions, progress)
            rows = torch.from_numpy(np.asarray(fit_rows))
            encoder.topic.fit(self.x[rows], q[rows])
            with torch.no_grad():  # the head reads residuals from here on; the map is fixed
                self.x = encoder.inputs(self.x, q)
        self.module = nn.ModuleDict({
            "encoder": encoder,
            "loss": InfoNCELoss(cfg.scale, cfg.symmetric, cfg.learnable_scale, mask_same_class=cfg.batching != "none"),
        })

    def _tune_stance(self, table, rows, texts, out: Path | None, progress: bool, report) -> None:
        """The stance part: tuned on the training rows (or read back from the checkpoint a killed run wrote),
        then every QA embedded with it once, as the base is."""
        key = stance.tuning_key(self.cfg, table, rows, texts)
        saved = None if out is None else out / io.CHECKPOINT / stance.CHECKPOINT_FILE
        cached = stance.cached_file(key)  # the same recipe on the same QAs, tuned by an earlier run
        tensors = stance.read_tuned(saved, key) or stance.read_tuned(cached, key)
        if tensors is None:
            if self.ctx.main:
                tensors = stance.tune(self.cfg, table, rows, texts, progress, report)
                for path in (saved, cached):
                    if path is not None:
                        stance.write_tuned(path, tensors, key)
            self.ctx.barrier()
            if not self.ctx.main:
                tensors = stance.read_tuned(cached, key)
        elif saved is not None and not saved.is_file():
            stance.write_tuned(saved, tensors, key)
        self.stance_tensors = tensors
        self.stance_encoder = stance.StanceEncoder(self.cfg.stance_base, tensors, self.cfg.stance_max_length,
                                                     self.cfg.device)
        self.stance_x = self.cfg.stance_weight * self._embed(texts, progress, self.stance_encoder)

    def _embed(self, texts, progress: bool, encoder=None) -> torch.Tensor:
        encoder = encoder or self.base
        if self.ctx.main:  # rank 0 fills the cache; the others then only read it
            vectors = embed(texts, encoder, progress=progress)
        self.ctx.barrier()
        if not self.ctx.main:
            vectors = embed(texts, encoder, progress=False)
        return torch.from_numpy(np.ascontiguousarray(vectors))

    def _views(self, index: np.ndarray) -> torch.Tensor:
        """Run the head on the real QAs only (views are padded to the longest; about 40% is padding)."""
        idx = torch.from_numpy(index)
        mask = idx >= 0
        encoder = self.module["encoder"]
        items = torch.zeros(*idx.shape, encoder.head_dim)
        items[mask] = encoder.head_items(self.x[idx[mask]])
        return encoder.pool(items, mask)

    def step(self, batch: ViewBatch) -> float:
        """Forward and backward on one batch of view pairs; returns the loss over the global batch."""
        a = distributed.gather(self._views(batch.a), self.ctx)
        b = distributed.gather(self._views(batch.b), self.ctx)
        classes = distributed.gather_nograd(torch.from_numpy(batch.classes), self.ctx)
        loss = self.module["loss"](a, b, classes)
        loss.backward()
        return float(loss.detach())

    @torch.no_grad()
    def embed_rows(self, rows: np.ndarray) -> np.ndarray:
        encoder = self.module["encoder"]
        was = encoder.training
        encoder.eval()
        idx = torch.from_numpy(rows)
        items = encoder.encode_items(self.x[idx])
        if self.stance_x is not None:  # what users get: [w * stance, identity], normalised
            items = torch.nn.functional.normalize(torch.cat([self.stance_x[idx], items], dim=-1), dim=-1)
        encoder.train(was)
        return items.numpy()

    def config(self) -> dict:
        head = {"hidden": self.cfg.hidden, "dropout": self.cfg.dropout, "pooling": self.cfg.pooling}
        if self.cfg.keep_base:  # models trained before keep_base existed load without the key
            head["keep_base"] = self.cfg.keep_base
        if self.cfg.topic_alpha is not None:
            head["topic_alpha"], head["topic_blocks"] = self.cfg.topic_alpha, self.blocks
        config = {"mode": "set", "base": self.cfg.base, "base_id": self.base.id,
                  "dim": self.module["encoder"].dim, "head": head}
        if self.stance_tensors is not None:
            config["stance"] = stance.part_config(self.cfg, self.stance_encoder)
            config["dim"] += self.stance_encoder.dim
        return config

    def save_weights(self, folder: Path) -> None:
        tensors = dict(self.module["encoder"].state_dict())
        if self.stance_tensors is not None:  # one file, one digest: the model's id follows both parts
            tensors.update({stance.PREFIX + k: v for k, v in self.stance_tensors.items()})
        io.save_tensors(folder / io.WEIGHTS, tensors, metadata={"format": "univar"})
