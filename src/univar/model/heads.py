"""View encoders. ``SetViewEncoder`` (set mode) is a small head over frozen per-QA base embeddings,
optionally after ``TopicRemoval``, which takes away what the question alone predicts.

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


class TopicRemoval(nn.Module):
    """``e(QA) - g(e(Q))``: a QA's base vector minus what its question alone predicts of it.

    Why: in a sentence encoder's space the answers of different LLMs to one question lie closer together
    than the answers of one LLM to different questions, so nearest neighbours match topics, not LLMs. ``g``
    is a ridge regression from the embedding of the question alone (``Q: {question} A: .``) to the
    embedding of the QA, fitted in closed form on the training QAs (no class labels). The residual keeps
    how an answer departs from what any LLM would say to that question; it needs no other LLM's answer,
    so it works on a single QA. It is what carries to LLMs and sources never seen in training
    (bench/results/transfer.json; a linear map fitted once, never trained by the contrastive loss).

    With a joined base (``minilm+use-multilingual``, ``blocks`` = each part's width) every part gets its own
    map and its residual is L2-normalised on its own, so the parts weigh equally: on held-out sources that
    beat one map over the joined vector (bench/results/transfer.json, docs/model.md).
    """

    def __init__(self, dim: int, alpha: float = 1.0, blocks: list[int] | None = None):
        super().__init__()
        self.alpha = float(alpha)
        self.blocks = list(blocks) if blocks else [dim]
        if sum(self.blocks) != dim:
            raise ValueError(f"topic blocks {self.blocks} do not add up to the base width {dim}")
        self.register_buffer("weight", torch.zeros(dim, dim))
        self.register_buffer("q_mean", torch.zeros(dim))
        self.register_buffer("x_mean", torch.zeros(dim))

    def _spans(self) -> list[slice]:
        ends = torch.tensor(self.blocks).cumsum(0).tolist()
        return [slice(end - width, end) for end, width in zip(ends, self.blocks)]

    @torch.no_grad()
    def fit(self, x: torch.Tensor, q: torch.Tensor) -> "TopicRemoval":
        """Closed-form ridge per block on centred data: ``W = (Qc'Qc + alpha I)^-1 Qc'Xc`` (in float64)."""
        x, q = x.double(), q.double()
        self.weight.zero_()
        self.q_mean.copy_(q.mean(0).float())
        self.x_mean.copy_(x.mean(0).float())
        for span in self._spans():
            qc, xc = q[:, span] - q[:, span].mean(0), x[:, span] - x[:, span].mean(0)
            gram = qc.T @ qc + self.alpha * torch.eye(qc.shape[1], dtype=torch.float64)
            self.weight[span, span] = torch.linalg.solve(gram, qc.T @ xc).float()
        return self

    def forward(self, x: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        residual = x - ((q - self.q_mean) @ self.weight + self.x_mean)
        return torch.cat([F.normalize(residual[..., span], dim=-1) for span in self._spans()], dim=-1)


class SetViewEncoder(nn.Module):
    """A view (set of QA embeddings, ``[B, L, D]`` with a mask) -> one L2-normalised value vector.

    Each QA goes through the head and is normalised; the view is their (attention-)weighted mean,
    normalised. A view of one QA is that QA's vector, which is what ``encode_qas`` returns. Attention
    pooling starts as the plain mean (zero query) and learns which QAs of a view say more.

    ``keep_base`` w > 0 makes every QA vector ``[w * base, head]`` (normalised), so that the cosine of two
    QAs is ``(w^2 cos_base + cos_head) / (w^2 + 1)``: the base encoder's geometry stays beside what the head
    learned. The loss trains the head alone (training through the concatenation generalised worse); validation
    and every user see the concatenation. Why: a head trained on a few LLMs discards directions that tell
    *other* LLMs apart, and keeping the base brings them back on sources the head never saw, at a small cost
    in distribution. The measurements are in docs/model.md (ablations) and bench/results/transfer.json.
    """

    def __init__(self, dim: int, hidden: int = 1024, dropout: float = 0.1, pooling: str = "mean",
                 keep_base: float = 0.0, topic_alpha: float | None = None, topic_blocks: list[int] | None = None):
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}")
        if keep_base < 0:
            raise ValueError("keep_base must be >= 0")
        self.pooling, self.keep_base, self.head_dim = pooling, float(keep_base), dim
        self.dim = dim * 2 if self.keep_base > 0 else dim
        self.head = ResidualHead(dim, hidden, dropout)
        self.topic = TopicRemoval(dim, topic_alpha, topic_blocks) if topic_alpha is not None else None
        if pooling == "attention":
            self.query = nn.Parameter(torch.zeros(dim))

    def inputs(self, x: torch.Tensor, q: torch.Tensor | None = None) -> torch.Tensor:
        """What the head reads: the base vectors, or with topic removal their residual given the questions'."""
        if self.topic is None:
            return x
        if q is None:
            raise ValueError("this encoder removes topic: it needs the question vectors too")
        return self.topic(x, q)

    def head_items(self, x: torch.Tensor) -> torch.Tensor:
        """The head's QA vectors alone, normalised: what the contrastive loss trains."""
        return F.normalize(self.head(x), dim=-1)

    def encode_items(self, x: torch.Tensor) -> torch.Tensor:
        """The QA vectors users get: the head's, or ``[w * base, head]`` normalised with ``keep_base``."""
        h = self.head_items(x)
        if self.keep_base == 0:
            return h
        return F.normalize(torch.cat([self.keep_base * F.normalize(x, dim=-1), h], dim=-1), dim=-1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.pool(self.encode_items(x), mask)

    def attention_scores(self, items: torch.Tensor) -> torch.Tensor:
        """Attention pooling's score of each QA vector (read from its head part)."""
        head = F.normalize(items[..., -self.head_dim :], dim=-1)
        return (head @ self.query) * self.head_dim ** 0.5

    def pool(self, items: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Pool already encoded QA vectors ``[B, L, D]`` (padding rows are ignored) into view vectors."""
        if self.pooling == "attention":
            weights = torch.softmax(self.attention_scores(items).masked_fill(~mask, float("-inf")), dim=-1)
        else:
            weights = mask.float() / mask.sum(-1, keepdim=True).clamp(min=1)
        return F.normalize((weights.unsqueeze(-1) * items).sum(1), dim=-1)
