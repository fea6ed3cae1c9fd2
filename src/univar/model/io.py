"""Model directories: ``univar.json`` (config) + safetensors weights. Pickle is never read.

A set-mode directory holds ``model.safetensors`` (the head); a concat-mode directory holds the fine-tuned
sentence-transformer under ``transformer/`` (saved by sentence-transformers, safetensors only). Anything
that looks like a pickle (``*.bin``, ``*.pt``, ``*.pkl`` ...) makes the directory refused: loading a
pickle runs code, and a model directory is something people download and share.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from univar import files
from univar.errors import UnivarError

CONFIG = "univar.json"
WEIGHTS = "model.safetensors"
TRANSFORMER = "transformer"
CHECKPOINT = "checkpoint"
CARD = "MODEL_CARD.md"
FORMAT_VERSION = 1
MODES = ("set", "concat")
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib")


def write_json(path: Path, obj: dict) -> None:
    """A model config: sorted keys, so that the same settings give the same bytes."""
    files.write_json(path, obj, sort_keys=True)


def save_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    """Atomic safetensors write (a kill mid-write leaves the previous file intact)."""
    from safetensors.torch import save_file

    with files.atomic_path(path) as tmp:
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp), metadata=metadata)


def load_tensors(path: Path) -> dict[str, torch.Tensor]:
    """Read a safetensors file; a missing, truncated or foreign file is a ``UnivarError`` naming it."""
    from safetensors.torch import load_file

    if not path.is_file():
        raise UnivarError(f"{path.parent}: missing {path.name}")
    try:
        return load_file(str(path))
    except Exception as exc:  # safetensors raises its own error types for truncated or foreign files
        raise UnivarError(f"{path}: not a readable safetensors file ({str(exc).splitlines()[0]})") from None


def refuse_pickles(folder: Path) -> None:
    """Raise if ``folder`` holds anything that looks like a pickle: loading one would run its code."""
    found = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in PICKLE_SUFFIXES)
    if found:
        raise UnivarError(f"{folder}: refusing to load pickle file {found[0].relative_to(folder)} "
                          "(univar models are safetensors + univar.json only)")


def read_config(folder: str | Path) -> dict:
    """The validated ``univar.json`` of a model directory."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UnivarError(f"{folder}: not a univar model directory")
    refuse_pickles(folder)
    path = folder / CONFIG
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UnivarError(f"{folder}: missing {CONFIG}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UnivarError(f"{path}: corrupt JSON ({exc})") from None
    if not isinstance(config, dict) or config.get("format") != "univar":
        raise UnivarError(f"{path}: not a univar model config (no \"format\": \"univar\")")
    if config.get("version", 0) > FORMAT_VERSION:
        raise UnivarError(f"{path}: format version {config.get('version')} is newer than this univar reads")
    if config.get("mode") not in MODES:
        raise UnivarError(f"{path}: unknown mode {config.get('mode')!r} (expected set or concat)")
    for key in ("base", "dim"):
        if key not in config:
            raise UnivarError(f"{path}: missing key {key!r}")
    return config


def weights_file(folder: Path, config: dict) -> Path:
    """Where a model directory of ``config``'s mode keeps its weights (the head, or the transformer's)."""
    return folder / (WEIGHTS if config["mode"] == "set" else f"{TRANSFORMER}/model.safetensors")


def weights_digest(folder: str | Path, config: dict) -> str:
    """SHA-256 of the weights (first 16 hex digits): part of the encoder id, so the cache follows the weights."""
    path = weights_file(Path(folder), config)
    if not path.is_file():
        raise UnivarError(f"{folder}: missing {path.relative_to(folder)}")
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def save_checkpoint(folder: Path, tensors: dict[str, torch.Tensor], state: dict) -> None:
    """Periodic training state: tensors (weights, optimizer moments, RNG) + JSON (epoch, sampler RNG, history).

    The JSON state travels inside the safetensors file's metadata, so one atomic rename replaces both: a
    kill can never pair one epoch's weights with another epoch's step count (found by the twenty-kill
    test). ``state.json`` beside it is a readable copy that resuming does not trust.
    """
    ck = folder / CHECKPOINT
    ck.mkdir(parents=True, exist_ok=True)
    save_tensors(ck / "state.safetensors", tensors, metadata={"format": "univar-checkpoint",
                                                              "state": json.dumps(state, sort_keys=True)})
    write_json(ck / "state.json", state)


def checkpoint_state(folder: Path) -> dict | None:
    """The training state of ``folder``'s checkpoint, read from its metadata without loading a tensor (it
    decides, before any data is read, whether there is a run to resume); None when there is no checkpoint."""
    from safetensors import safe_open

    path = folder / CHECKPOINT / "state.safetensors"
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt") as fh:
            return json.loads((fh.metadata() or {})["state"])
    except Exception as exc:  # a torn or foreign file: safetensors and json raise their own types
        raise UnivarError(f"{path}: corrupt checkpoint ({str(exc).splitlines()[0]})") from None


def contents(folder: Path) -> str | None:
    """What ``folder`` holds, for a command about to write a model there (why: nothing a user trained may be
    replaced by accident): None when nothing (absent, empty, or a run that saved no training state yet),
    ``"run"`` (a training run's checkpoint), ``"model"`` (a univar model's files) or ``"other"``."""
    if not folder.exists():
        return None
    if not folder.is_dir():
        return "other"
    if (folder / CHECKPOINT / "state.safetensors").is_file():
        return "run"
    if any((folder / name).exists() for name in (CONFIG, WEIGHTS, TRANSFORMER, CARD)):
        return "model"
    return "other" if any(p.name != CHECKPOINT for p in folder.iterdir()) else None


def load_checkpoint(folder: Path) -> tuple[dict[str, torch.Tensor], dict]:
    """The tensors and training state that ``save_checkpoint`` wrote, for resuming; refuses a corrupt one."""
    from safetensors import safe_open

    ck = folder / CHECKPOINT
    path = ck / "state.safetensors"
    if not path.is_file():
        raise UnivarError(f"{folder}: no checkpoint to resume from (expected {CHECKPOINT}/state.safetensors)")
    refuse_pickles(ck)
    tensors = load_tensors(path)
    with safe_open(str(path), framework="pt") as fh:
        meta = fh.metadata() or {}
    try:
        state = json.loads(meta["state"])
    except (KeyError, json.JSONDecodeError) as exc:
        raise UnivarError(f"{path}: corrupt checkpoint (no training state in its metadata: {exc})") from None
    return tensors, state


def optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], list]:
    """Flatten an optimizer's state into named tensors (for safetensors) and JSON-able param groups."""
    sd = optimizer.state_dict()
    tensors = {}
    for idx, slots in sd["state"].items():
        for key, value in slots.items():
            tensors[f"opt.{idx}.{key}"] = value if torch.is_tensor(value) else torch.tensor(value)
    return tensors, sd["param_groups"]


def restore_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], groups: list) -> None:
    """Load into ``optimizer`` the state that ``optimizer_tensors`` flattened (the inverse of that function)."""
    state: dict[int, dict] = {}
    for name, value in tensors.items():
        if name.startswith("opt."):
            _, idx, key = name.split(".", 2)
            state.setdefault(int(idx), {})[key] = value
    optimizer.load_state_dict({"state": state, "param_groups": groups})
