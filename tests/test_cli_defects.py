"""Defects users reported in the command line: each test failed before its fix.

--verbose shown as taking a value; k-NN and acc@5 on data too small for them; one truncation warning per
chunk and per part of a joined encoder; ``compare`` naming 3 of the 6 files it wrote.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
import uuid

import numpy as np
import pandas as pd
import pytest

from univar.cli import main
from univar.qa import write_qa

JSON_KEYS = ["encoder", "split", "target", "n_classes", "chance", "n_train", "n_test", "knn", "linear"]


# -- --verbose is a flag ------------------------------------------------------------------------------------
def test_help_shows_verbose_as_a_flag_without_a_value():
    from typer.testing import CliRunner

    from univar.commands import app

    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "160"})
    assert result.exit_code == 0
    line = next(line for line in result.output.splitlines() if "--verbose" in line)
    assert "-v" in line and not re.search(r"<bool>|BOOLEAN|\bbool\b", line, re.IGNORECASE), line
    train = CliRunner().invoke(app, ["train", "--help"], env={"COLUMNS": "160"}).output
    for flag in ("--symmetric", "--learnable-scale", "--resume"):
        assert "<bool>" not in next(line for line in train.splitlines() if flag in line)


def test_no_help_page_shows_a_flag_as_taking_a_bool(capsys, monkeypatch):
    """Every flag, --help itself included, reads as a plain flag on every command's help page."""
    monkeypatch.setenv("COLUMNS", "160")
    pages = [[], ["map"], ["compare"], ["explain"], ["train"], ["demo"], ["evaluate", "value-id"],
             ["values", "list"], ["elicit"]]
    for page in pages:
        assert main([*page, "--help"]) == 0
        text = capsys.readouterr().out
        assert "--help" in text and "<bool>" not in text, (page, text)


def test_verbose_flag_still_works(capsys):
    assert main(["-v", "datasets"]) == 0
    assert main(["--verbose", "datasets"]) == 0
    assert "bundled:valuebench" in capsys.readouterr().out
    assert main(["--verbose=true", "datasets"]) == 2  # a flag, so a value is an error
    assert "does not take a value" in capsys.readouterr().err


# -- k-NN and the probe on data too small for them -------------------------------------------------------------
def _tiny_qa(path, n: int = 8, classes: int = 4):
    rows = [{"question": f"Should people value {['family', 'career', 'honesty', 'freedom'][i // 2 % 4]}? ({i})",
             "answer": f"Model {i % classes} answers question {i} about family, work and freedom.",
             "model": f"llm{i % classes}", "lang": "en"} for i in range(n)]
    return write_qa(pd.DataFrame(rows), path)


def test_eight_qas_with_k_50_warn_and_use_a_k_that_can_work(tmp_path, capsys):
    """An 8-row file ran k=50 and reported acc@1 0.00 / acc@5 100.00 without a word."""
    data, report = _tiny_qa(tmp_path / "tiny.csv"), tmp_path / "r.json"
    assert main(["evaluate", "value-id", str(data), "--encoder", "tfidf", "--json", str(report)]) == 0
    printed = capsys.readouterr()
    warning = [line for line in printed.err.splitlines() if line.startswith("warning: k=50")]
    assert warning == ["warning: k=50 is more than the 4 training QAs; using k=1 (the fewest training QAs of a "
                       "class), as every test QA would otherwise have the same neighbours"]
    result = json.loads(report.read_text())
    assert list(result) == JSON_KEYS and result["n_train"] == 4 and result["n_classes"] == 4
    assert list(result["knn"]) == ["k", "acc", "f1"] and result["knn"]["k"] == 1  # the k actually used
    assert list(result["linear"]) == ["acc@1", "acc@5", "acc@10", "f1"]
    assert result["linear"]["acc@5"] is None and result["linear"]["acc@10"] is None  # 4 classes: always a hit
    assert 0 <= result["linear"]["acc@1"] <= 1
    assert "(k=1)" in printed.out and "100.00" not in printed.out
    assert re.search(r"│\s+-\s+│\s+-\s+│", printed.out)  # acc@5 and acc@10 shown as "-"


def test_knn_k_rules():
    from univar.evaluate import knn_k

    y = np.array(["a"] * 3 + ["b"] * 2 + ["c"] * 40, dtype=object)
    assert knn_k(10, y, y)[0] == 10  # fits: kept
    k, notes = knn_k(10, y, y)
    assert len(notes) == 1 and "2 of 3 classes have fewer than k/2 training QAs (fewest: b, 2)" in notes[0]
    assert knn_k(3, y, y) == (3, [])
    k, notes = knn_k(45, y, y)  # every training QA: the same neighbours for every test QA
    assert k == 2 and "k=45 is all the 45 training QAs; using k=2" in notes[0]
    k, notes = knn_k(3, y, np.array(["a", "z", "y"], dtype=object))
    assert k == 3 and notes == ["2 of the test classes have no training QAs (y, z); neither k-NN nor the probe "
                                "can name them, so their test QAs always count as wrong"]


def test_top_k_accuracy_is_none_where_k_covers_every_class():
    from univar.evaluate import linear_probe

    rng = np.random.default_rng(0)
    for n_classes, expected in [(4, (None, None)), (6, ("number", None)), (11, ("number", "number"))]:
        labels = np.repeat(np.array([f"c{i}" for i in range(n_classes)], dtype=object), 10)
        x = rng.normal(size=(len(labels), 6))
        scores = linear_probe(x[::2], labels[::2], x[1::2], labels[1::2])
        got = tuple(None if scores[k] is None else "number" for k in ("acc@5", "acc@10"))
        assert got == expected and scores["acc@1"] is not None


def test_a_test_split_with_nothing_in_it_is_one_error_line(tmp_path, capsys):
    from univar.qa import question_fold

    rows = [{"question": q, "answer": f"answer {i}", "model": f"m{i % 2}", "lang": "en"}
            for i, q in enumerate(q for q in (f"question {j}" for j in range(40)) if question_fold(q) != 0)]
    data = write_qa(pd.DataFrame(rows), tmp_path / "no_test.csv")
    assert main(["evaluate", "value-id", str(data), "--encoder", "tfidf", "--split", "question"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: the question split leaves") and "0 test QAs" in err[-1]


# -- one truncation warning per encoder and run ------------------------------------------------------------------
@pytest.fixture
def univar_warnings():
    """Warnings of the ``univar`` logger, whatever an earlier test did to its handlers or propagation."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append
    logger = logging.getLogger("univar")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(min(level or logging.WARNING, logging.WARNING))
    yield records
    logger.removeHandler(handler)
    logger.setLevel(level)


def _long_texts(n: int) -> list[str]:
    """Texts past MiniLM's 256 tokens, never seen before (a cached text is not embedded, so not counted)."""
    return [f"Q: Why {uuid.uuid4().hex}? A: " + "Because values differ across cultures and families. " * 40
            for _ in range(n)]


def test_joined_encoder_gives_one_truncation_line_over_chunks_and_parts(univar_warnings):
    from univar.encoders import embed
    from univar.registry import get_encoder

    texts = _long_texts(5) + ["Q: Short? A: Yes."]
    embed(texts, get_encoder("minilm+use-multilingual"), progress=False, chunk=2)  # 3 chunks, 2 parts each
    lines = [r.getMessage() for r in univar_warnings if "truncated" in r.getMessage()]
    assert lines == ["minilm+use-multilingual: 5 of 6 texts are longer than the 256-token input of its minilm "
                     "part and are truncated"]


def test_one_command_run_tells_truncation_once(tmp_path, capsys):
    """univar embeds QA texts and question texts through minilm+use-multilingual: one line, not one per call."""
    rows = [{"question": f"Why {uuid.uuid4().hex}? " + "Tell me how values differ across cultures. " * 40,
             "answer": "Because families and traditions differ. " * 40, "model": f"m{i % 2}", "lang": "en"}
            for i in range(6)]
    data = write_qa(pd.DataFrame(rows), tmp_path / "long.csv")
    assert main(["embed", str(data), "--encoder", "univar", "--out", str(tmp_path / "e.npy")]) == 0
    err = capsys.readouterr().err
    assert err.count("WARNING") == 1, err
    flat = " ".join(err.split())
    assert "univar: 12 of 12 texts are longer than the 256-token input of its minilm part and are truncated" in flat


# -- compare and map list every file they wrote ----------------------------------------------------------------
def test_compare_names_every_file_it_wrote_and_no_older_one(tmp_path, small_qa, capsys):
    data = write_qa(small_qa, tmp_path / "small.csv")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    stale = out_dir / "from_an_earlier_run.csv"
    stale.write_text("x\n")
    os.utime(stale, (time.time() - 3600, time.time() - 3600))
    assert main(["compare", str(data), "--encoder", "tfidf", "--out", str(out_dir), "--bootstrap", "20"]) == 0
    printed = " ".join(capsys.readouterr().out.split())
    line = printed[printed.rindex("written to "):]
    names = sorted(p.name for p in out_dir.iterdir() if p != stale)
    assert {"distances.csv", "heatmap.png", "heatmap_energy.png", "dendrogram.png", "mantel.json"} <= set(names)
    assert line == f"written to {out_dir}: {', '.join(names)}"
    assert stale.name not in line and not list(out_dir.glob(".univar-clock-*"))


@pytest.mark.slow
def test_map_names_every_file_it_wrote(tmp_path, small_qa, valuebench, capsys):
    data = write_qa(small_qa, tmp_path / "small.csv")
    new = valuebench[(valuebench["model"] == "llama-7b-chat") & ~valuebench["question"].isin(small_qa["question"])]
    new = write_qa(new.head(20).assign(model="newcomer"), tmp_path / "new.csv")
    out_dir = tmp_path / "map"
    assert main(["map", str(data), "--encoder", "tfidf", "--out", str(out_dir), "--add", str(new)]) == 0
    printed = " ".join(capsys.readouterr().out.split())
    names = sorted(p.name for p in out_dir.iterdir())
    assert {"map.png", "map.html", "nearest.csv"} <= set(names)
    assert f"map written to {out_dir}: {', '.join(names)}" in printed


# -- odd data gets a clear answer (issue 22) ------------------------------------------------------------------------
def test_a_csv_with_a_2_mb_answer_embeds(tmp_path, capsys):
    looped = "I will answer, and then I will answer again.\n" * 45_000  # 2 MB: an LLM caught in a loop
    rows = [{"question": f"question {i}", "answer": looped if i == 3 else f"answer {i} about values",
             "model": f"m{i % 2}", "lang": "en"} for i in range(8)]
    data = write_qa(pd.DataFrame(rows), tmp_path / "looped.csv")
    out = tmp_path / "vectors.parquet"
    assert main(["embed", str(data), "--encoder", "tfidf", "--out", str(out)]) == 0, capsys.readouterr().err
    table = pd.read_parquet(out)
    assert len(table) == 8 and table.loc[3, "answer"] == looped and np.isfinite(np.stack(table["embedding"])).all()


@pytest.mark.parametrize("suffix", [".parquet", ".jsonl"])
@pytest.mark.parametrize("column, values, kind", [("model", [1, 2], "int64"), ("answer", [True, False], "bool")])
def test_a_number_or_boolean_in_a_text_column_is_one_error_line(tmp_path, capsys, suffix, column, values, kind):
    frame = pd.DataFrame({"question": ["q1", "q2"], "answer": ["a1", "a2"], "model": ["m1", "m2"], "lang": "en"})
    frame[column] = values  # as a wrong export writes them: 1 and True, which used to become "1" and "True"
    path = write_qa(frame, tmp_path / f"typed{suffix}")
    out = tmp_path / "vectors.parquet"
    assert main(["embed", str(path), "--encoder", "tfidf", "--out", str(out)]) == 2
    assert capsys.readouterr().err == f"error: column {column!r} holds {kind}, expected text, {path}:1\n"
    assert not out.exists()


@pytest.mark.parametrize("name, content, what", [
    ("missing.csv", None, "file not found"),
    ("empty.csv", b"", "empty file (no header)"),
    ("empty.jsonl", b"\n", "empty file (no records)"),
])
def test_a_missing_or_empty_file_is_named_without_a_row(tmp_path, capsys, name, content, what):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    assert main(["embed", str(path), "--encoder", "tfidf", "--out", str(tmp_path / "v.parquet")]) == 2
    assert capsys.readouterr().err == f"error: {what}, {path}\n"  # no ":0", a row no editor can open
