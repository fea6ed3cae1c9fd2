"""``univar train``: fit a UniVaR value encoder on QA tables (set or concat views).

The options that set a training setting are named after its ``TrainConfig`` field and repeat that field's
flag, default and help (its ``metadata``); tests/test_train_config.py, the one place that keeps the two equal,
holds them to each other one to one. They are spelt out rather than generated from the fields so that the
command reads as the option list ``--help`` prints, and type checkers see its parameters.
"""

from __future__ import annotations

import os
from dataclasses import fields
from pathlib import Path
from typing import Annotated, Optional

import typer

from univar.commands import DataArg, DeviceOpt, LogOpt, MapOpt, StanceOpt, app, err, flag, load_data, out
from univar.model.config import TrainConfig
from univar.progress import event, log_to


# Over 60 lines only because its signature is the option list, one option per TrainConfig field
# (tests/test_train_config.py keeps the two equal); the body is a few lines.
@app.command()
def train(
    data: DataArg,
    out_dir: Annotated[Path, typer.Option("--out", help="Model directory to write (univar.json + safetensors).")],
    mode: Annotated[str, typer.Option(
        "--mode", help="set (head over cached per-QA embeddings) or concat (the paper's: joined texts, "
                       "fine-tuned).")] = "set",
    lam: Annotated[int, typer.Option(
        "--lambda", help="Largest view size; sizes are drawn uniformly from 1..lambda.")] = 5,
    base: Annotated[str, typer.Option(
        "--base", help="Base encoder: minilm, e5-small, use-multilingual, minilm-int8, several joined with + "
                       "(minilm+use-multilingual, the shipped model's) or a sentence-transformers folder.",
    )] = "minilm",
    epochs: Annotated[int, typer.Option("--epochs", help="Most epochs (early stopping may end sooner).")] = 60,
    batch_size: Annotated[int, typer.Option("--batch-size", help="View pairs per step and process.")] = 256,
    lr: Annotated[float, typer.Option("--lr", help="AdamW learning rate.")] = 1e-3,
    hidden: Annotated[int, typer.Option("--hidden", help="Set mode: hidden width of the residual head.")] = 1024,
    dropout: Annotated[float, typer.Option("--dropout", help="Set mode: dropout in the head.")] = 0.1,
    batching: Annotated[str, typer.Option(
        "--batching", help="mask (same-class negatives masked), class (one pair per class per batch) or "
                           "none (the paper's).")] = "mask",
    pooling: Annotated[str, typer.Option(
        "--pooling", help="Set mode: mean or attention pooling of a view.")] = "mean",
    keep_base: Annotated[float, typer.Option(
        "--keep-base", help="Set mode: each QA vector is w * base beside the head (w = this); "
                            "0 = the head alone. Keeps the base's geometry for unseen LLMs.")] = 0.0,
    topic_alpha: Annotated[Optional[float], typer.Option(
        "--topic-alpha", help="Set mode: remove what the question alone predicts (a ridge map of "
                              "this strength, fitted on the training QAs) before the head; the "
                              "shipped model uses 1.")] = None,
    symmetric: Annotated[bool, flag("--symmetric", help="Symmetric InfoNCE (both directions).")] = False,
    learnable_scale: Annotated[bool, flag("--learnable-scale", help="Learn the logit scale (starts at 50).")] = False,
    val_fold: Annotated[int, typer.Option(
        "--val-fold", help="Question fold held out for validation and early stopping (-1: none).")] = 1,
    exclude_folds: Annotated[list[int], typer.Option(
        "--exclude-fold", help="Question folds never trained on (default 0, the test fold).")] = [0],
    patience: Annotated[int, typer.Option(
        "--patience", help="Early stopping: epochs without a better validation score.")] = 8,
    val_select: Annotated[str, typer.Option(
        "--val-select", help="Best epoch by pooled k-NN accuracy, or mean-gain: the mean over DATA files of "
                             "accuracy / base accuracy.")] = "pooled",
    steps_per_epoch: Annotated[int, typer.Option(
        "--steps-per-epoch", help="0: about one pass over the training QAs.")] = 0,
    max_length: Annotated[int, typer.Option("--max-length", help="Concat mode: word pieces per view.")] = 256,
    micro_batch: Annotated[int, typer.Option("--micro-batch", help="Concat mode: GradCache mini-batch size.")] = 16,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (weights, views, dropout).")] = 0,
    stance_weight: Annotated[float, typer.Option(
        "--stance-weight", help="Set mode: weight w of a stance part in each QA vector, [w * stance, "
                                "identity]: a transformer fine-tuned so that answers taking the same "
                                "position on a question sit together (needs a stance column); 0 = none.")] = 0.0,
    stance_epochs: Annotated[float, typer.Option(
        "--stance-epochs", help="Stance part: passes over the questions with two labels or more.")] = 2.0,
    stance_layers: Annotated[int, typer.Option(
        "--stance-layers", help="Stance part: top transformer layers fine-tuned (0: all).")] = 2,
    stance_col: StanceOpt = None,
    resume: Annotated[bool, flag("--resume", help="Continue an unfinished run from its checkpoint after a stop or "
                                                  "kill; on a finished run it says so and exits.")] = False,
    overwrite: Annotated[bool, flag(
        "--overwrite", help="Replace a model already in OUT (refused without it); the new one is built beside it "
                            "and swapped in when complete.")] = False,
    map_: MapOpt = None,
    device: DeviceOpt = "auto",
    log: LogOpt = None,
) -> None:
    """Train a UniVaR value encoder: two views of one (LLM, language) class must embed together."""
    options = dict(locals())  # the parameters alone (nothing else is bound yet)
    from univar.model.runs import plan_run
    from univar.model.train import train_table

    # every TrainConfig field with a flag is set by the option of its name
    settings = {f.name: options[f.name] for f in fields(TrainConfig) if f.metadata.get("cli")}
    cfg = TrainConfig(**{**settings, "exclude_folds": sorted(set(exclude_folds))})
    cfg.check()
    rank = int(os.environ.get("RANK", "0"))
    # one line per message, never wrapped at 80 columns: a log file keeps one line per epoch
    say = (lambda m: err.print(m, soft_wrap=True, highlight=False, markup=False)) if rank == 0 else None
    plan = plan_run(out_dir, cfg, resume=resume, overwrite=overwrite)  # refused or done: before reading data
    if plan.finished is not None:
        if rank == 0:
            out.print(plan.finished, soft_wrap=True, highlight=False, markup=False)
        return
    with log_to(log if rank == 0 else None):
        table = load_data(data, map_, stance_col)
        result = train_table(table, cfg, out_dir, resume=resume, report=say, overwrite=overwrite)
        event("train_end", out=str(out_dir), epochs_run=result.epochs_run, best_epoch=result.best_epoch,
              best_score=result.best_score, base_score=result.base_score, seconds=round(result.seconds, 3))
    if rank == 0:
        best = "" if result.best_score is None else (
            f"; best validation score {result.best_score:.4f} at epoch {result.best_epoch}"
            + (f" (base {result.base_score:.4f})" if result.base_score is not None else ""))
        out.print(f"trained {mode} model ({result.epochs_run} epochs, {result.seconds:.0f}s){best} -> {out_dir}",
                  soft_wrap=True, highlight=False, markup=False)
