"""The recipe of the shipped default model, shared by ``scripts/train_default.py`` (``make model``) and
``bench/value_id.py`` so that the benchmark measures exactly what is shipped.

Training data: every bundled *value* dataset (ValueBench, FULCRA: 13 LLM classes). MT-bench is left out on
purpose: it is the non-value control, and training on it would teach the head writing style rather than
values (the control check in the benchmark would then be meaningless). Question fold 0 of every dataset
is never trained on (the public test fold); fold 1 is held out for validation and early stopping.
"""

from __future__ import annotations

DEFAULT_DATA = ("bundled:valuebench", "bundled:fulcra")

DEFAULT_CONFIG = dict(
    mode="set", lam=5, base="minilm", epochs=30, batch_size=256, lr=1e-3, weight_decay=0.01, hidden=1024,
    dropout=0.1, pooling="mean", batching="mask", symmetric=False, learnable_scale=False, scale=50.0, seed=0,
    val_fold=1, exclude_folds=[0], patience=8,
)
