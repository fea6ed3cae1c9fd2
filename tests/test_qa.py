"""The QA table readers: good files in every format, and every kind of bad input named with file and row."""

from __future__ import annotations

import json
import logging

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from univar.errors import QAError
from univar.qa import class_labels, parse_mapping, qa_texts, read_many, read_qa, write_qa

ROWS = [
    {"question": "Should I help?", "answer": "Yes, kindness matters.", "model": "m1", "lang": "en"},
    {"question": "Devo ajudar?", "answer": "Sim.", "model": "m2", "lang": "pt", "answer_en": "Yes."},
]


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl", ".parquet"])
def test_round_trip_every_format(tmp_path, suffix):
    path = write_qa(pd.DataFrame(ROWS), tmp_path / f"qa{suffix}")
    table = read_qa(path)
    assert table[["question", "answer", "model", "lang"]].to_dict("records") == [
        {k: r[k] for k in ("question", "answer", "model", "lang")} for r in ROWS]
    assert class_labels(table).tolist() == ["m1$en", "m2$pt"]


def test_english_columns_are_embedded_when_present(tmp_path):
    table = read_qa(write_qa(pd.DataFrame(ROWS), tmp_path / "qa.jsonl"))
    assert qa_texts(table) == ["Q: Should I help? A: Yes, kindness matters.", "Q: Devo ajudar? A: Yes."]


def test_bundled_datasets_have_the_promised_shape(valuebench):
    assert len(valuebench) == 11_928 and valuebench["model"].nunique() == 6
    fulcra = read_qa("bundled:fulcra")
    assert fulcra["model"].nunique() == 7
    mtbench = read_qa("bundled:mtbench")
    assert class_labels(mtbench).nunique() == 114


def test_map_takes_another_schema(tmp_path):
    path = tmp_path / "other.csv"
    path.write_text("prompt,completion,model,lang\nWhy?,Because.,m,en\n")
    table = read_qa(path, parse_mapping(["question=prompt", "answer=completion"]))
    assert table.loc[0, "question"] == "Why?" and table.loc[0, "answer"] == "Because."


def test_several_files_are_concatenated(tmp_path):
    a = write_qa(pd.DataFrame(ROWS[:1]), tmp_path / "a.csv")
    b = write_qa(pd.DataFrame(ROWS[1:]), tmp_path / "b.parquet")
    assert read_many([a, b])["model"].tolist() == ["m1", "m2"]


def test_empty_answers_are_dropped_and_counted_aloud(tmp_path, caplog):
    path = tmp_path / "qa.csv"
    path.write_text("question,answer,model,lang\nq1,a1,m,en\nq2,,m,en\nq3,  ,m,en\nq4,a4,m,en\n")
    with caplog.at_level(logging.WARNING, logger="univar"):
        table = read_qa(path)
    assert table["question"].tolist() == ["q1", "q4"]
    assert "dropped 2 row(s) with an empty answer" in caplog.text and "rows 3, 4" in caplog.text


@pytest.mark.parametrize("content, suffix, what, row", [
    (None, ".csv", "file not found", 0),
    (b"question,answer,model,lang\nq,a,m,en\n", ".xlsx", "unsupported file type", 0),
    (b"question,answer,model\nq,a,m\n", ".csv", "missing column 'lang'", 1),
    (b"question,answer,model,lang\nq,a,m,en\nq2,a\xff,m,en\n", ".csv", "undecodable bytes", 3),
    (b"question,answer,model,lang\nq,a,m,en\n,a,m,en\n", ".csv", "missing value in required column 'question'", 3),
    (b'question,answer,model,lang\n"multi\nline",a,m,en\nq,a,,en\n', ".csv", "missing value in required column 'model'", 4),
    (b'{"question":"q","answer":"a","model":"m","lang":"en"}\n{"question": broken\n', ".jsonl", "invalid JSON", 2),
    (b'[1, 2]\n', ".jsonl", "expected a JSON object", 1),
    (b'{"question":"q","answer":"a","model":"m"}\n', ".jsonl", "missing column 'lang'", 0),
    (b"not parquet at all", ".parquet", "not a readable Parquet file", 0),
    (b"", ".csv", "empty file", 0),
    (b"question,answer,model,lang\n", ".csv", "no rows", 1),
    (b"question,answer,model,lang\nq,a,m,en,extra\n", ".csv", "5 fields but the header has 4", 2),
])
def test_bad_input_names_file_and_row(tmp_path, content, suffix, what, row):
    path = tmp_path / f"bad{suffix}"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(QAError) as info:
        read_qa(path)
    assert what in str(info.value)
    assert str(info.value).endswith(f"{path}:{row}")


def test_map_naming_a_missing_column_is_an_error(tmp_path):
    path = write_qa(pd.DataFrame(ROWS), tmp_path / "qa.csv")
    with pytest.raises(QAError, match="'completion' named in --map not found"):
        read_qa(path, parse_mapping(["answer=completion"]))


def test_unknown_bundled_name():
    with pytest.raises(QAError, match="unknown bundled dataset 'nope'"):
        read_qa("bundled:nope")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=400), suffix=st.sampled_from([".csv", ".jsonl", ".tsv"]))
def test_fuzzed_bytes_give_a_table_or_a_named_error(tmp_path, data, suffix):
    path = tmp_path / f"fuzz{suffix}"
    path.write_bytes(b"question,answer,model,lang\n" + data if suffix == ".csv" else data)
    try:
        table = read_qa(path)
    except QAError as exc:
        assert str(exc).startswith(exc.what) and f"{path}:" in str(exc)
    else:
        assert set(["question", "answer", "model", "lang"]) <= set(table.columns)
        assert (table["answer"].str.strip() != "").all()


text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1, max_size=30)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.fixed_dictionaries({"question": text, "answer": text, "model": text, "lang": text}),
                     min_size=1, max_size=8),
       suffix=st.sampled_from([".csv", ".jsonl", ".parquet"]))
def test_fuzzed_tables_survive_a_round_trip(tmp_path, rows, suffix):
    frame = pd.DataFrame(rows)
    path = write_qa(frame, tmp_path / f"rt{suffix}")
    try:
        table = read_qa(path)
    except QAError as exc:  # only blank required values may be refused
        assert "missing value" in exc.what or "every answer is empty" in exc.what
        return
    kept = frame[frame["answer"].str.strip() != ""].reset_index(drop=True)
    pd.testing.assert_frame_equal(table[list(kept.columns)], kept, check_dtype=False)


def test_jsonl_non_text_value_is_refused_with_its_row(tmp_path):
    path = tmp_path / "qa.jsonl"
    path.write_text(json.dumps(ROWS[0]) + "\n" + json.dumps({**ROWS[0], "answer": {"nested": 1}}) + "\n")
    with pytest.raises(QAError, match=r"column 'answer' holds dict, expected text, .*qa.jsonl:2"):
        read_qa(path)
