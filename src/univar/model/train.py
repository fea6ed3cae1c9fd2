"""The training loop shared by both modes: sampling, optimisation, validation, early stopping,
checkpoints and resume, single process or data-parallel under torchrun.

Validation is value identification on held-out *questions*: QAs whose question is in ``val_fold`` are
never trained on; each epoch their vectors are classified by k-NN against the training QAs' vectors,
which is exactly the test that ``univar evaluate value-id --split question`` runs. The model written
to the output directory is always the best one so far, and epoch 0 (before any update) is a candidate:
since the head starts as the identity, the result can never score below its base encoder there.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from univar.errors import UnivarError
from univar.model import distributed, io
from univar.model.views import BATCHINGS, ViewSampler

log = logging.getLogger("univar")

# Settings that must not change when a run is resumed (epochs and patience may).
FROZEN_ON_RESUME = ("mode", "lam", "base", "batch_size", "lr", "weight_decay", "hidden", "dropout", "pooling",
                    "keep_base", "topic_alpha", "batching", "symmetric", "learnable_scale", "scale", "seed", "val_fold", "exclude_folds",
                    "max_length", "micro_batch", "val_select")
VAL_SELECT = ("pooled", "mean-gain")


@dataclass
class TrainConfig:
    mode: str = "set"
    lam: int = 5
    base: str = "minilm"
    epochs: int = 60
    batch_size: int = 256  # view pairs per step (per process)
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_steps: int = 20
    hidden: int = 1024
    dropout: float = 0.1
    pooling: str = "mean"
    keep_base: float = 0.0  # set mode: QA vector = [keep_base * base, head], normalised (heads.SetViewEncoder)
    # set mode: remove what the question alone predicts, ridge strength alpha (heads.TopicRemoval); None: off
    topic_alpha: float | None = None
    batching: str = "mask"  # mask | class | none (see views.ViewSampler)
    symmetric: bool = False
    learnable_scale: bool = False
    scale: float = 50.0
    seed: int = 0
    val_fold: int = 1  # question fold for validation / early stopping; -1: no validation
    exclude_folds: list[int] = field(default_factory=lambda: [0])  # folds never trained on (the test fold)
    patience: int = 8
    # how validation picks the best epoch: "pooled" k-NN accuracy over all held-out QAs, or "mean-gain", the
    # mean over datasets (the ``dataset`` column read_many adds) of accuracy / the base encoder's accuracy,
    # so that a large dataset that keeps improving cannot hide a small one that got worse
    val_select: str = "pooled"
    steps_per_epoch: int = 0  # 0: about one pass over the training QAs, at least 50 steps
    checkpoint_every: int = 1
    val_k: int = 50
    val_max_reference: int = 20000
    val_max_queries: int = 5000
    max_length: int = 256  # concat mode: word pieces per view
    micro_batch: int = 16  # concat mode: GradCache mini-batch
    threads: int = 2
    # auto | cpu | cuda | cuda:N (univar.device). Concat mode trains there; set mode embeds its base there
    # and keeps its small head on the CPU. Not frozen on resume: a run may move between machines.
    device: str = "auto"

    def check(self) -> None:
        if self.mode not in ("set", "concat"):
            raise UnivarError(f"--mode must be set or concat, got {self.mode!r}")
        if self.lam < 1:
            raise UnivarError(f"--lambda must be at least 1, got {self.lam}")
        if self.batching not in BATCHINGS:
            raise UnivarError(f"--batching must be one of {', '.join(BATCHINGS)}, got {self.batching!r}")
        if self.pooling not in ("mean", "attention"):
            raise UnivarError(f"--pooling must be mean or attention, got {self.pooling!r}")
        if self.keep_base < 0:
            raise UnivarError(f"--keep-base must be >= 0, got {self.keep_base}")
        if self.topic_alpha is not None and (self.topic_alpha <= 0 or self.mode != "set"):
            raise UnivarError(f"--topic-alpha must be > 0 and works in set mode only, got {self.topic_alpha}")
        if self.keep_base and self.mode != "set":
            raise UnivarError("--keep-base works in set mode only")
        if self.val_select not in VAL_SELECT:
            raise UnivarError(f"--val-select must be one of {', '.join(VAL_SELECT)}, got {self.val_select!r}")
        if self.epochs < 0 or self.batch_size < 2:
            raise UnivarError("--epochs must be >= 0 and --batch-size >= 2")
        from univar.device import resolve

        resolve(self.device)  # a GPU that is not there is an error now, before data is read


@dataclass
class TrainResult:
    out: Path
    best_epoch: int
    best_score: float | None
    base_score: float | None
    epochs_run: int
    history: list[dict]
    seconds: float


def _fold(questions: pd.Series) -> np.ndarray:
    from univar.evaluate import question_fold

    return np.array([question_fold(q) for q in questions], dtype=np.int64)


def _make_trainer(cfg: TrainConfig, table: pd.DataFrame, train_rows: np.ndarray, ctx: distributed.Dist,
                  progress: bool):
    from univar.qa import qa_texts, question_texts

    texts = qa_texts(table)
    if cfg.mode == "set":
        from univar.model.set_mode import SetTrainer

        questions = question_texts(table) if cfg.topic_alpha is not None else None
        return SetTrainer(cfg, texts, ctx, progress, questions=questions, fit_rows=train_rows)
    from univar.model.concat_mode import ConcatTrainer

    return ConcatTrainer(cfg, texts, ctx, progress)


def _average_gradients(params: list[torch.nn.Parameter], ctx: distributed.Dist) -> None:
    """Data parallelism: every rank steps with the mean gradient (what DDP's reducer does)."""
    if not ctx.enabled:
        return
    import torch.distributed as dist

    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        dist.all_reduce(p.grad)
        p.grad /= ctx.world_size


def _broadcast_parameters(module: torch.nn.Module, ctx: distributed.Dist) -> None:
    if not ctx.enabled:
        return
    import torch.distributed as dist

    for t in list(module.parameters()) + list(module.buffers()):
        dist.broadcast(t.data, 0)


def train(table: pd.DataFrame, cfg: TrainConfig, out: str | Path, resume: bool = False, progress: bool = True,
          report: Callable[[str], None] | None = None) -> TrainResult:
    """Train a UniVaR model on a QA table and write it to ``out`` (see the module docstring)."""
    from univar.evaluate import knn_predict
    from univar.progress import bar
    from univar.qa import class_labels

    cfg.check()
    out = Path(out)
    say = report or (lambda msg: None)
    from univar.device import resolve
    from univar.encoders import use_device
    from univar.progress import event

    device = resolve(cfg.device)
    use_device(cfg.device)  # where the base encoder embeds (set mode's cached vectors), several GPUs too
    ctx = distributed.setup(device if cfg.mode == "concat" else torch.device("cpu"))  # set mode's head: CPU
    started = time.perf_counter()
    try:
        torch.set_num_threads(max(1, cfg.threads // ctx.world_size))
        labels = class_labels(table).to_numpy()
        folds = _fold(table["question"])
        trainable = ~np.isin(folds, cfg.exclude_folds) & (folds != cfg.val_fold)
        train_rows = np.flatnonzero(trainable)
        val_rows = np.flatnonzero(folds == cfg.val_fold) if cfg.val_fold >= 0 else np.zeros(0, dtype=np.int64)
        if len(set(labels[train_rows])) < 2:
            raise UnivarError(f"training needs at least 2 (model, language) classes outside the held-out folds; "
                              f"found {len(set(labels[train_rows]))}")
        validate = len(val_rows) > 0 and len(set(labels[val_rows])) >= 2
        if not validate and cfg.val_fold >= 0:
            say(f"note: question fold {cfg.val_fold} holds fewer than 2 classes; no validation or early stopping")

        vrng = np.random.default_rng(cfg.seed + 7)
        ref_rows = train_rows if len(train_rows) <= cfg.val_max_reference else np.sort(
            vrng.choice(train_rows, cfg.val_max_reference, replace=False))
        query_rows = val_rows if len(val_rows) <= cfg.val_max_queries else np.sort(
            vrng.choice(val_rows, cfg.val_max_queries, replace=False))

        torch.manual_seed(cfg.seed)  # identical initial weights on every rank
        trainer = _make_trainer(cfg, table, train_rows, ctx, progress and ctx.main)
        module = trainer.module
        _broadcast_parameters(module, ctx)
        params = [p for p in module.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        sampler = ViewSampler(labels[train_rows], cfg.lam, cfg.batch_size, cfg.batching,
                              seed=cfg.seed * 1000 + ctx.rank)
        per_step = 2 * sampler.batch_size * ctx.world_size * (cfg.lam + 1) / 2
        steps = cfg.steps_per_epoch or max(50, math.ceil(len(train_rows) / per_step))
        if ctx.main:
            event("train_start", mode=cfg.mode, device=str(ctx.device), world_size=ctx.world_size,
                  n_train=int(len(train_rows)), n_val=int(len(val_rows)), classes=len(sampler.class_names),
                  steps_per_epoch=steps, epochs=cfg.epochs)

        datasets = table["dataset"].to_numpy() if "dataset" in table.columns else None
        groups = sorted(set(datasets[query_rows])) if datasets is not None else []
        if cfg.val_select == "mean-gain" and len(groups) < 2:
            raise UnivarError("--val-select mean-gain needs held-out QAs of at least 2 datasets (DATA...)")

        def score() -> dict:
            """Validation scores of the current weights; the selection value is filled in by ``select``."""
            if not validate or not ctx.main:
                return {"val_knn_acc": None}
            ref, qry = trainer.embed_rows(ref_rows), trainer.embed_rows(query_rows)
            hit = knn_predict(ref, labels[ref_rows], qry, cfg.val_k) == labels[query_rows]
            row = {"val_knn_acc": float(hit.mean())}
            if len(groups) > 1:
                row["val_knn_acc_by_dataset"] = {g: float(hit[datasets[query_rows] == g].mean()) for g in groups}
            return row

        def select(row: dict, base: dict) -> float | None:
            if row["val_knn_acc"] is None or cfg.val_select == "pooled":
                return row["val_knn_acc"]
            now, then = row["val_knn_acc_by_dataset"], base["val_knn_acc_by_dataset"]
            return float(np.mean([now[g] / max(then[g], 1e-9) for g in groups]))

        def model_config(extra: dict) -> dict:
            return {"format": "univar", "version": io.FORMAT_VERSION, **trainer.config(), "lambda": cfg.lam,
                    "training": {**asdict(cfg), "data": table.attrs.get("source", ""), "n_qas": int(len(table)),
                                 "n_train": int(len(train_rows)), "n_val": int(len(val_rows)),
                                 "classes": sampler.class_names, "world_size": ctx.world_size},
                    **extra}

        def save_best(epoch: int, value: float | None, history: list[dict]) -> None:
            out.mkdir(parents=True, exist_ok=True)
            trainer.save_weights(out)
            io.write_json(out / io.CONFIG, model_config({"validation": {
                "metric": (f"knn@{cfg.val_k} acc on question fold {cfg.val_fold}" if cfg.val_select == "pooled" else
                           f"mean over datasets of knn@{cfg.val_k} acc / base acc on question fold {cfg.val_fold}"),
                "best_epoch": epoch,
                "best": value, "history": history}}))

        def checkpoint(epoch: int, global_step: int, best: float, best_epoch: int, bad: int,
                       history: list[dict]) -> None:
            tensors = {f"model.{k}": v for k, v in module.state_dict().items()}
            opt_tensors, groups = io.optimizer_tensors(optimizer)
            tensors.update(opt_tensors)
            tensors["rng.torch"] = torch.get_rng_state()
            if ctx.device.type == "cuda":  # dropout on a GPU draws from that device's generator
                tensors["rng.cuda"] = torch.cuda.get_rng_state(ctx.device)
            io.save_checkpoint(out, tensors, {"epoch": epoch, "global_step": global_step, "best": best,
                                              "best_epoch": best_epoch, "bad_epochs": bad, "history": history,
                                              "sampler": sampler.state(), "param_groups": groups,
                                              "config": asdict(cfg), "world_size": ctx.world_size})

        def describe(row: dict) -> str:
            text = f"val k-NN acc {row['val_knn_acc']:.4f}"
            for g, acc in row.get("val_knn_acc_by_dataset", {}).items():
                text += f", {g} {acc:.4f}"
            return text + (f", mean gain {row['val_score']:.4f}" if cfg.val_select == "mean-gain" else "")

        history: list[dict] = []
        start_epoch, global_step, best, best_epoch, bad = 0, 0, -1.0, 0, 0
        base_score: float | None = None
        if resume:
            tensors, state = io.load_checkpoint(out)
            old = state.get("config", {})
            changed = [k for k in FROZEN_ON_RESUME if k in old and old[k] != asdict(cfg)[k]]
            if changed:
                raise UnivarError(f"cannot resume {out} with different settings: {', '.join(changed)} "
                                  f"(was {', '.join(f'{k}={old[k]!r}' for k in changed)})")
            if state.get("world_size", 1) != ctx.world_size:
                raise UnivarError(f"{out} was trained with {state.get('world_size')} processes; resume with as many")
            module.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
            io.restore_optimizer(optimizer, tensors, state["param_groups"])
            sampler.restore(state["sampler"])
            torch.set_rng_state(tensors["rng.torch"])
            if "rng.cuda" in tensors and ctx.device.type == "cuda":
                torch.cuda.set_rng_state(tensors["rng.cuda"], ctx.device)
            if ctx.enabled:  # each rank's own RNG streams were not saved; derive them from the epoch
                torch.manual_seed(cfg.seed + 1 + ctx.rank + 1000 * state["epoch"])
            start_epoch, global_step = state["epoch"], state["global_step"]
            best, best_epoch, bad, history = state["best"], state["best_epoch"], state["bad_epochs"], state["history"]
            base_score = history[0].get("val_score", history[0].get("val_knn_acc")) if history else None
            say(f"resumed {out} at epoch {start_epoch} (best {best:.4f} at epoch {best_epoch})")
        else:
            torch.manual_seed(cfg.seed + 1 + ctx.rank)  # dropout streams differ per rank
            row = score()
            base_score = row["val_score"] = select(row, row)
            history.append({"epoch": 0, "loss": None, **row})
            if ctx.main and base_score is not None:  # epoch 0, the base encoder, is a candidate
                best = base_score
                save_best(0, base_score, history)
                checkpoint(0, 0, best, 0, 0, history)
                say(f"epoch 0 (base encoder {cfg.base}): {describe(history[0])}")
                event("epoch", **history[0], seconds=round(time.perf_counter() - started, 3))

        stop = bad >= cfg.patience and validate
        todo = max(0, cfg.epochs - start_epoch) * steps
        with bar(todo if (progress and ctx.main and not stop) else 0, f"train {cfg.mode} λ={cfg.lam}", "steps") as advance:
            for epoch in range(start_epoch + 1, cfg.epochs + 1):
                if stop:
                    break
                module.train()
                losses = []
                epoch_started = time.perf_counter()
                for _ in range(steps):
                    lr = cfg.lr * min(1.0, (global_step + 1) / max(1, cfg.warmup_steps))
                    for group in optimizer.param_groups:
                        group["lr"] = lr
                    optimizer.zero_grad(set_to_none=True)
                    losses.append(trainer.step(sampler.sample()))
                    _average_gradients(params, ctx)
                    torch.nn.utils.clip_grad_norm_(params, 1.0)
                    optimizer.step()
                    global_step += 1
                    advance(1)
                row = {"epoch": epoch, "loss": float(np.mean(losses)), **score()}
                value = row["val_score"] = select(row, history[0])
                history.append(row)
                if ctx.main:
                    if value is None or value > best:
                        best, best_epoch, bad = (value if value is not None else best), epoch, 0
                        save_best(epoch, value, history)
                    else:
                        bad += 1
                        io.write_json(out / io.CONFIG, {**io.read_config(out), "validation": {
                            **io.read_config(out)["validation"], "history": history}})
                    seconds = time.perf_counter() - epoch_started
                    say(f"epoch {epoch}: loss {row['loss']:.4f}"
                        + (f", {describe(row)} (best {best:.4f} at epoch {best_epoch})" if value is not None else "")
                        + f"; {seconds:.1f}s")
                    event("epoch", **row, best=best if value is not None else None, seconds=round(seconds, 3))
                    if epoch % cfg.checkpoint_every == 0 or epoch == cfg.epochs:
                        checkpoint(epoch, global_step, best, best_epoch, bad, history)
                stop = validate and distributed.broadcast_float(float(bad >= cfg.patience), ctx) > 0.5
                if stop and ctx.main:
                    checkpoint(epoch, global_step, best, best_epoch, bad, history)
                    say(f"early stop: no better validation score for {cfg.patience} epochs")
                    event("early_stop", epoch=epoch, patience=cfg.patience)
        ctx.barrier()
        return TrainResult(out=out, best_epoch=best_epoch, best_score=best if validate else None,
                           base_score=base_score, epochs_run=len(history) - 1, history=history,
                           seconds=time.perf_counter() - started)
    finally:
        distributed.teardown(ctx)
