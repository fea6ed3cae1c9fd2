"""``univar demo``: the main job on bundled data, offline.

Value identification on bundled ValueBench with every encoder that loads here, on a question sample
that keeps every LLM's answer to each sampled question (so classes stay paired), printed as one table
and written as JSON.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console

from univar.encoders import available_encoders, get_encoder
from univar.errors import UnivarError
from univar.evaluate import results_table, value_identification
from univar.qa import read_qa

log = logging.getLogger("univar")
DEMO_QUESTIONS = 500  # of 1,706: each encoder embeds ~3,000 QAs, a minute or less on 2 cores


def sample_questions(table: pd.DataFrame, n_questions: int | None, seed: int = 0) -> pd.DataFrame:
    """Keep all answers to ``n_questions`` randomly chosen questions (all of them when None)."""
    questions = table["question"].drop_duplicates().to_numpy()
    if n_questions is None or n_questions >= len(questions):
        return table
    keep = set(np.random.default_rng(seed).choice(questions, n_questions, replace=False))
    return table[table["question"].isin(keep)].reset_index(drop=True)


def run_demo(out_dir: Path, per_class: int | None = None, console: Console | None = None,
             encoders: list[str] | None = None) -> list[dict]:
    console = console or Console()
    table = sample_questions(read_qa("bundled:valuebench"), per_class or DEMO_QUESTIONS)
    console.print(f"bundled:valuebench: {len(table)} QAs from {table['model'].nunique()} LLMs "
                  f"({table['question'].nunique()} questions)")
    results = []
    for name in encoders or available_encoders():
        try:
            encoder = get_encoder(name)
        except UnivarError as exc:
            log.warning("skipping encoder %s: %s", name, exc)
            continue
        results.append(value_identification(table, encoder, split="random", seed=0))
    console.print(results_table(results, title="demo: which LLM wrote this answer?"))
    out_dir.mkdir(parents=True, exist_ok=True)
    payload = [r.to_json() for r in results]
    (out_dir / "value_id.json").write_text(json.dumps(payload, indent=2) + "\n")
    console.print(f"results written to {out_dir / 'value_id.json'}")
    return payload
