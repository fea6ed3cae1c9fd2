"""``bundled:local-llms``: the QA set this project made with its own pipeline."""

import json

import pandas as pd
import pytest

from univar.data import bundled_file
from univar.qa import read_qa


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return read_qa("bundled:local-llms")


def test_shape_of_the_set(table):
    assert table["lang"].nunique() >= 3
    assert table["model"].nunique() >= 4
    per_config = table.groupby("model")["question"].nunique()
    assert (per_config >= 300).all(), per_config.to_dict()
    per_class = table.groupby(["model", "lang"]).size()
    assert per_class.min() == per_class.max(), "classes grew together, so the set is balanced"
    assert not table.duplicated(["qid", "model", "lang"]).any(), "exactly once per (question, model, lang)"


def test_every_row_carries_its_provenance(table):
    params = table["params"].map(json.loads)
    assert params.map(lambda p: {"temperature", "top_p", "max_tokens", "seed"} <= set(p)).all()
    steered = table[table["model"].str.contains("tradition|openness")]
    assert params[steered.index].map(lambda p: bool(p.get("system"))).all()
    assert (table["backend"] == "smollm2").all()


def test_portuguese_answers_are_translated_back_to_english(table):
    pt = table[table["lang"] == "pt"]
    assert len(pt) > 0 and (pt["answer_en"].fillna("").str.strip() != "").all()
    assert (pt["answer_en"] != pt["answer"]).mean() > 0.9
    assert (pt["question_en"].fillna("").str.strip() != "").all()


def test_generation_settings_ship_beside_the_data():
    settings = json.loads(bundled_file("local-llms").with_name("local_llms.json").read_text())
    assert len(settings["configs"]) >= 4 and len(settings["langs"]) >= 3
    assert settings["rows"] == len(read_qa("bundled:local-llms"))
