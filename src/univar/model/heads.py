"""View encoders. ``SetViewEncoder`` (set mode) is a small head over frozen per-QA base embeddings.

The head is residual with a zero-initialised last layer, so before training it is the identity and the
model is exactly its base encoder: training can only move away from the base where the contrastive
signal asks for it, and early stopping at epoch 0 returns the base encoder itself.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

POOLINGS = ("mean", "attention")


class ResidualHead(nn.Module):
    """``x + MLP(LayerNorm(x))`` with the MLP's last layer at zero: the identity at initialisation."""

    def __init__(self, dim: int, hidden: int = 1024, dropout: float = 0.1):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.up = nn.Linear(dim, hidden)
        self.down = nn.Linear(hidden, dim)
        self.dropout = nn.Dropout(dropout)
        nn.init.zeros_(self.down.weight)
        nn.init.zeros_(self.down.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.down(self.dropout(F.gelu(self.up(self.norm(x)))))


class SetViewEncoder(nn.Module):
    """A view (set of QA embeddings, ``[B, L, D]`` with a mask) -> one L2-normalised value vector.

    Each QA goes through the head and is normalised; the view is their (attention-)weighted mean,
    normalised. A view of one QA is that QA's vector, which is what ``encode_qas`` returns. Attention
    pooling starts as the plain mean (zero query) and learns which QAs of a view say more.
    """

    def __init__(self, dim: int, hidden: int = 1024, dropout: float = 0.1, pooling: str = "mean"):
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}")
        self.dim, self.pooling = dim, pooling
        self.head = ResidualHead(dim, hidden, dropout)
        if pooling == "attention":
            self.query = nn.Parameter(torch.zeros(dim))

    def encode_items(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.head(x), dim=-1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.pool(self.encode_items(x), mask)

    def pool(self, items: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Pool already encoded QA vectors ``[B, L, D]`` (padding rows are ignored) into view vectors."""
        if self.pooling == "attention":
            scores = (items @ self.query) * self.dim ** 0.5
            weights = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)
        else:
            weights = mask.float() / mask.sum(-1, keepdim=True).clamp(min=1)
        return F.normalize((weights.unsqueeze(-1) * items).sum(1), dim=-1)
