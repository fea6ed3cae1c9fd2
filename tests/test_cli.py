"""The command line end to end on real bundled data with the real minilm encoder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from univar.cli import main
from univar.qa import qa_texts, question_fold, read_qa, write_qa

JSON_KEYS = ["encoder", "split", "target", "n_classes", "chance", "n_train", "n_test", "knn", "linear"]


@pytest.fixture(scope="module")
def subset(tmp_path_factory, small_qa) -> Path:
    return write_qa(small_qa, tmp_path_factory.mktemp("data") / "subset.csv")


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "univar", *args], capture_output=True, text=True, env=env,
                          timeout=600)


@pytest.mark.slow
def test_evaluate_value_id_end_to_end_then_from_cache(subset, tmp_path, capsys):
    report = tmp_path / "r.json"
    args = ["evaluate", "value-id", str(subset), "--encoder", "minilm", "--k", "10", "--json", str(report)]
    assert main(args) == 0
    first = capsys.readouterr()
    result = json.loads(report.read_text())
    assert list(result) == JSON_KEYS
    assert result["encoder"] == "minilm" and result["n_classes"] == 6 and result["target"] == "class"
    n = len(pd.read_csv(subset))
    assert result["n_train"] + result["n_test"] == n and result["knn"]["k"] == 10
    assert all(0.0 <= v <= 1.0 for v in [result["linear"]["acc@1"], result["linear"]["acc@5"], result["linear"]["f1"],
                                         result["knn"]["acc"]])
    assert result["linear"]["acc@10"] is None  # 6 classes: a top-10 guess always hits
    assert "minilm" in first.out and "value identification" not in first.err

    assert main(args) == 0  # the same run again: nothing embedded, the same numbers
    second = capsys.readouterr()
    unique = len(set(qa_texts(read_qa(subset))))
    assert f"0 QAs embedded, {unique} from cache" in second.err
    assert json.loads(report.read_text()) == result


def test_question_split_and_language_target(subset, tmp_path, capsys):
    report = tmp_path / "q.json"
    assert main(["evaluate", "value-id", str(subset), "--encoder", "minilm", "--split", "question",
                 "--target", "model", "--json", str(report)]) == 0
    result = json.loads(report.read_text())
    assert result["split"] == "question" and result["target"] == "model"
    test_questions = pd.read_csv(subset)["question"].map(lambda q: question_fold(q) == 0)
    assert result["n_test"] == int(test_questions.sum())


def test_several_data_files_are_one_table(subset, tmp_path, capsys):
    other = pd.read_csv(subset).assign(lang="xx")
    second = write_qa(other, tmp_path / "other.jsonl")
    report = tmp_path / "two.json"
    assert main(["evaluate", "value-id", str(subset), str(second), "--encoder", "minilm", "--target", "lang",
                 "--json", str(report)]) == 0
    result = json.loads(report.read_text())
    assert result["n_classes"] == 2 and result["n_train"] + result["n_test"] == 2 * len(other)


def test_embed_writes_parquet_and_npy(subset, tmp_path, capsys):
    out = tmp_path / "emb.parquet"
    assert main(["embed", str(subset), "--encoder", "minilm", "--out", str(out)]) == 0
    table = pq.read_table(out)
    assert table.num_rows == len(pd.read_csv(subset)) and "embedding" in table.column_names
    assert table.schema.metadata[b"univar.encoder_name"] == b"minilm"
    vectors = np.stack(table.column("embedding").to_numpy(zero_copy_only=False))
    npy = tmp_path / "emb.npy"
    assert main(["embed", str(subset), "--encoder", "minilm", "--out", str(npy)]) == 0
    np.testing.assert_allclose(np.load(npy), vectors, rtol=0, atol=0)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)


def test_map_option_reads_another_schema(tmp_path, capsys, small_qa):
    other = small_qa.rename(columns={"answer": "completion", "model": "llm"})
    path = write_qa(other, tmp_path / "other.parquet")
    out = tmp_path / "o.npy"
    assert main(["embed", str(path), "--encoder", "tfidf", "--map", "answer=completion", "--map", "model=llm",
                 "--out", str(out)]) == 0
    assert np.load(out).shape[0] == len(small_qa)


BAD_FILES = {
    "missing.csv": None,
    "table.xlsx": b"question,answer,model,lang\nq,a,m,en\n",
    "nocol.csv": b"question,answer,model\nq,a,m\n",
    "latin1.csv": "question,answer,model,lang\nq,caf\xe9,m,en\n".encode("latin-1"),
    "novalue.jsonl": b'{"question":"q","answer":"a","model":"","lang":"en"}\n',
    "broken.parquet": b"PAR1 but not really",
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_input_is_one_error_line_and_exit_2(tmp_path, name):
    path = tmp_path / name
    if BAD_FILES[name] is not None:
        path.write_bytes(BAD_FILES[name])
    proc = run_cli("evaluate", "value-id", str(path), "--encoder", "minilm")
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(path) in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""


@pytest.mark.parametrize("args, message", [
    (["evaluate", "value-id", "bundled:valuebench", "--encoder", "nope"], "unknown encoder 'nope'"),
    (["evaluate", "value-id", "bundled:valuebench", "--split", "odd"], "--split must be one of"),
    (["evaluate", "value-id", "bundled:valuebench", "--target", "odd"], "--target must be one of"),
    # checked by ValueIdentification, worded with the flag by the CLI
    (["evaluate", "value-id", "bundled:valuebench", "--k", "0"], "error: --k must be at least 1, got 0\n"),
    (["evaluate", "value-id", "bundled:valuebench", "--test-fraction", "1.5"],
     "error: --test-fraction must be between 0 and 1, got 1.5\n"),
    (["embed", "bundled:nosuch", "--encoder", "minilm"], "unknown bundled dataset 'nosuch'"),
    (["embed", "bundled:valuebench", "--encoder", "minilm", "--out", "x.txt"], "--out must end in"),
    (["evaluate", "value-id", "bundled:valuebench", "--k", "abc"], "Invalid value for '--k'"),
])
def test_bad_flags_are_one_error_line(args, message, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_datasets_lists_bundled(capsys):
    assert main(["datasets"]) == 0
    assert "bundled:valuebench" in capsys.readouterr().out


def test_datasets_lists_the_value_sources_with_their_licences_and_they_load(capsys):
    from univar.qa import read_qa

    assert main(["datasets"]) == 0
    listing = " ".join(capsys.readouterr().out.split())  # rich wraps long lines
    for name, licence, classes in (("donotanswer", "Apache-2.0", 6), ("xstest", "CC-BY-4.0", 5),
                                   ("moralmachine", "MIT", 3)):
        assert f"bundled:{name}" in listing and licence in listing.split(f"bundled:{name}")[1].split("bundled:")[0]
        table = read_qa(f"bundled:{name}")
        assert table.groupby(["model", "lang"]).ngroups == classes and table["answer"].str.len().min() >= 10
    from pathlib import Path

    import univar.data

    licences = {p.name for p in (Path(univar.data.__file__).parent / "licenses").iterdir()}
    assert {"donotanswer-Apache-2.0.txt", "xstest-CC-BY-4.0.txt", "moralmachine-MIT.txt"} <= licences
