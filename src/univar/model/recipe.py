"""The recipe of the shipped default model, shared by ``scripts/train_default.py`` (``make model``) and the
benchmarks (``bench/transfer.py`` trains it once per held-out source), so that they measure what is shipped.

Training data: every bundled *value* source plus local-llms (12 SmolLM2 (configuration, language) classes).
MT-bench is left out on purpose: it is the non-value control, and training on it would teach the head writing
style rather than values. Question fold 0 of every dataset is never trained on (the public test fold); fold 1
is held out for validation and early stopping.

Base ``minilm+use-multilingual`` with ``topic_alpha=1``: each base's vector minus what its question alone
predicts of it (``heads.TopicRemoval``); this, not the head, is what carries to unseen LLMs and sources
(docs/model.md, "Transfer"). ``keep_base=1.5``: every QA vector is ``[1.5 * residual, head]``, because the head
alone falls below the residual on held-out sources. ``hidden=512`` and 30 epochs keep training on 2 cores
within minutes; the numbers live in bench/results/ (transfer.json, value_id.json), not here.
"""

from __future__ import annotations

VALUE_SOURCES = ("valuebench", "fulcra", "donotanswer", "xstest", "moralmachine")
EXTRA_DATA = ("local-llms",)
DEFAULT_DATA = tuple(f"bundled:{name}" for name in VALUE_SOURCES + EXTRA_DATA)

DEFAULT_CONFIG = dict(
    mode="set", lam=5, base="minilm+use-multilingual", topic_alpha=1.0, keep_base=1.5, epochs=30, batch_size=256,
    lr=1e-3, weight_decay=0.01, hidden=512, dropout=0.1, pooling="mean", batching="mask", symmetric=False,
    learnable_scale=False, scale=50.0, seed=0, val_fold=1, exclude_folds=[0], patience=8,
)
