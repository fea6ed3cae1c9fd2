"""The contrastive objective of UniVaR: InfoNCE between two views of each value class."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

PAPER_SCALE = 50.0  # the paper's fixed logit scale (temperature 0.02)


class InfoNCELoss(nn.Module):
    """InfoNCE over in-batch pairs of views (UniVaR, arXiv 2404.07900, section 3; van den Oord et al. 2018).

    Row ``i`` of ``a`` and row ``i`` of ``b`` are two views of the same (LLM, language) class; every other
    row of ``b`` is a candidate negative. Similarity is cosine times ``scale`` (the paper: 50, fixed).

    Options beyond the paper:

    - ``mask_same_class``: the paper lets two views of one class be each other's negatives, which pushes
      apart what the loss elsewhere pulls together. With class ids given, those logits are masked out.
    - ``symmetric``: average the a->b and b->a cross-entropies (CLIP style).
    - ``learnable_scale``: learn log(scale), starting at ``scale`` and clamped to at most 100.
    """

    def __init__(self, scale: float = PAPER_SCALE, symmetric: bool = False, learnable_scale: bool = False,
                 mask_same_class: bool = True):
        super().__init__()
        self.symmetric, self.mask_same_class = symmetric, mask_same_class
        log_scale = torch.tensor(math.log(scale), dtype=torch.float32)
        if learnable_scale:
            self.log_scale = nn.Parameter(log_scale)
        else:
            self.register_buffer("log_scale", log_scale, persistent=False)

    @property
    def scale(self) -> torch.Tensor:
        return self.log_scale.clamp(max=math.log(100.0)).exp()

    def forward(self, a: torch.Tensor, b: torch.Tensor, classes: torch.Tensor | None = None) -> torch.Tensor:
        logits = self.scale * F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).T
        if self.mask_same_class and classes is not None:
            same = classes[:, None] == classes[None, :]
            same.fill_diagonal_(False)
            logits = logits.masked_fill(same, float("-inf"))
        target = torch.arange(len(a), device=a.device)
        loss = F.cross_entropy(logits, target)
        if self.symmetric:
            loss = (loss + F.cross_entropy(logits.T, target)) / 2
        return loss


class StanceContrastLoss(nn.Module):
    """Supervised contrast of positions within a question (SupCon, Khosla et al. 2020, restricted to one question).

    Expects unit vectors ``z`` ``[N, D]`` of answers and, per answer, integer ids of its ``question``, its stance
    ``label`` and the ``model`` that wrote it. An anchor's positives are the answers to the same question with the
    same label by *another* LLM; its negatives the answers to the same question with another label. Each positive
    is scored against the anchor's negatives alone, ``-log(e^{s_p/t} / (e^{s_p/t} + sum_n e^{s_n/t}))``, so answers
    to other questions (other topics) and the anchor's own LLM's other answers (its style) never enter: only the
    position can lower the loss. Anchors without a positive or a negative are left out; an empty batch gives 0.
    """

    def __init__(self, temperature: float = 0.05):
        super().__init__()
        self.temperature = temperature

    def forward(self, z: torch.Tensor, question: torch.Tensor, label: torch.Tensor,
                model: torch.Tensor) -> torch.Tensor:
        sim = z @ z.T / self.temperature
        same_q = question[:, None] == question[None, :]
        same_label = label[:, None] == label[None, :]
        pos = same_q & same_label & (model[:, None] != model[None, :])
        neg = same_q & ~same_label
        anchors = pos.any(1) & neg.any(1)
        if not anchors.any():
            return z.sum() * 0.0
        neg_lse = torch.logsumexp(sim.masked_fill(~neg, float("-inf")), dim=1, keepdim=True)
        per_positive = torch.logaddexp(sim, neg_lse) - sim
        loss = (per_positive * pos).sum(1) / pos.sum(1).clamp(min=1)
        return loss[anchors].mean()
