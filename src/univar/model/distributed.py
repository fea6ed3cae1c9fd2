"""Multi-process training plumbing, kept apart from the loss math (as open_clip does).

``torchrun --standalone --nproc_per_node N -m univar train ...`` sets RANK / WORLD_SIZE / LOCAL_RANK /
MASTER_ADDR; ``setup`` then joins the process group. The backend follows where the tensors are, not what
the machine has: nccl only moves CUDA tensors, so it is used only when this rank trains on its GPU
(``cuda:$LOCAL_RANK``, one process per GPU); gloo otherwise, e.g. set mode, whose small head stays on the
CPU even on a GPU node. Every rank draws its own view pairs, and ``gather`` concatenates all ranks' view
vectors, with gradients, so that each rank's InfoNCE sees the global batch as negatives.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field

import torch
import torch.distributed as dist

from univar.device import resolve


@dataclass
class Dist:
    rank: int = 0
    world_size: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))  # where this rank's tensors live

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()


def backend_for(device: torch.device) -> str:
    """nccl for CUDA tensors, gloo for CPU ones (nccl cannot move CPU tensors)."""
    return "nccl" if device.type == "cuda" else "gloo"


def setup(device: str | torch.device = "cpu") -> Dist:
    """Join the process group when launched by torchrun; a single process otherwise.

    ``device`` is a ``--device`` value (see :mod:`univar.device`); a CUDA device becomes this process's
    current device, so that collectives and kernels without an explicit device land on it too.
    """
    where = device if isinstance(device, torch.device) else resolve(device)
    if where.type == "cuda":
        torch.cuda.set_device(where)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist(device=where)
    if not dist.is_initialized():
        dist.init_process_group(backend=backend_for(where))
    return Dist(rank=dist.get_rank(), world_size=dist.get_world_size(), device=where)


def teardown(ctx: Dist) -> None:
    """Leave the process group that ``setup`` joined (nothing to do in a single process)."""
    if ctx.enabled and dist.is_initialized():
        dist.destroy_process_group()


def gather(tensor: torch.Tensor, ctx: Dist) -> torch.Tensor:
    """All ranks' rows, this rank's keeping their gradient (``torch.distributed.nn.all_gather``)."""
    if not ctx.enabled:
        return tensor
    from torch.distributed.nn import all_gather

    with warnings.catch_warnings():  # torch warns that it will move to a private API; it is still the public one
        warnings.simplefilter("ignore", FutureWarning)
        return torch.cat(all_gather(tensor), dim=0)


def gather_nograd(tensor: torch.Tensor, ctx: Dist) -> torch.Tensor:
    """All ranks' rows without gradients (e.g. the class labels that go with ``gather``'s vectors)."""
    if not ctx.enabled:
        return tensor
    parts = [torch.empty_like(tensor) for _ in range(ctx.world_size)]
    dist.all_gather(parts, tensor)
    return torch.cat(parts, dim=0)


def broadcast_float(value: float, ctx: Dist) -> float:
    """Rank 0's value on every rank (e.g. the early-stopping decision)."""
    if not ctx.enabled:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=ctx.device)
    dist.broadcast(t, 0)
    return float(t.item())
