"""The recipe of the shipped default model, shared by ``scripts/train_default.py`` (``make model``) and
``bench/value_id.py`` so that the benchmark measures exactly what is shipped.

Training data: every bundled *value* dataset (ValueBench, FULCRA, local-llms: 13 LLM classes plus 12
SmolLM2 (configuration, language) classes, whose diversity is what carries the head to unseen LLMs: in
bench/results/value_id.json a ValueBench-only head reaches FULCRA k-NN 52.5, ValueBench + local-llms 53.9,
minilm 53.9). MT-bench is left out on purpose: it is the non-value control, and training on it would teach the head writing style rather than
values (the control check in the benchmark would then be meaningless). Question fold 0 of every dataset
is never trained on (the public test fold); fold 1 is held out for validation and early stopping.

``keep_base=1.5``: every QA vector is ``[1.5 * minilm, head]`` (see ``heads.SetViewEncoder``). Measured on
fold 0: FULCRA k-NN 40.1 -> 52.3 (minilm 53.9) for 4.5 points of ValueBench (83.2 -> 78.8, still 2.2x the
best baseline), and the generalisation runs improve (trained on ValueBench only -> FULCRA 40.9 -> 52.5-53.7;
FULCRA only -> ValueBench 21.1 -> 27.6, minilm 26.7).
"""

from __future__ import annotations

DEFAULT_DATA = ("bundled:valuebench", "bundled:fulcra", "bundled:local-llms")

DEFAULT_CONFIG = dict(
    mode="set", lam=5, base="minilm", epochs=60, batch_size=256, lr=1e-3, weight_decay=0.01, hidden=1024,
    dropout=0.1, pooling="mean", keep_base=1.5, batching="mask", symmetric=False, learnable_scale=False,
    scale=50.0, seed=0, val_fold=1, exclude_folds=[0], patience=8,
)
