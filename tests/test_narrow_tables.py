"""Every CLI table on an 80-column terminal: the names a user types (banks, datasets, values, sources, classes,
encoders) appear whole on one line, headers are not cut mid-word, nothing is cut with an ellipsis, and where a
table does not fit, a column is left out and the caption says which.

The short commands run as a user runs them (a subprocess with ``COLUMNS=80``); the evaluate, explain and map
tables are rendered from real scores of real bundled answers (tfidf vectors: quick on 2 cores) on a rich console
80 columns wide.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest
from rich.console import Console

from univar.analysis import explain_pair
from univar.commands.explain import _explain_table, _stance_questions_table
from univar.commands.maps import _nearest_table
from univar.commands.tables import results_table, stance_table
from univar.data import BUNDLED
from univar.encoders import embed
from univar.evaluate import ValueIdentification
from univar.evaluate.stance import StanceValidity
from univar.qa import class_names, qa_texts
from univar.taxonomy import load_values
from univar.taxonomy.bank import BANKS

# a model folder given as --encoder: longer than any built-in encoder's name
LONG_ENCODER = "runs/univar-valuebench-lambda5-seed0"


def cli(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "univar", *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "COLUMNS": "80"})
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def render(table, width: int = 80) -> str:
    console = Console(width=width, file=io.StringIO(), color_system=None)
    console.print(table)
    return console.file.getvalue()


def assert_fits(text: str, names, width: int = 80) -> None:
    """Every name on one line of ``text``, no line wider than ``width``, no ellipsis."""
    lines = text.splitlines()
    assert "…" not in text, text
    assert max(len(line) for line in lines) <= width, text
    for name in names:
        assert any(name in line for line in lines), f"{name!r} is broken or missing in\n{text}"


@pytest.fixture(scope="module")
def tfidf_vectors(small_qa):
    from univar.registry import get_encoder

    return embed(qa_texts(small_qa), get_encoder("tfidf"), progress=False)


def test_questions_list_keeps_the_bank_names_whole():
    text = cli("questions", "list")
    assert_fits(text, [f"bundled:{name}" for name in BANKS] + ["questions", "languages", "description"])


def test_values_list_keeps_every_value_and_source_name_whole():
    text = cli("values", "list")
    values = load_values()
    # on one line each: `--value "Long-Term vs Short-Term Orientation"` and `--source "LAQ / NEO-PI"` are typed so
    assert_fits(text, sorted(set(values["value"]) | set(values["source"])) + ["definition"])
    assert "left out at this width: framework" in text  # what made room, said once under the table


def test_datasets_keeps_the_dataset_names_whole():
    assert_fits(cli("datasets"), [f"bundled:{name}" for name in BUNDLED])


@pytest.mark.slow
def test_evaluate_tables_keep_a_long_encoder_name_whole(small_qa, tfidf_vectors):
    value_id = ValueIdentification(k=10).score(tfidf_vectors, small_qa, encoder=LONG_ENCODER)
    text = render(results_table([value_id], title="bundled:valuebench"))
    assert_fits(text, [LONG_ENCODER, "bundled:valuebench", "k-NN acc", "linear", "acc@1"])
    assert "left out at this width: acc@5, acc@10" in text
    assert "acc@10" in render(results_table([value_id]), width=120).splitlines()[4]  # a wide console shows all
    stance = StanceValidity(n_boot=20).score(tfidf_vectors, small_qa, encoder=LONG_ENCODER)
    assert_fits(render(stance_table([stance], title="bundled:valuebench")),
                [LONG_ENCODER, "stance AUC", "probe bal. acc", "disagree"])


@pytest.mark.slow
def test_explain_tables_keep_values_and_class_names_whole(small_qa, tfidf_vectors):
    a, b = "gpt-4-1106-preview", "mixtral-8x7b-instruct"
    ex = explain_pair(small_qa, tfidf_vectors, class_names(small_qa), a, b, top=5, min_qas=2)
    text = render(_explain_table(ex, LONG_ENCODER, 5))
    shown = ex.table(5)[ex.grouping].tolist()
    assert_fits(text, shown + [ex.class_a, ex.class_b, LONG_ENCODER, "score", "separation", "rating"])
    assert ex.questions is not None  # ValueBench's ratings give agree / disagree labels
    text = render(_stance_questions_table(ex, 5))
    words = {w for q in ex.questions["question"].head(5) for w in q.split()}
    assert_fits(text, [ex.class_a, ex.class_b, "distance"] + sorted(w for w in words if len(w) > 3))


def test_map_nearest_table_keeps_long_class_names_whole():
    import pandas as pd

    near = pd.DataFrame({"new": "newcomer$en", "rank": [1, 2],
                         "class": ["mistral-7b-instruct+guardrail-prompt$en", "meta-llama/Llama-2-7b-chat-hf$en"],
                         "cosine": [0.0655, 0.0679], "energy": [0.0044, float("nan")]})
    text = render(_nearest_table("newcomer$en", near, LONG_ENCODER))
    assert_fits(text, near["class"].tolist() + ["newcomer$en", "cosine", "distance", "energy"])
