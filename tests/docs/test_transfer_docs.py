"""The transfer table in README.md and the shipped model card is bench/results/transfer.json rendered, so the
prose cannot drift from the benchmark; and transfer.json holds the rows `make bench` promises."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

from transfer import readme_table  # noqa: E402

from univar.model.recipe import VALUE_SOURCES  # noqa: E402

RESULT = json.loads((ROOT / "bench" / "results" / "transfer.json").read_text())


def test_transfer_json_has_a_row_per_held_out_source_and_the_geometric_mean():
    figures = [r["figure"] for r in RESULT["rows"]]
    for source in VALUE_SOURCES:
        assert sum(f.startswith(f"{source}: univar k-NN / minilm") for f in figures) == 1, source
    mean = [r for r in RESULT["rows"] if r["figure"].startswith("geometric mean")]
    assert mean and mean[0]["target"] == ">= 1.25"
    per_source = [r["ratio"] for r in RESULT["rows"] if "residual" in r]
    assert abs(mean[0]["ratio"] - float(np.exp(np.mean(np.log(per_source))))) < 1e-9


def test_readme_docs_and_model_card_show_the_measured_transfer_table():
    table = readme_table(RESULT["rows"])
    assert table in (ROOT / "README.md").read_text(encoding="utf-8")
    assert table in (ROOT / "docs" / "model.md").read_text(encoding="utf-8")
    assert table in (ROOT / "src" / "univar" / "model" / "shipped" / "MODEL_CARD.md").read_text(encoding="utf-8")
