"""Honest scores: a model folder keeps the hashes of the questions it trained on (univar.seen), and evaluating it on
data that holds them warns, with how many test QAs they are; data it never saw gives no warning."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest

from univar.cli import main
from univar.evaluate import ValueIdentification
from univar.model.config import TrainConfig
from univar.model.train import train_table
from univar.model.univar import shipped_model_path
from univar.qa import class_labels, question_fold, question_folds, write_qa
from univar.seen import SEEN_FILE, count_seen, question_key, read_seen, write_seen

OVERLAP = "was trained on the questions of"


def _score(table: pd.DataFrame, seen, split: str = "random"):
    """Value identification of ``table`` on random vectors (the warning reads questions, not vectors)."""
    vectors = np.random.default_rng(0).normal(size=(len(table), 8)).astype(np.float32)
    return ValueIdentification(split=split).score(vectors, table, encoder="univar", seen=seen)


def _questions(table: pd.DataFrame, n: int) -> pd.DataFrame:
    """Every LLM's answers to the first ``n`` questions of ``table``."""
    return table[table["question"].isin(table["question"].drop_duplicates().head(n))]


def _overlap(result) -> list[str]:
    return [w for w in result.warnings if OVERLAP in w]


def test_the_key_is_the_digest_the_question_folds_are_taken_from():
    q = "  Should I Value Tradition?  "
    digest = hashlib.sha1(b"should i value tradition?").hexdigest()
    assert question_key(q) == question_key("should i value tradition?") == digest[:16]
    assert question_fold(q) == int(digest, 16) % 5


def test_the_shipped_hashes_are_the_recipes_training_and_validation_folds(valuebench):
    """The shipped model trained on question folds 2-4 and validated on fold 1 (univar.json); its hash file says
    exactly that of every ValueBench question, and counts a random split's test QAs by fold."""
    seen = read_seen(shipped_model_path())
    assert seen is not None
    config = json.loads((shipped_model_path() / "univar.json").read_text())["training"]
    assert config["exclude_folds"] == [0] and config["val_fold"] == 1
    questions = valuebench["question"].drop_duplicates()
    folds = question_folds(questions)
    keys = questions.map(question_key)
    assert keys[folds >= 2].isin(seen.trained).all() and not keys[folds < 2].isin(seen.trained).any()
    assert keys[folds == 1].isin(seen.validation).all() and not keys[folds != 1].isin(seen.validation).any()

    table = _questions(valuebench, 100)
    result = _score(table, seen)
    labels = np.asarray(class_labels(table).to_numpy(), dtype=object)
    test = table["question"].iloc[ValueIdentification()._sides(labels, table["question"])[1]]
    test_folds = question_folds(test)
    trained, validated = int((test_folds >= 2).sum()), int((test_folds == 1).sum())
    assert trained > 0 and count_seen(seen, test) == (trained, validated)
    (line,) = _overlap(result)
    assert f"{OVERLAP} {trained:,} of the {result.n_test:,} test QAs" in line and f"{validated:,} more" in line
    assert "\n" not in line


def test_data_the_shipped_model_never_saw_gives_no_warning(valuebench):
    seen = read_seen(shipped_model_path())
    fold0 = _questions(valuebench[question_folds(valuebench["question"]) == 0], 50)
    assert not _overlap(_score(fold0, seen))
    made_up = pd.DataFrame({"question": [f"Is a made-up question number {i} worth asking?" for i in range(20)] * 2,
                            "answer": ["yes", "no"] * 20, "model": ["a"] * 20 + ["b"] * 20, "lang": "en"})
    assert not _overlap(_score(made_up, seen))
    assert not _overlap(_score(_questions(valuebench, 100), None))  # an encoder without a model folder: nothing to say


def test_the_question_split_of_the_shipped_model_is_held_out(valuebench):
    assert not _overlap(_score(_questions(valuebench, 100), read_seen(shipped_model_path()), split="question"))


def test_a_missing_or_foreign_file_reads_as_unknown(tmp_path):
    assert read_seen(tmp_path) is None and read_seen(None) is None
    (tmp_path / SEEN_FILE).write_text('{"format": "something else"}')
    assert read_seen(tmp_path) is None
    write_seen(tmp_path, ["Why?", "WHY? "], ["Why?", "How?"])  # a question in both counts as trained
    seen = read_seen(tmp_path)
    assert seen.trained == {question_key("why?")} and seen.validation == {question_key("how?")}
    assert count_seen(seen, ["why?", "How?", "When?"]) == (1, 1)


@pytest.mark.slow
def test_training_writes_the_hashes_and_evaluate_warns(small_qa, tmp_path, capsys):
    """Training's save path writes the file (a copy of the model keeps it), and `evaluate value-id` with the
    model folder warns on its training questions, not on its test fold."""
    out = tmp_path / "m"
    train_table(small_qa, TrainConfig(epochs=1, batch_size=32, steps_per_epoch=2, hidden=32, lam=2, threads=2), out,
          progress=False)
    seen = read_seen(out)
    folds = question_folds(small_qa["question"])
    assert seen.trained == set(small_qa["question"][folds >= 2].map(question_key))
    assert seen.validation == set(small_qa["question"][folds == 1].map(question_key))
    data = write_qa(small_qa, tmp_path / "qa.parquet")
    assert main(["evaluate", "value-id", str(data), "--encoder", str(out), "--k", "5"]) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if OVERLAP in line]
    assert len(lines) == 1 and lines[0].startswith("warning: ")
    fold0 = write_qa(small_qa[folds == 0], tmp_path / "fold0.parquet")
    assert main(["evaluate", "value-id", str(fold0), "--encoder", str(out), "--k", "5"]) == 0
    assert OVERLAP not in capsys.readouterr().err
