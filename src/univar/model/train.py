"""The training loop shared by both modes: sampling, optimisation, validation, early stopping,
checkpoints and resume, single process or data-parallel under torchrun.

Validation is value identification on held-out *questions*: QAs whose question is in ``val_fold`` are
never trained on; each epoch their vectors are classified by k-NN against the training QAs' vectors,
which is exactly the test that ``univar evaluate value-id --split question`` runs. The model written
to the output directory is always the best one so far, and epoch 0 (before any update) is a candidate:
since the head starts as the identity, the result can never score below its base encoder there.

Where a run writes, and whether it may, is decided before any data is read (:mod:`univar.model.runs`); every
setting is a field of :class:`~univar.model.config.TrainConfig`. Two entry points: :func:`train` (``univar.train``)
reads the data and returns the model loaded; :func:`train_table` trains on a table with a config, for the command
line and the benchmarks.
"""

from __future__ import annotations

import logging
import math
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from univar import files
from univar.device import resolve
from univar.errors import SettingError, UnivarError
from univar.evaluate import ValueIdentification, knn_k
from univar.model import distributed, io
from univar.model.concat_mode import ConcatTrainer
from univar.model.config import FROZEN_ON_RESUME, TrainConfig
from univar.model.runs import UNTRAINED, RunPlan, TrainResult, finished_result, model_card, plan_run, staging_of
from univar.model.set_mode import SetTrainer
from univar.model.univar import UniVaR
from univar.model.views import ViewSampler
from univar.progress import bar, event
from univar.qa import class_labels, qa_texts, question_folds, question_texts, read_many
from univar.seen import write_seen

log = logging.getLogger("univar")

@dataclass
class _RunState:
    """Where a run stands: what a checkpoint saves (beside the tensors and the sampler) and resume restores."""
    epoch: int = 0  # the last epoch done
    global_step: int = 0
    best: float = -1.0  # the best selection value so far (-1: none yet)
    best_epoch: int = 0
    bad: int = 0  # epochs since the best
    history: list[dict] = field(default_factory=list)  # one row per epoch, epoch 0 (the base encoder) first


def epoch_steps(n_train: int, batch_size: int, lam: int, world_size: int = 1) -> int:
    """Steps of an epoch when ``steps_per_epoch`` is 0: about one pass over the training QAs, at least 50.

    A step draws ``batch_size`` view pairs per process, each view (lam + 1) / 2 QAs on average (sizes 1..lam).
    """
    per_step = 2 * batch_size * world_size * (lam + 1) / 2
    return max(50, math.ceil(n_train / per_step))


def _make_trainer(cfg: TrainConfig, table: pd.DataFrame, train_rows: np.ndarray, ctx: distributed.Dist,
                  progress: bool, out: Path | None = None, report: Callable[[str], None] | None = None):
    texts = qa_texts(table)
    if cfg.mode == "set":
        questions = question_texts(table) if cfg.topic_alpha is not None else None
        return SetTrainer(cfg, texts, ctx, progress, questions=questions, fit_rows=train_rows,
                          table=table if cfg.stance_weight else None, out=out, report=report)
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


class Trainer:
    """One training run of ``cfg`` on ``table`` into ``out`` (see the module docstring).

    Building it splits the QAs by question fold, builds the mode's part (``SetTrainer`` or ``ConcatTrainer``,
    ``self.mode_trainer``), the optimiser and the view sampler; :meth:`run` then scores the base encoder as epoch 0
    (or resumes from ``out``'s checkpoint) and trains epoch by epoch until ``cfg.epochs`` or early stopping.
    Every rank of a data-parallel run builds one; only the main rank validates, saves and reports. It writes to
    ``work`` (``out``, or beside it for a run that replaces a model: :func:`plan_run`) and, once done, puts
    the model card there and swaps ``work`` in as ``out``.
    """

    def __init__(self, table: pd.DataFrame, cfg: TrainConfig, out: Path, ctx: distributed.Dist,
                 progress: bool = True, report: Callable[[str], None] | None = None,
                 plan: RunPlan | None = None):
        self.started = time.perf_counter()
        self.table, self.cfg, self.out, self.ctx, self.progress = table, cfg, out, ctx, progress
        self.plan = plan or RunPlan(out, out)
        self.work = self.plan.work
        self.report = report
        self.say = report or (lambda msg: None)
        self.complete_saved = False  # whether the checkpoint on disk says the run is done
        torch.set_num_threads(max(1, cfg.threads // ctx.world_size))
        self._split()
        self._build()
        self.datasets = table["dataset"].to_numpy() if "dataset" in table.columns else None
        self.groups = sorted(set(self.datasets[self.query_rows])) if self.datasets is not None else []
        if cfg.val_select == "mean-gain" and len(self.groups) < 2:
            raise SettingError("val_select", "mean-gain needs held-out QAs of at least 2 datasets (DATA...)")
        self.state = _RunState()
        self.base_score: float | None = None

    def _split(self) -> None:
        """Training rows (outside ``exclude_folds`` and ``val_fold``), validation rows, and the (sampled)
        reference and query rows of the validation k-NN."""
        cfg = self.cfg
        self.labels = labels = class_labels(self.table).to_numpy()
        folds = question_folds(self.table["question"])
        trainable = ~np.isin(folds, cfg.exclude_folds) & (folds != cfg.val_fold)
        self.train_rows = train_rows = np.flatnonzero(trainable)
        self.val_rows = val_rows = (np.flatnonzero(folds == cfg.val_fold) if cfg.val_fold >= 0
                                    else np.zeros(0, dtype=np.int64))
        if len(set(labels[train_rows])) < 2:
            raise UnivarError(f"training needs at least 2 (model, language) classes outside the held-out folds; "
                              f"found {len(set(labels[train_rows]))}")
        self.validate = len(val_rows) > 0 and len(set(labels[val_rows])) >= 2
        if not self.validate and cfg.val_fold >= 0:
            self.say(f"note: question fold {cfg.val_fold} holds fewer than 2 classes; no validation or early stopping")
        vrng = np.random.default_rng(cfg.seed + 7)
        self.ref_rows = train_rows if len(train_rows) <= cfg.val_max_reference else np.sort(
            vrng.choice(train_rows, cfg.val_max_reference, replace=False))
        self.query_rows = val_rows if len(val_rows) <= cfg.val_max_queries else np.sort(
            vrng.choice(val_rows, cfg.val_max_queries, replace=False))
        # k at most what the training side allows, lowered as `univar evaluate value-id` lowers it (knn_k): with
        # k above the training QAs every held-out QA has the same neighbours and validation sits at chance
        self.val_k = max(1, cfg.val_k)
        if self.validate:
            self.val_k, notes = knn_k(self.val_k, labels[self.ref_rows], labels[self.query_rows])
            if self.val_k != max(1, cfg.val_k):
                self._note(f"warning: validation k-NN: {notes[0]}")

    def _note(self, message: str) -> None:
        """A line the user should read whatever the progress setting (the main rank's): to ``report``, or as
        a logged warning when there is none (the Python API)."""
        if self.ctx.main:
            (self.report or log.warning)(message)

    def _build(self) -> None:
        """The mode's part with identical initial weights on every rank, the optimiser and the sampler."""
        cfg, ctx = self.cfg, self.ctx
        torch.manual_seed(cfg.seed)  # identical initial weights on every rank
        self.mode_trainer = _make_trainer(cfg, self.table, self.train_rows, ctx, self.progress and ctx.main,
                                          self.work, self.say)
        self.module = self.mode_trainer.module
        _broadcast_parameters(self.module, ctx)
        self.params = [p for p in self.module.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(self.params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.sampler = ViewSampler(self.labels[self.train_rows], cfg.lam, cfg.batch_size, cfg.batching,
                                   seed=cfg.seed * 1000 + ctx.rank)
        self.steps = cfg.steps_per_epoch or epoch_steps(len(self.train_rows), self.sampler.batch_size, cfg.lam,
                                                        ctx.world_size)
        if ctx.main:
            event("train_start", mode=cfg.mode, device=str(ctx.device), world_size=ctx.world_size,
                  n_train=int(len(self.train_rows)), n_val=int(len(self.val_rows)),
                  classes=len(self.sampler.class_names), steps_per_epoch=self.steps, epochs=cfg.epochs)

    def run(self, resume: bool = False) -> TrainResult:
        """Epoch 0 (or resume), then epochs until ``cfg.epochs`` or early stopping; the result on every rank."""
        cfg, ctx = self.cfg, self.ctx
        if resume:
            self._resume()
        else:
            self._start()
        state = self.state
        stop = state.bad >= cfg.patience and self.validate
        todo = max(0, cfg.epochs - state.epoch) * self.steps
        with bar(todo if (self.progress and ctx.main and not stop) else 0, f"train {cfg.mode} λ={cfg.lam}",
                 "steps") as advance:
            for epoch in range(state.epoch + 1, cfg.epochs + 1):
                if stop:
                    break
                epoch_started = time.perf_counter()
                row = {"epoch": epoch, "loss": self._epoch(advance), **self._validate()}
                stop = self._end_epoch(row, epoch_started)
        if ctx.main:
            self._finish()
        ctx.barrier()
        return TrainResult(out=self.out, best_epoch=state.best_epoch, best_score=state.best if self.validate else None,
                           base_score=self.base_score, epochs_run=len(state.history) - 1, history=state.history,
                           seconds=time.perf_counter() - self.started)

    def _start(self) -> None:
        """Epoch 0: the base encoder (the head is the identity) is scored and, validated, is the first best."""
        cfg, ctx, state = self.cfg, self.ctx, self.state
        torch.manual_seed(cfg.seed + 1 + ctx.rank)  # dropout streams differ per rank
        row = self._validate()
        self.base_score = row["val_score"] = self._select(row, row)
        state.history.append({"epoch": 0, "loss": None, **row})
        if ctx.main and self.base_score is not None:
            state.best = self.base_score
            self._checkpoint(complete=cfg.epochs == 0)  # first: a kill before the model files, resume mends
            self._save_best(0, self.base_score)
            self.say(f"epoch 0 (base encoder {cfg.base}): {self._describe(state.history[0])}")
            event("epoch", **state.history[0], seconds=round(time.perf_counter() - self.started, 3))

    def _epoch(self, advance: Callable[[int], None]) -> float:
        """One epoch of optimisation steps (warm-up, mean gradient over ranks, clipping); the mean loss."""
        cfg, state = self.cfg, self.state
        self.module.train()
        losses = []
        for _ in range(self.steps):
            lr = cfg.lr * min(1.0, (state.global_step + 1) / max(1, cfg.warmup_steps))
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            self.optimizer.zero_grad(set_to_none=True)
            losses.append(self.mode_trainer.step(self.sampler.sample()))
            _average_gradients(self.params, self.ctx)
            torch.nn.utils.clip_grad_norm_(self.params, 1.0)
            self.optimizer.step()
            state.global_step += 1
            advance(1)
        return float(np.mean(losses))

    def _validate(self) -> dict:
        """Validation scores of the current weights (main rank only): the held-out QAs classified by k-NN
        against the training QAs, scored by ``ValueIdentification.score_knn`` as ``univar evaluate value-id``
        scores (``val_k`` lowered to what the training QAs allow, as there; below 1 it counts as 1); ``_select``
        adds the selection value."""
        if not self.validate or not self.ctx.main:
            return {"val_knn_acc": None}
        ref, qry = self.mode_trainer.embed_rows(self.ref_rows), self.mode_trainer.embed_rows(self.query_rows)
        knn = ValueIdentification(k=self.val_k).score_knn(ref, self.labels[self.ref_rows], qry,
                                                          self.labels[self.query_rows])
        row = {"val_knn_acc": knn.acc}
        if len(self.groups) > 1:
            in_group = self.datasets[self.query_rows]
            row["val_knn_acc_by_dataset"] = {g: float(knn.correct[in_group == g].mean()) for g in self.groups}
        return row

    def _select(self, row: dict, base: dict) -> float | None:
        """The value that picks the best epoch: pooled accuracy, or the mean over datasets of the gain over
        ``base`` (epoch 0's row)."""
        if row["val_knn_acc"] is None or self.cfg.val_select == "pooled":
            return row["val_knn_acc"]
        now, then = row["val_knn_acc_by_dataset"], base["val_knn_acc_by_dataset"]
        return float(np.mean([now[g] / max(then[g], 1e-9) for g in self.groups]))

    def _end_epoch(self, row: dict, epoch_started: float) -> bool:
        """Record an epoch's row: checkpoint, keep the model if it is the best, report; True: stop early."""
        cfg, ctx, state = self.cfg, self.ctx, self.state
        epoch = state.epoch = row["epoch"]
        value = row["val_score"] = self._select(row, state.history[0])
        state.history.append(row)
        improved = value is None or value > state.best
        if ctx.main:
            if improved:
                state.best, state.best_epoch, state.bad = (value if value is not None else state.best), epoch, 0
            else:
                state.bad += 1
        stop = self.validate and distributed.broadcast_float(float(state.bad >= cfg.patience), ctx) > 0.5
        if not ctx.main:
            return stop
        final = stop or epoch == cfg.epochs
        if epoch % cfg.checkpoint_every == 0 or final:
            self._checkpoint(complete=final)  # before the model files: a kill between them, resume mends
        if improved:
            self._save_best(epoch, value)
        else:
            config = io.read_config(self.work)
            io.write_json(self.work / io.CONFIG, {**config, "validation": {**config["validation"],
                                                                            "history": state.history}})
        seconds = time.perf_counter() - epoch_started
        best = f" (best {state.best:.4f} at epoch {state.best_epoch})"
        self.say(f"epoch {epoch}: loss {row['loss']:.4f}"
                 + (f", {self._describe(row)}{best}" if value is not None else "") + f"; {seconds:.1f}s")
        event("epoch", **row, best=state.best if value is not None else None, seconds=round(seconds, 3))
        if stop:
            self.say(f"early stop: no better validation score for {cfg.patience} epochs")
            event("early_stop", epoch=epoch, patience=cfg.patience)
        return stop

    def _finish(self) -> None:
        """The run is done (main rank): the last checkpoint says so, the model card is written, and a run that
        replaces a model swaps its directory in as ``out`` in one step (the old model is kept until then)."""
        state = self.state
        if not self.complete_saved:  # no validation and no epoch, or a resumed run with nothing left to do
            self._checkpoint(complete=True)
        if not (self.work / io.CONFIG).is_file():
            self._save_best(state.epoch, None)
        untrained = self.validate and len(state.history) > 1 and state.best_epoch == 0
        if untrained:
            self._note("note: " + UNTRAINED.format(n_train=len(self.train_rows),
                                                   n_classes=len(self.sampler.class_names)))
        files.atomic_write(self.work / io.CARD, model_card(io.read_config(self.work), untrained))
        if self.work != self.out:
            files.replace_dir(self.work, self.out)

    def _describe(self, row: dict) -> str:
        """An epoch line's validation part."""
        text = f"val k-NN acc {row['val_knn_acc']:.4f}"
        for g, acc in row.get("val_knn_acc_by_dataset", {}).items():
            text += f", {g} {acc:.4f}"
        return text + (f", mean gain {row['val_score']:.4f}" if self.cfg.val_select == "mean-gain" else "")

    def _model_config(self, extra: dict) -> dict:
        """``univar.json``: the mode's model config, the training settings and data, and ``extra``."""
        cfg = self.cfg
        training = {**asdict(cfg), "data": self.table.attrs.get("source", ""), "n_qas": int(len(self.table)),
                    "n_train": int(len(self.train_rows)), "n_val": int(len(self.val_rows)),
                    "classes": self.sampler.class_names, "world_size": self.ctx.world_size}
        return {"format": "univar", "version": io.FORMAT_VERSION, **self.mode_trainer.config(), "lambda": cfg.lam,
                "training": training, **extra}

    def _save_best(self, epoch: int, value: float | None) -> None:
        """Write the current weights and ``univar.json`` to ``work``: the model of ``epoch`` is the best so far."""
        cfg = self.cfg
        self.work.mkdir(parents=True, exist_ok=True)
        self.mode_trainer.save_weights(self.work)
        metric = (f"knn@{self.val_k} acc on question fold {cfg.val_fold}" if cfg.val_select == "pooled" else
                  f"mean over datasets of knn@{self.val_k} acc / base acc on question fold {cfg.val_fold}")
        io.write_json(self.work / io.CONFIG, self._model_config({"validation": {
            "metric": metric, "best_epoch": epoch, "best": value, "history": self.state.history}}))
        write_seen(self.work, self.table["question"].iloc[self.train_rows], self.table["question"].iloc[self.val_rows])

    def _checkpoint(self, complete: bool = False) -> None:
        """Save what resuming needs to continue exactly: weights, optimiser, RNG and sampler states, progress;
        ``complete``: the run is done. A run that replaces a model records that model's digest
        (:func:`_stopped_run`)."""
        ctx, state = self.ctx, self.state
        tensors = {f"model.{k}": v for k, v in self.module.state_dict().items()}
        opt_tensors, param_groups = io.optimizer_tensors(self.optimizer)
        tensors.update(opt_tensors)
        tensors["rng.torch"] = torch.get_rng_state()
        if ctx.device.type == "cuda":  # dropout on a GPU draws from that device's generator
            tensors["rng.cuda"] = torch.cuda.get_rng_state(ctx.device)
        io.save_checkpoint(self.work, tensors, {
            "epoch": state.epoch, "global_step": state.global_step, "best": state.best,
            "best_epoch": state.best_epoch, "bad_epochs": state.bad, "history": state.history,
            "sampler": self.sampler.state(), "param_groups": param_groups, "config": asdict(self.cfg),
            "world_size": ctx.world_size, "complete": complete,
            **({"replaces": self.plan.replaces} if self.work != self.out else {})})
        self.complete_saved = complete

    def _resume(self) -> None:
        """Continue from the checkpoint in ``work``, refusing one written with other ``FROZEN_ON_RESUME`` settings or
        another number of processes."""
        cfg, ctx, out = self.cfg, self.ctx, self.out
        tensors, saved = io.load_checkpoint(self.work)
        old, now = saved.get("config", {}), asdict(cfg)
        changed = [k for k in FROZEN_ON_RESUME if k in old and old[k] != now[k]]
        if changed:
            raise UnivarError(f"cannot resume {out} with different settings: {', '.join(changed)} "
                              f"(was {', '.join(f'{k}={old[k]!r}' for k in changed)})")
        if saved.get("world_size", 1) != ctx.world_size:
            raise UnivarError(f"{out} was trained with {saved.get('world_size')} processes; resume with as many")
        self.module.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        io.restore_optimizer(self.optimizer, tensors, saved["param_groups"])
        self.sampler.restore(saved["sampler"])
        torch.set_rng_state(tensors["rng.torch"])
        if "rng.cuda" in tensors and ctx.device.type == "cuda":
            torch.cuda.set_rng_state(tensors["rng.cuda"], ctx.device)
        if ctx.enabled:  # each rank's own RNG streams were not saved; derive them from the epoch
            torch.manual_seed(cfg.seed + 1 + ctx.rank + 1000 * saved["epoch"])
        self.state = state = _RunState(epoch=saved["epoch"], global_step=saved["global_step"], best=saved["best"],
                                       best_epoch=saved["best_epoch"], bad=saved["bad_epochs"],
                                       history=saved["history"])
        first = state.history[0] if state.history else {}
        self.base_score = first.get("val_score", first.get("val_knn_acc"))
        if ctx.main and state.best_epoch == state.epoch:  # the checkpoint is the best model: a kill may have
            self._save_best(state.epoch, state.best if self.validate else None)  # come before its files
        self.say(f"resumed {out} at epoch {state.epoch} (best {state.best:.4f} at epoch {state.best_epoch})")


def train_table(table: pd.DataFrame, cfg: TrainConfig, out: str | Path, resume: bool = False, progress: bool = True,
                report: Callable[[str], None] | None = None, overwrite: bool = False) -> TrainResult:
    """Train a UniVaR model on a QA table and write it to ``out`` (see the module docstring): ``overwrite``
    lets it replace a model there, ``resume`` continues a stopped run (a finished one: one line, no training)."""
    cfg.check()
    plan = plan_run(out, cfg, resume=resume, overwrite=overwrite)
    if plan.finished is not None:
        (report or log.warning)(plan.finished)
        return finished_result(plan)
    device = resolve(cfg.device)  # the base encoder embeds there too (cfg.device), on several GPUs where asked
    ctx = distributed.setup(device if cfg.mode == "concat" else torch.device("cpu"))  # set mode's head: CPU
    try:
        if ctx.main and not resume:  # every rank has planned (setup waits for all): a stale stopped run goes
            shutil.rmtree(staging_of(plan.out), ignore_errors=True)
        trainer = Trainer(table, cfg, plan.out, ctx, progress=progress, report=report, plan=plan)
        return trainer.run(resume)
    finally:
        distributed.teardown(ctx)


def train(data: pd.DataFrame | str | Path | Sequence[str | Path], out: str | Path, *, resume: bool = False,
          overwrite: bool = False, progress: bool = True, **settings: object) -> UniVaR:
    """Train a value encoder on QAs and return it loaded, ready to encode (``univar.train``).

    The model written to ``out`` is the epoch that identified held-out questions' LLMs best (see
    :mod:`univar.model.train`), and ``out`` is a model directory like any other: :meth:`UniVaR.load` reads it.

    Parameters
    ----------
    data : pandas.DataFrame, str, pathlib.Path or Sequence[str or pathlib.Path]
        A QA table, or one or more sources read by :func:`univar.read_many` (``"bundled:valuebench"``,
        file paths).
    out : str or pathlib.Path
        The model directory to write; one that holds a model is refused unless ``overwrite``.
    resume : bool
        Continue a killed run from the checkpoint in ``out``; on a finished run it logs one line, trains
        nothing and returns the model.
    overwrite : bool
        Replace the model in ``out``: the new one is built beside it and swapped in only when complete.
    progress : bool
        Show progress bars and one line per epoch.
    **settings : object
        Any :class:`~univar.model.config.TrainConfig` field by name (``mode="set"``, ``lam=5``,
        ``base="minilm+use-multilingual"``, ``epochs``, ``topic_alpha``, ``keep_base``, ``device="cuda"``, ...);
        the rest keep their defaults. The model returned runs on ``device`` too.

    Returns
    -------
    UniVaR
        The trained model, loaded from ``out``.

    Raises
    ------
    UnivarError
        When a setting is unknown or invalid (:meth:`~univar.model.config.TrainConfig.check`), ``out`` holds
        a model and ``overwrite`` is False (:func:`plan_run`; checked before the data is read), or the data
        cannot be read.
    """
    known = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise UnivarError(f"unknown training setting(s) {', '.join(unknown)} (settings: {', '.join(sorted(known))})")
    cfg = TrainConfig(**settings)
    cfg.check()
    plan = plan_run(out, cfg, resume=resume, overwrite=overwrite)
    if plan.finished is not None:
        log.warning(plan.finished)
        return UniVaR.load(out, device=cfg.device)
    if isinstance(data, pd.DataFrame):
        table = data
    else:
        table = read_many([data] if isinstance(data, (str, Path)) else list(data))
    train_table(table, cfg, out, resume=resume, progress=progress, overwrite=overwrite)
    return UniVaR.load(out, device=cfg.device)
