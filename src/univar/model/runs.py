"""Where a training run writes, decided before any data is read, and what it leaves there when done.

Nothing a user trained is replaced by accident (:func:`plan_run`): a run into a new or empty directory writes there
as it goes (the best model so far and, for ``--resume``, its checkpoint); a directory that holds a model or a run
is refused unless ``overwrite`` is given, and even then the new model is built beside it, in ``<out>.training``,
and swapped in only when complete (:func:`univar.files.replace_dir`), so a kill at any moment leaves the old model
as it was. ``resume`` continues a run that has not finished, and on a finished one says so without reading the data.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from univar.errors import UnivarError
from univar.model import io
from univar.model.config import TrainConfig


@dataclass
class TrainResult:
    out: Path
    best_epoch: int
    best_score: float | None
    base_score: float | None
    epochs_run: int
    history: list[dict]
    seconds: float
    already_finished: bool = False  # a resume found the run done and trained nothing


STAGING = ".training"


def staging_of(out: Path) -> Path:
    """Where a run that replaces the model in ``out`` builds the new one: ``<out>.training``, beside it."""
    return out.with_name(out.name + STAGING)


@dataclass
class RunPlan:
    """Where a run writes, decided before any data is read: ``work`` is ``out`` itself, or ``staging_of(out)``
    for a run that will replace what ``out`` holds (``replaces``: the digest of the model there, which its
    checkpoints record); ``finished`` is the line to say instead of training when a resumed run is already
    done, ``state`` the checkpoint's training state when resuming."""
    out: Path
    work: Path
    finished: str | None = None
    state: dict | None = None
    replaces: str | None = None


def _model_digest(folder: Path) -> str | None:
    """The weights digest of the model in ``folder``; None where there is no readable model."""
    try:
        return io.weights_digest(folder, io.read_config(folder))
    except UnivarError:
        return None


def _stopped_run(out: Path) -> dict | None:
    """The training state of a stopped run that is to replace ``out`` (in ``<out>.training``), or None.

    A run there records the digest of the model it replaces; it is that run only while ``out`` still holds
    that model. After the swap the old model sits under that name until it is deleted, and a kill in between
    must not make it look like a run to resume: its record names another model (or none).
    """
    state = io.checkpoint_state(staging_of(out))
    if state is None or "replaces" not in state or state["replaces"] != _model_digest(out):
        return None
    return state


def _finished_line(out: Path, state: dict, cfg: TrainConfig) -> str | None:
    """One line saying that the run in ``out`` has nothing left to do under ``cfg`` (its epochs are done or it
    stopped early), or None when resuming it would train."""
    history = state.get("history", [])
    validated = bool(history) and history[0].get("val_knn_acc") is not None
    early = validated and state["bad_epochs"] >= cfg.patience
    if state["epoch"] < cfg.epochs and not early:
        return None
    best = f"; best validation score {state['best']:.4f} at epoch {state['best_epoch']}" if validated else ""
    how = "early stop" if early and state["epoch"] < cfg.epochs else f"--epochs {cfg.epochs}"
    return f"{out}: training already finished at epoch {state['epoch']} ({how}{best}); nothing to resume"


def plan_run(out: str | Path, cfg: TrainConfig, resume: bool = False, overwrite: bool = False) -> RunPlan:
    """Decide where a run into ``out`` writes, or refuse it, before any data is read or embedded.

    Parameters
    ----------
    out : str or pathlib.Path
        The model directory asked for.
    cfg : TrainConfig
        The run's settings (a resume compares its epochs and patience with the checkpoint's progress).
    resume : bool
        Continue the unfinished run of ``out`` (the one in ``<out>.training`` first, if a run that replaces
        ``out`` was stopped).
    overwrite : bool
        Allow replacing a model or run that ``out`` holds (built beside it, swapped in when complete).

    Returns
    -------
    RunPlan
        Where to write; its ``finished`` line when a resumed run has nothing left to do.

    Raises
    ------
    UnivarError
        When ``out`` holds a model or a run and ``overwrite`` is False, holds files that are not univar's, a
        stopped run waits in ``<out>.training``, or there is nothing to resume.
    """
    out = Path(out)
    staging = staging_of(out)
    if resume and overwrite:
        raise UnivarError("--resume continues a run and --overwrite starts one afresh; pass one of them")
    held = io.contents(out)
    if held == "other":
        raise UnivarError(f"{out} exists and is not a univar model directory; choose an empty or new --out")
    pending = _stopped_run(out)
    if resume:
        if pending is not None:
            return RunPlan(out, staging, state=pending, replaces=pending["replaces"])
        state = io.checkpoint_state(out)
        if state is None:
            raise UnivarError(f"{out}: no checkpoint to resume from (expected {io.CHECKPOINT}/state.safetensors)")
        return RunPlan(out, out, finished=_finished_line(out, state, cfg), state=state)
    if pending is not None and not overwrite:
        raise UnivarError(f"{staging} holds a stopped run that is to replace {out}: --resume continues it, "
                          "--overwrite starts again")
    if held is not None and not overwrite:
        unfinished = held == "run" and _finished_line(out, io.checkpoint_state(out), cfg) is None
        what = "an unfinished training run (--resume continues it)" if unfinished else "a univar model"
        raise UnivarError(f"{out} already holds {what}; pass --overwrite (in Python overwrite=True) to replace it, "
                          "or choose another --out")
    if held is None:
        return RunPlan(out, out)
    return RunPlan(out, staging, replaces=_model_digest(out))


def finished_result(plan: RunPlan) -> TrainResult:
    """What a resume of a finished run returns: the run as its checkpoint recorded it, nothing trained."""
    state, history = plan.state, plan.state.get("history", [])
    first = history[0] if history else {}
    validated = first.get("val_knn_acc") is not None
    return TrainResult(out=plan.out, best_epoch=state["best_epoch"], best_score=state["best"] if validated else None,
                       base_score=first.get("val_score", first.get("val_knn_acc")), epochs_run=len(history) - 1,
                       history=history, seconds=0.0, already_finished=True)


UNTRAINED = ("no epoch beat the base encoder on validation, so the model is epoch 0, untrained: {n_train} training "
             "QAs of {n_classes} classes are probably too few for this run (more QAs, more epochs or --val-fold -1)")


def model_card(config: dict, untrained: bool) -> str:
    """``MODEL_CARD.md`` of a model ``univar train`` wrote: what it was trained on and how it validated, so that
    the directory says what it holds (``make model`` writes a fuller card for the shipped model)."""
    t, v = config["training"], config.get("validation", {})
    history = v.get("history", [])
    never = ", ".join(map(str, t["exclude_folds"])) or "none"
    lines = [f"# univar value encoder: {config['mode']} mode over `{config['base']}`", "",
             f"Trained by `univar train` on {t['data'] or 'a QA table'}: {t['n_qas']:,} QAs of {len(t['classes'])} "
             f"(LLM, language) classes; {t['n_train']:,} trained on, {t['n_val']:,} held out for validation "
             f"(question fold {t['val_fold']}); question folds never seen: {never}.", ""]
    if v.get("best") is not None and history:
        lines.append(f"Validation ({v['metric']}): {v['best']:.4f} at epoch {v['best_epoch']} of {len(history) - 1}; "
                     f"the base encoder (epoch 0) {history[0].get('val_score'):.4f}.")
    else:
        lines.append(f"No validation: the model is the last of its {len(history) - 1} epochs.")
    if untrained:
        lines += ["", "**Untrained:** " + UNTRAINED.format(n_train=t["n_train"], n_classes=len(t["classes"])) + "."]
    lines += ["", f"Settings: lambda {config['lambda']}, at most {t['epochs']} epochs (patience {t['patience']}), "
                  f"batch {t['batch_size']}, lr {t['lr']:g}, seed {t['seed']}; `univar.json` holds every setting and "
                  "the validation history."]
    return "\n".join(lines) + "\n"
