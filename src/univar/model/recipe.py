"""The recipe of the shipped default model, kept as data in ``recipe.json`` beside this file and shared by
``scripts/train_default.py`` (``make model``) and the benchmarks (``bench/transfer.py`` trains it once per
held-out source), so that they measure what is shipped.

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

import json
from pathlib import Path

# recipe.json: the bundled sources trained on and the TrainConfig settings (the reasons are above); the names
# below are how scripts, benchmarks and tests read it
RECIPE_FILE = Path(__file__).with_name("recipe.json")
_RECIPE = json.loads(RECIPE_FILE.read_text(encoding="utf-8"))

VALUE_SOURCES: tuple[str, ...] = tuple(_RECIPE["value_sources"])
EXTRA_DATA: tuple[str, ...] = tuple(_RECIPE["extra_data"])
DEFAULT_DATA = tuple(f"bundled:{name}" for name in VALUE_SOURCES + EXTRA_DATA)

DEFAULT_CONFIG: dict = _RECIPE["config"]
