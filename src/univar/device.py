"""Where tensors live: ``--device auto|cpu|cuda|cuda:N`` resolved once, the same way for every command.

``auto`` takes the GPU when torch sees one and the CPU otherwise, so one command line works on a laptop and
on a GPU node. Under ``torchrun`` each process owns one GPU, ``cuda:$LOCAL_RANK`` (the launcher's own
convention), so ``auto`` and a bare ``cuda`` never put two ranks on one card. Asking for a GPU that is
not there is the user's mistake, answered by one ``error:`` line rather than a CUDA traceback later on.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING

from univar.errors import SettingError

if TYPE_CHECKING:
    import torch

CHOICES = "auto, cpu, cuda or cuda:N"
_SPEC = re.compile(r"^(auto|cpu|cuda)(?::(\d+))?$")


def local_rank() -> int:
    """This process's index on its node, as torchrun sets it (0 outside torchrun)."""
    return int(os.environ.get("LOCAL_RANK", "0") or 0)


def check(spec: object) -> str:
    """``spec`` as a device name (``auto``, ``cpu``, ``cuda``, ``cuda:N``), checked without loading torch.

    Encoders take a device when they are built and load their weights on it at first use, so a run served from
    the embedding cache never imports torch; a misspelt device is still refused at once.
    """
    text = str(spec).strip().lower()
    match = _SPEC.match(text)
    if not match or (match.group(1) != "cuda" and match.group(2) is not None):
        raise SettingError("device", f"must be {CHOICES}, got {str(spec)!r}")
    return text


def resolve(spec: object = "auto") -> torch.device:
    """The torch device for a device name (or a torch.device); raises :class:`SettingError` for a GPU that is not
    there."""
    import torch  # heavy: the CLI and the QA layer use this module without loading torch

    match = _SPEC.match(check(spec))
    kind, index = match.group(1), match.group(2)
    if kind == "cpu":
        return torch.device("cpu")
    available = torch.cuda.is_available()
    if kind == "auto":
        if not available:
            return torch.device("cpu")
        return torch.device("cuda", local_rank() % torch.cuda.device_count())
    if not available:
        raise SettingError("device", f"{spec}: no CUDA GPU is visible to torch (torch {torch.__version__}, "
                          f"CUDA build: {torch.version.cuda or 'no'}); use cpu or auto")
    count = torch.cuda.device_count()
    n = int(index) if index is not None else local_rank()
    if n >= count:
        raise SettingError("device", f"{spec}: only {count} CUDA device(s) visible (cuda:0..cuda:{count - 1})")
    return torch.device("cuda", n)


def gpu_count() -> int:
    """How many CUDA devices this process sees (0 without CUDA)."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0
