"""The validity table in README.md, docs/model.md and the shipped model card is bench/results/validity.json
rendered, so the prose cannot drift from the benchmark; and validity.json holds the rows `make bench` promises
(issue 21): one per labelled source with its ratio, the geometric mean, and the MT-bench selectivity controls."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

from validity import SOURCES, readme_table  # noqa: E402

PATH = ROOT / "bench" / "results" / "validity.json"
pytestmark = pytest.mark.skipif(not PATH.exists(), reason="bench/validity.py has not been run")


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    return json.loads(PATH.read_text())["rows"]


def test_validity_json_has_a_row_per_labelled_source_the_geometric_mean_and_the_controls(rows):
    per_source = [r for r in rows if "best_baseline" in r]
    assert sorted(r["figure"].split(":")[0] for r in per_source) == sorted(SOURCES)
    for r in per_source:
        best = r[f"auc_{r['best_baseline']}"]
        assert best == max(r[f"auc_{name}"] for name in ("minilm", "base", "residual", "tfidf"))
        assert abs(r["ratio"] - (r["auc_univar"] - 0.5) / (best - 0.5)) < 1e-9
    mean = [r for r in rows if r["figure"].startswith("geometric mean")]
    assert len(mean) == 1 and mean[0]["target"] == ">= 1.5"
    margins = [r["ratio"] for r in per_source]
    if all(m > 0 for m in margins):
        assert abs(mean[0]["ratio"] - float(np.exp(np.mean(np.log(margins))))) < 1e-9
    assert sum(r["figure"].startswith("mtbench-en control") for r in rows) == 2


def test_readme_docs_and_model_card_show_the_measured_validity_table(rows):
    table = readme_table(rows)
    for path in (ROOT / "README.md", ROOT / "docs" / "model.md", ROOT / "src/univar/model/shipped/MODEL_CARD.md"):
        assert table in path.read_text(encoding="utf-8"), path
