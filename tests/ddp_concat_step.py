"""Run by ``torchrun --nproc_per_node 2`` from test_ddp_concat.py: one concat-mode training step per rank
with the training loop's own DDP plumbing (parameter broadcast, gathered InfoNCE, gradient averaging).

argv: tiny base folder, QA file, output folder. Rank 1 starts from perturbed weights, so agreement after
the step is the broadcast's doing; each rank draws its own views, so its local gradient is its own. Each rank
writes ``grad{rank}.safetensors`` (its local gradient, before averaging) and ``weights{rank}.safetensors``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

from univar.model import distributed
from univar.model.concat_mode import ConcatTrainer
from univar.model.config import TrainConfig
from univar.model.train import _average_gradients, _broadcast_parameters
from univar.model.views import ViewSampler
from univar.qa import class_labels, qa_texts, read_qa


def main() -> None:
    base, data, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    ctx = distributed.setup("cpu")
    assert ctx.world_size == 2 and torch.distributed.get_backend() == "gloo"
    table = read_qa(data)
    cfg = TrainConfig(mode="concat", base=base, max_length=48, micro_batch=2, lam=2, batch_size=4, lr=1e-3)
    trainer = ConcatTrainer(cfg, qa_texts(table), ctx)
    if ctx.rank == 1:
        with torch.no_grad():
            for p in trainer.module.parameters():
                p.add_(torch.randn_like(p))
    _broadcast_parameters(trainer.module, ctx)
    params = [p for p in trainer.module.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr)
    sampler = ViewSampler(class_labels(table).to_numpy(), cfg.lam, cfg.batch_size, seed=ctx.rank)
    torch.manual_seed(1 + ctx.rank)  # dropout streams differ per rank, as in training
    optimizer.zero_grad(set_to_none=True)
    trainer.step(sampler.sample())
    names = [n for n, p in trainer.module.named_parameters() if p.requires_grad]
    save_file({n: p.grad.detach().clone() for n, p in zip(names, params) if p.grad is not None},
              str(out / f"grad{ctx.rank}.safetensors"))
    _average_gradients(params, ctx)
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    optimizer.step()
    save_file({n: p.detach().contiguous() for n, p in trainer.module.state_dict().items()},
              str(out / f"weights{ctx.rank}.safetensors"))
    distributed.teardown(ctx)


if __name__ == "__main__":
    main()
