"""The QA table readers: good files in every format, and every kind of bad input named with file and row."""

from __future__ import annotations

import json
import logging
import re

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
    (b'question,answer,model,lang\n"multi\nline",a,m,en\nq,a,,en\n', ".csv",
     "missing value in required column 'model'", 4),
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
    # a problem of the whole file names the file alone: a row 0 would send the reader to no line at all
    assert str(info.value).endswith(f"{path}:{row}" if row else f", {path}")


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
        assert str(exc).startswith(exc.what) and str(path) in str(exc) and not str(exc).endswith(":0")
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


# ---------------------------------------------------------------- NaN, duplicates, truncated files

FOUR = ["question", "answer", "model", "lang"]


def _parquet_with_hole(path, column: str, hole, dtype=None):
    """Three rows; the second has ``hole`` in ``column`` (None, NaN, pd.NA...), written the way pandas does."""
    frame = pd.DataFrame({"question": ["q1", "q2", "q3"], "answer": ["a1", "a2", "a3"],
                          "model": ["m", "m", "m"], "lang": ["en", "en", "en"]})
    values = frame[column].tolist()
    values[1] = hole
    frame[column] = pd.array(values, dtype=dtype) if dtype else pd.Series(values, dtype=object)
    frame.to_parquet(path, index=False)
    return path


@pytest.mark.parametrize("column", ["question", "model", "lang"])
@pytest.mark.parametrize("hole, dtype",
                         [(None, None), (float("nan"), None), (None, "string"), (None, "string[pyarrow]")],
                         ids=["None", "NaN", "pd.NA", "arrow-null"])
def test_nan_in_a_required_parquet_column_names_file_and_row(tmp_path, column, hole, dtype):
    path = _parquet_with_hole(tmp_path / "hole.parquet", column, hole, dtype)
    import pyarrow.parquet as pq

    assert pq.read_table(path).column(column).null_count == 1  # the hole is a real Parquet null
    with pytest.raises(QAError) as info:
        read_qa(path)
    # pd.NA used to surface as "column 'model' holds NAType, expected text"
    assert str(info.value) == f"missing value in required column {column!r}, {path}:2"


def test_a_float_column_of_nan_and_a_null_answer_in_parquet(tmp_path, caplog):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "float.parquet"
    pq.write_table(pa.table({"question": ["q1", "q2", "q3"], "answer": ["a1", None, "a3"], "model": ["m"] * 3,
                             "lang": pa.array([1.0, 2.0, float("nan")])}), path)
    with pytest.raises(QAError, match=rf"column 'lang' holds float64, expected text, {path}:1$"):  # never "1.0"
        read_qa(path)
    pq.write_table(pa.table({"question": ["q1", "q2", "q3"], "answer": ["a1", None, "a3"], "model": ["m"] * 3,
                             "lang": pa.array([float("nan")] * 3)}), path)
    with pytest.raises(QAError, match=rf"missing value in required column 'lang', {path}:1$"):  # NaN: no text
        read_qa(path)
    pq.write_table(pa.table({"question": ["q1", "q2", "q3"], "answer": ["a1", None, "a3"], "model": ["m"] * 3,
                             "lang": ["en"] * 3}), path)
    with caplog.at_level(logging.WARNING, logger="univar"):
        table = read_qa(path)
    assert table["question"].tolist() == ["q1", "q3"] and "nan" not in table["answer"].tolist()
    assert f"dropped 1 row(s) with an empty answer, {path}: rows 2" in caplog.text


def test_exact_duplicates_are_kept_and_reported_with_their_rows(tmp_path, caplog):
    path = tmp_path / "dup.csv"
    path.write_text("question,answer,model,lang\n"
                    "q1,a1,m,en\n"      # line 2
                    "q1,a1,m,en\n"      # line 3: copy of 2
                    "q2,,m,en\n"        # line 4: empty answer, dropped (and not a duplicate)
                    "q2,a2,m,en\n"      # line 5
                    "q1,a1,m,en\n"      # line 6: copy of 2
                    "q1,a1,m2,en\n"     # line 7: another model, not a copy
                    '"q2","a2","m","en"\n')  # line 8: the same values, quoted: a copy of 5
    with caplog.at_level(logging.WARNING, logger="univar"):
        table = read_qa(path)
    assert len(table) == 6 and table.attrs["duplicate_rows"] == 3  # kept, not dropped
    assert (f"kept 3 exact duplicate row(s) (every column equal to an earlier row), {path}: rows 3, 6, 8"
            in caplog.text)
    assert f"dropped 1 row(s) with an empty answer, {path}: rows 4" in caplog.text

    caplog.clear()
    clean = tmp_path / "clean.jsonl"
    write_qa(pd.DataFrame(ROWS), clean)
    with caplog.at_level(logging.DEBUG, logger="univar"):
        assert read_qa(clean).attrs["duplicate_rows"] == 0
    assert "duplicate" not in caplog.text and "repeat" not in caplog.text


def test_many_duplicates_show_the_first_ten_rows(tmp_path, caplog):
    path = tmp_path / "many.jsonl"
    path.write_text("".join(json.dumps(ROWS[0]) + "\n" for _ in range(15)))
    with caplog.at_level(logging.WARNING, logger="univar"):
        read_qa(path)
    assert (f"kept 14 exact duplicate row(s) (every column equal to an earlier row), {path}: "
            "rows 2, 3, 4, 5, 6, 7, 8, 9, 10, 11 ...") in caplog.text


def test_the_same_qa_under_other_labels_is_said_only_when_verbose(tmp_path, caplog):
    """ValueBench asks one item under several questionnaires: the QA repeats with another 'value'."""
    path = tmp_path / "relabel.jsonl"
    path.write_text(json.dumps({**ROWS[0], "value": "Kindness"}) + "\n"
                    + json.dumps({**ROWS[0], "value": "Care"}) + "\n"
                    + json.dumps({**ROWS[0], "value": "Care", "extra": [1, 2]}) + "\n")
    with caplog.at_level(logging.WARNING, logger="univar"):
        assert len(read_qa(path)) == 3
    assert caplog.text == ""
    with caplog.at_level(logging.INFO, logger="univar"):
        read_qa(path)
    assert (f"2 row(s) repeat an earlier question, answer, model and lang with other labels (kept), {path}: rows 2, 3"
            in caplog.text)


def test_bundled_valuebench_has_no_exact_copies(valuebench):
    assert valuebench.attrs["duplicate_rows"] == 0
    assert valuebench.duplicated(subset=FOUR).sum() > 0  # but the same QA under several values, on purpose


TRUNC_ROWS = [
    {"question": "Should I help?", "answer": "Yes, kindness matters.", "model": "m1", "lang": "en"},
    {"question": "Is it fine\nto lie?", "answer": 'No; "honesty" first.', "model": "m2", "lang": "en"},
    {"question": "Tradition?", "answer": "It depends, on many things, really.", "model": "m3", "lang": "en"},
]


def test_csv_cut_anywhere_inside_its_last_record_names_that_record(tmp_path):
    import csv as _csv

    full = tmp_path / "full.csv"
    pd.DataFrame(TRUNC_ROWS).to_csv(full, index=False, quoting=_csv.QUOTE_ALL, lineterminator="\r\n")
    data = full.read_bytes()
    assert len(read_qa(full)) == 3
    last_start = data.rindex(b'\r\n"Tradition?"') + 2
    last_line = 5  # header 1, rows at 2, 3-4 (a multi-line question) and 5
    end_of_values = data.rindex(b'"')  # the closing quote of the last field
    seen = set()
    for cut in range(last_start + 1, end_of_values):
        path = tmp_path / "cut.csv"
        path.write_bytes(data[:cut])
        with pytest.raises(QAError) as info:
            read_qa(path)
        assert str(info.value).endswith(f"{path}:{last_line}"), (cut, str(info.value))
        seen.add(info.value.what.split(" (")[0] if "malformed" in info.value.what else info.value.what)
    assert "malformed CSV" in seen  # cut inside quotes: "malformed CSV (unexpected end of data)"
    assert {"1 field but the header has 4", "2 fields but the header has 4", "3 fields but the header has 4"} <= seen

    # written by univar (minimal quoting): a cut that drops fields is caught, with its line
    plain = write_qa(pd.DataFrame(TRUNC_ROWS), tmp_path / "plain.csv").read_bytes()
    path = tmp_path / "cut-plain.csv"
    path.write_bytes(plain[: plain.rindex(b",m3,")])
    with pytest.raises(QAError, match=rf"^2 fields but the header has 4, {path}:5$"):
        read_qa(path)
    path.write_bytes(plain[: plain.rindex(b"many things") ])
    with pytest.raises(QAError, match=rf"^malformed CSV \(unexpected end of data\), {path}:5$"):
        read_qa(path)


def test_jsonl_cut_anywhere_inside_its_last_record_names_that_line(tmp_path):
    full = write_qa(pd.DataFrame(TRUNC_ROWS), tmp_path / "full.jsonl")
    data = full.read_bytes()
    assert data.count(b"\n") == 3 and len(read_qa(full)) == 3
    last_start = data.rindex(b"\n", 0, len(data) - 1) + 1
    for cut in range(last_start + 1, len(data) - 2):  # any byte before the closing brace
        path = tmp_path / "cut.jsonl"
        path.write_bytes(data[:cut])
        with pytest.raises(QAError) as info:
            read_qa(path)
        assert info.value.what.startswith("invalid JSON") and str(info.value).endswith(f"{path}:3"), (
            cut, str(info.value))


@pytest.mark.parametrize("fraction", [0.25, 0.5, 0.9, 0.999])
def test_parquet_cut_short_is_refused_as_a_whole(tmp_path, fraction):
    full = write_qa(pd.DataFrame(TRUNC_ROWS * 50), tmp_path / "full.parquet")
    data = full.read_bytes()
    path = tmp_path / "cut.parquet"
    path.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(QAError) as info:
        read_qa(path)
    assert info.value.what.startswith("not a readable Parquet file (") and str(info.value).endswith(f", {path}")


def test_write_qa_refuses_an_unknown_suffix_before_touching_the_disk(tmp_path):
    table = pd.DataFrame({"question": ["q"], "answer": ["a"], "model": ["m"], "lang": ["en"]})
    with pytest.raises(QAError, match="unsupported output type '.xlsx'"):
        write_qa(table, tmp_path / "new" / "qas.xlsx")
    assert not (tmp_path / "new").exists()


def test_write_qa_replaces_a_file_only_once_the_new_one_is_whole(tmp_path):
    class Unprintable:
        def __str__(self) -> str:
            raise RuntimeError("cannot be written")

    path = write_qa(pd.DataFrame({"question": ["q"], "answer": ["a"], "model": ["m"], "lang": ["en"]}),
                    tmp_path / "qas.csv")
    broken = pd.DataFrame({"question": ["q", "r"], "answer": ["b", Unprintable()], "model": "m", "lang": "en"})
    with pytest.raises(RuntimeError, match="cannot be written"):
        write_qa(broken, path)  # the CSV writer has opened its file and fails on the second row
    assert read_qa(path)["answer"].tolist() == ["a"] and sorted(p.name for p in tmp_path.iterdir()) == ["qas.csv"]


# -- odd data gets a clear answer (issue 22) --------------------------------------------------------------------
def _huge_answer(size: int) -> str:
    """An answer of ``size`` characters, as an LLM caught in a loop writes, with commas, quotes and line breaks."""
    unit = 'I repeat, "again"\nand again. '
    return (unit * (size // len(unit) + 1))[:size]


@pytest.mark.parametrize("size, suffix", [
    (2_000_000, ".csv"),
    (2_000_000, ".tsv"),
    pytest.param(50_000_000, ".csv", marks=pytest.mark.slow),
])
def test_a_csv_field_of_any_size_is_read(tmp_path, size, suffix):
    answer = _huge_answer(size)
    table = pd.DataFrame([ROWS[0], {**ROWS[0], "question": "Why?", "answer": answer}])
    path = write_qa(table, tmp_path / f"big{suffix}")
    table = read_qa(path)
    assert len(table) == 2 and len(table.loc[1, "answer"]) == size and table.loc[1, "answer"] == answer


TYPED = [("answer", 1, "int"), ("answer", 1.5, "float"), ("model", True, "bool"), ("question", 7, "int"),
         ("lang", 0, "int"), ("answer_en", 2.5, "float")]


@pytest.mark.parametrize("column, value, kind", TYPED)
def test_jsonl_text_column_of_another_type_is_refused_with_its_column_type_and_row(tmp_path, column, value, kind):
    rows = [{**ROWS[0], "answer_en": "In English."}] * 3
    rows[1] = {**rows[1], "question": "Second?", column: value}
    path = tmp_path / "typed.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    with pytest.raises(QAError) as info:
        read_qa(path)
    assert info.value.what == f"column '{column}' holds {kind}, expected text" and info.value.row == 2
    assert str(info.value).endswith(f"{path}:2")


@pytest.mark.parametrize("column, value, kind", TYPED)
def test_parquet_text_column_of_another_type_is_refused_with_its_column_type_and_row(tmp_path, column, value, kind):
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = {name: pa.array([text] * 3) for name, text in {**ROWS[0], "answer_en": "In English."}.items()}
    columns["question"] = pa.array(["First?", "Second?", "Third?"])
    columns[column] = pa.array([None, value, value])  # typed by its values (int64, double, bool); row 1 null
    path = tmp_path / "typed.parquet"
    pq.write_table(pa.table(columns), path)
    with pytest.raises(QAError) as info:
        read_qa(path)
    # the type pandas reads it as: a nullable int64 column arrives as float64, a nullable bool one as bool values
    assert re.fullmatch(rf"column '{column}' holds (float|{kind})(64)?, expected text", info.value.what), (
        info.value.what)
    assert info.value.row == 2 and str(info.value).endswith(f"{path}:2")


def test_a_text_column_of_numbers_only_is_refused_at_its_first_row(tmp_path):
    path = tmp_path / "models.parquet"
    pd.DataFrame({"question": ["q1", "q2"], "answer": ["a", "b"], "model": [3, 4], "lang": ["en", "en"]}).to_parquet(
        path)
    with pytest.raises(QAError, match=rf"^column 'model' holds int64, expected text, {re.escape(str(path))}:1$"):
        read_qa(path)


def test_missing_values_in_a_typed_file_are_still_missing_not_the_wrong_type(tmp_path):
    rows = [ROWS[0], {**ROWS[0], "question": "Why?", "answer": None}]
    table = read_qa(write_qa(pd.DataFrame(rows), tmp_path / "gap.parquet"))  # an empty answer: dropped
    assert table["question"].tolist() == ["Should I help?"]
