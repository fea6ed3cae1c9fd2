"""Bundled question banks: value-eliciting questions ready for ``univar elicit --questions bundled:<name>``.

- ``valuebench-questions``: the 1,706 distinct advice-style questions of ValueBench (44 inventories), each
  with the value and inventory item it probes (MIT, (c) 2024 Value4AI).
- ``valueconsistency``: ValueConsistency questions (controversial and uncontroversial topics, PVQ items) in
  English, Chinese, German and Japanese, with their English originals (``original_en``), paraphrase groups
  (``group``, ``rephrase``) and topics (MIT, (c) 2024 Jared Moore; licence in data/licenses).
"""

from __future__ import annotations

import pandas as pd

from univar.data import BUNDLED
from univar.elicit import load_questions
from univar.errors import UnivarError

BANKS = ("valuebench-questions", "valueconsistency")


def load_bank(name: str) -> pd.DataFrame:
    """A bundled question bank (``bundled:`` prefix optional) as a questions table ready for ``univar elicit``."""
    name = name.removeprefix("bundled:")
    if name not in BANKS:
        raise UnivarError(f"unknown question bank {name!r} (known: {', '.join(BANKS)})")
    return load_questions(f"bundled:{name}")


def bank_summary() -> list[tuple[str, int, str, str]]:
    """(name, questions, languages, description) per bank."""
    rows = []
    for name in BANKS:
        table = load_bank(name)
        counts = table["lang"].value_counts()
        langs = ", ".join(f"{lang} {n}" for lang, n in counts.items())
        rows.append((name, len(table), langs, BUNDLED[name][1]))
    return rows
