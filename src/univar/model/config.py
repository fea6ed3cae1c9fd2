"""Every setting of a training run (:class:`TrainConfig`), checked before any data is read.

Torch-free, so that the command line can read the settings, their flags and their help without loading torch.
Each field says the rest about itself in its metadata: the ``univar train`` flag that sets it and that flag's help
(``univar.commands.train`` spells the options out; tests/test_train_config.py holds them to the fields one to one)
and whether a resumed run must keep it (``FROZEN_ON_RESUME`` is read from there).
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields

from univar.device import resolve
from univar.errors import SettingError
from univar.model.views import BATCHINGS

VAL_SELECT = ("pooled", "mean-gain")


def _setting(default=MISSING, *, help: str, cli: str | None = None, frozen: bool = False, factory=None):
    """A :class:`TrainConfig` field: its default, a one-line ``help``, ``cli`` the ``univar train`` flag that
    sets it (None: Python only; then ``help`` is the field's documentation) and ``frozen``: a resumed run must
    keep its value (``FROZEN_ON_RESUME``)."""
    metadata = {"cli": cli, "help": help, "frozen_on_resume": frozen}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass
class TrainConfig:
    """Every setting of a training run, in one object that the model directory records and a resume checks.

    Pass the fields to :func:`univar.train` as keywords, or build one for
    :func:`univar.model.train.train_table`; :meth:`check`
    validates them before any data is read. Each field documents itself in its metadata
    (``dataclasses.fields(TrainConfig)``: ``help``, the ``univar train`` flag ``cli``, and whether a resumed run
    must keep it); ``univar train --help`` prints the same help. The settings most runs change:

    Parameters
    ----------
    mode : str
        ``"set"``: a head over the frozen base encoder's cached per-QA vectors (fast, CPU-friendly), or
        ``"concat"``: the paper's, the base transformer fine-tuned on joined QA texts.
    lam : int
        Largest view size (the paper's lambda): each view holds 1..lam QAs of one LLM.
    base : str
        The base encoder: ``minilm``, ``e5-small``, ``use-multilingual``, ``minilm-int8``, several joined with
        ``+``, or a sentence-transformers folder.
    epochs : int
        Most epochs; early stopping (``patience``) may end sooner.
    keep_base : float
        Set mode: weight of the base vector kept beside the head's, so unseen LLMs keep the base's geometry.
    topic_alpha : float or None
        Set mode: remove what the question alone predicts (ridge strength); None: off.
    seed : int
        Seed of the weights, the views and dropout.
    device : str
        ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
    """

    mode: str = _setting("set", cli="--mode", frozen=True,
                         help="set (head over cached per-QA embeddings) or concat (the paper's: joined texts, "
                              "fine-tuned).")
    lam: int = _setting(5, cli="--lambda", frozen=True,
                        help="Largest view size; sizes are drawn uniformly from 1..lambda.")
    base: str = _setting("minilm", cli="--base", frozen=True,
                         help="Base encoder: minilm, e5-small, use-multilingual, minilm-int8, several joined with + "
                              "(minilm+use-multilingual, the shipped model's) or a sentence-transformers folder.")
    epochs: int = _setting(60, cli="--epochs", help="Most epochs (early stopping may end sooner).")
    batch_size: int = _setting(256, cli="--batch-size", frozen=True, help="View pairs per step and process.")
    lr: float = _setting(1e-3, cli="--lr", frozen=True, help="AdamW learning rate.")
    weight_decay: float = _setting(0.01, frozen=True, help="AdamW weight decay.")
    warmup_steps: int = _setting(20, help="Learning-rate warm-up: linear over this many steps.")
    hidden: int = _setting(1024, cli="--hidden", frozen=True, help="Set mode: hidden width of the residual head.")
    dropout: float = _setting(0.1, cli="--dropout", frozen=True, help="Set mode: dropout in the head.")
    pooling: str = _setting("mean", cli="--pooling", frozen=True,
                            help="Set mode: mean or attention pooling of a view.")
    # set mode: QA vector = [keep_base * base, head], normalised (heads.SetViewEncoder)
    keep_base: float = _setting(0.0, cli="--keep-base", frozen=True,
                                help="Set mode: each QA vector is w * base beside the head (w = this); "
                                     "0 = the head alone. Keeps the base's geometry for unseen LLMs.")
    # set mode: remove what the question alone predicts, ridge strength alpha (heads.TopicRemoval); None: off
    topic_alpha: float | None = _setting(None, cli="--topic-alpha", frozen=True,
                                         help="Set mode: remove what the question alone predicts (a ridge map of "
                                              "this strength, fitted on the training QAs) before the head; the "
                                              "shipped model uses 1.")
    batching: str = _setting("mask", cli="--batching", frozen=True,  # see views.ViewSampler
                             help="mask (same-class negatives masked), class (one pair per class per batch) or "
                                  "none (the paper's).")
    symmetric: bool = _setting(False, cli="--symmetric", frozen=True, help="Symmetric InfoNCE (both directions).")
    learnable_scale: bool = _setting(False, cli="--learnable-scale", frozen=True,
                                     help="Learn the logit scale (starts at 50).")
    scale: float = _setting(50.0, frozen=True, help="InfoNCE logit scale (where it starts with learnable_scale).")
    seed: int = _setting(0, cli="--seed", frozen=True, help="Random seed (weights, views, dropout).")
    val_fold: int = _setting(1, cli="--val-fold", frozen=True,
                             help="Question fold held out for validation and early stopping (-1: none).")
    exclude_folds: list[int] = _setting(cli="--exclude-fold", frozen=True, factory=lambda: [0],
                                        help="Question folds never trained on (default 0, the test fold).")
    patience: int = _setting(8, cli="--patience", help="Early stopping: epochs without a better validation score.")
    # 0: about one pass over the training QAs, at least 50 steps
    steps_per_epoch: int = _setting(0, cli="--steps-per-epoch", help="0: about one pass over the training QAs.")
    checkpoint_every: int = _setting(1, help="Write a checkpoint every this many epochs (and after the last).")
    val_k: int = _setting(50, help="Validation: k of the k-NN.")
    val_max_reference: int = _setting(20000, help="Validation: at most this many training QAs as k-NN neighbours "
                                                  "(a seeded sample).")
    val_max_queries: int = _setting(5000, help="Validation: at most this many held-out QAs scored (a seeded sample).")
    max_length: int = _setting(256, cli="--max-length", frozen=True, help="Concat mode: word pieces per view.")
    micro_batch: int = _setting(16, cli="--micro-batch", frozen=True, help="Concat mode: GradCache mini-batch size.")
    # how validation picks the best epoch: "pooled" k-NN accuracy over all held-out QAs, or "mean-gain", the
    # mean over datasets (the ``dataset`` column read_many adds) of accuracy / the base encoder's accuracy,
    # so that a large dataset that keeps improving cannot hide a small one that got worse
    val_select: str = _setting("pooled", cli="--val-select", frozen=True,
                               help="Best epoch by pooled k-NN accuracy, or mean-gain: the mean over DATA files of "
                                    "accuracy / base accuracy.")
    threads: int = _setting(2, help="torch CPU threads, shared out among the processes of a data-parallel run.")
    # auto | cpu | cuda | cuda:N (univar.device). Concat mode trains there; set mode embeds its base there
    # and keeps its small head on the CPU. Not frozen on resume: a run may move between machines.
    device: str = _setting("auto", cli="--device", help="auto (a GPU when present), cpu, cuda or cuda:N; for the "
                                                        "torch models (minilm, univar, model folders).")
    # set mode: a stance part (univar.model.stance), a transformer fine-tuned on the QAs' stance labels
    stance_weight: float = _setting(0.0, cli="--stance-weight", frozen=True,
                                    help="Set mode: weight w of a stance part in each QA vector, [w * stance, "
                                         "identity]: a transformer fine-tuned so that answers taking the same "
                                         "position on a question sit together (needs a stance column); 0 = none.")
    stance_epochs: float = _setting(2.0, cli="--stance-epochs", frozen=True,
                                    help="Stance part: passes over the questions with two labels or more.")
    stance_layers: int = _setting(2, cli="--stance-layers", frozen=True,
                                  help="Stance part: top transformer layers fine-tuned (0: all).")
    stance_base: str = _setting("minilm", frozen=True, help="Stance part: the sentence-transformer fine-tuned.")
    stance_lr: float = _setting(2e-5, frozen=True, help="Stance part: AdamW learning rate.")
    stance_max_length: int = _setting(128, frozen=True, help="Stance part: word pieces read per QA.")
    stance_tau: float = _setting(0.05, frozen=True, help="Stance part: temperature of the stance contrast.")
    stance_questions: int = _setting(8, frozen=True, help="Stance part: questions per step.")

    def check(self) -> None:
        """Validate the settings before any data is read or any weights load, so a typo costs no time.

        Raises
        ------
        SettingError
            Naming the field (the command line words it with its flag), when a setting is out of range, two
            settings do not go together (``keep_base`` or ``topic_alpha`` outside set mode), or ``device``
            names a missing GPU.
        """
        if self.mode not in ("set", "concat"):
            raise SettingError("mode", f"must be set or concat, got {self.mode!r}")
        if self.lam < 1:
            raise SettingError("lam", f"must be at least 1, got {self.lam}")
        if self.batching not in BATCHINGS:
            raise SettingError("batching", f"must be one of {', '.join(BATCHINGS)}, got {self.batching!r}")
        if self.pooling not in ("mean", "attention"):
            raise SettingError("pooling", f"must be mean or attention, got {self.pooling!r}")
        if self.keep_base < 0:
            raise SettingError("keep_base", f"must be >= 0, got {self.keep_base}")
        if self.topic_alpha is not None and (self.topic_alpha <= 0 or self.mode != "set"):
            raise SettingError("topic_alpha", f"must be > 0 and works in set mode only, got {self.topic_alpha}")
        if self.keep_base and self.mode != "set":
            raise SettingError("keep_base", "works in set mode only")
        if self.stance_weight < 0 or (self.stance_weight and self.mode != "set"):
            raise SettingError("stance_weight", f"must be >= 0 and works in set mode only, got {self.stance_weight}")
        if self.stance_weight and self.stance_epochs <= 0:
            raise SettingError("stance_epochs", f"must be > 0, got {self.stance_epochs}")
        if self.stance_weight and self.stance_layers < 0:
            raise SettingError("stance_layers", f"must be >= 0, got {self.stance_layers}")
        if self.val_select not in VAL_SELECT:
            raise SettingError("val_select", f"must be one of {', '.join(VAL_SELECT)}, got {self.val_select!r}")
        if self.epochs < 0:
            raise SettingError("epochs", f"must be >= 0, got {self.epochs}")
        if self.batch_size < 2:
            raise SettingError("batch_size", f"must be >= 2, got {self.batch_size}")
        resolve(self.device)  # a GPU that is not there is an error now, before data is read (torch loads here)


# Settings that must not change when a run is resumed (epochs and patience may), in field order.
FROZEN_ON_RESUME = tuple(f.name for f in fields(TrainConfig) if f.metadata.get("frozen_on_resume"))
# The ``univar train`` flag of each field that has one, for wording a SettingError (``lam`` -> ``--lambda``).
FLAGS = {f.name: f.metadata["cli"] for f in fields(TrainConfig) if f.metadata.get("cli")}
