"""Stance labels in the QA table and `univar evaluate stance`: does an encoder's geometry see the position an
answer takes? The measures are checked on vectors built to hold (or not hold) the position, where the right
answer is known, and on the bundled human labels through the command line."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from univar.cli import main
from univar.errors import QAError, UnivarError
from univar.evaluate.stance import StanceValidity, weighted_auc
from univar.qa import read_qa, stance_labels, write_qa


def synthetic(n_questions: int = 60, models: tuple[str, ...] = ("a", "b", "c", "d"), stance_weight: float = 1.0,
              style_weight: float = 0.0, seed: int = 0) -> tuple[np.ndarray, pd.DataFrame]:
    """Each question answered by every model, taking a random side; a vector = topic + stance + style + noise."""
    rng = np.random.default_rng(seed)
    dim = 32
    side = rng.normal(size=dim)
    style = {m: rng.normal(size=dim) for m in models}
    rows, vectors = [], []
    for q in range(n_questions):
        topic = 3 * rng.normal(size=dim)
        for m in models:
            agree = bool(rng.integers(2))
            rows.append({"question": f"question {q}?", "answer": f"{m} says {agree} to {q}", "model": m, "lang": "en",
                         "stance": "agree" if agree else "disagree"})
            vectors.append(topic + stance_weight * (1 if agree else -1) * side + style_weight * style[m]
                           + rng.normal(size=dim))
    return np.array(vectors, dtype=np.float32), pd.DataFrame(rows)


def test_weighted_auc_is_the_mann_whitney_auc_and_weights_repeat_groups():
    rng = np.random.default_rng(0)
    scores = np.round(rng.normal(size=300), 1)  # rounded: many ties, each counted a half
    positive = rng.random(300) < 0.4
    assert weighted_auc(scores, positive)[0] == pytest.approx(roc_auc_score(positive, scores))
    groups = rng.integers(0, 20, 300)
    counts = rng.integers(0, 3, 20)  # a bootstrap draw: each group 0, 1 or 2 times
    repeated = np.repeat(np.arange(300), counts[groups])
    assert weighted_auc(scores, positive, counts[None, :], groups)[0] == pytest.approx(
        roc_auc_score(positive[repeated], scores[repeated]))


def test_a_space_that_holds_the_position_scores_high_and_one_that_does_not_scores_chance():
    seen = StanceValidity(n_boot=200).score(*synthetic(stance_weight=2.0))
    blind = StanceValidity(n_boot=200).score(*synthetic(stance_weight=0.0))
    assert seen.stance_auc.value > 0.9 and seen.probe_balanced_acc.value > 0.85
    assert abs(blind.stance_auc.value - 0.5) < 0.05 and abs(blind.probe_balanced_acc.value - 0.5) < 0.1
    assert blind.stance_auc.low < 0.5 < blind.stance_auc.high  # the interval says "no evidence"
    assert seen.stance_auc.low > 0.85
    assert seen.n_questions <= 60 and seen.n_pairs == 6 * seen.n_questions  # 4 answers: 6 pairs a question


def test_the_cross_llm_auc_is_blind_to_a_writer_fingerprint():
    # no position in the geometry, but each LLM writes alike: same-LLM pairs are near and, by chance, as often
    # same-label as not; only pairs by two LLMs say whether the space sees the position
    vectors, table = synthetic(stance_weight=0.0, style_weight=3.0, models=("a", "b"))
    table.loc[table["model"] == "a", "stance"] = "agree"  # a always agrees, b always disagrees: style = stance
    table.loc[table["model"] == "b", "stance"] = "disagree"
    table = pd.concat([table, table.assign(answer=table["answer"] + " again")], ignore_index=True)
    vectors = np.vstack([vectors, vectors + np.random.default_rng(1).normal(size=vectors.shape)])
    result = StanceValidity(n_boot=0, probe=False).score(vectors, table)
    assert result.stance_auc.value > 0.9  # the fingerprint passes for a position on all pairs
    assert result.stance_auc_cross_llm.value is None  # by two LLMs, every pair differs: nothing to compare
    vectors, table = synthetic(stance_weight=0.0, style_weight=3.0)
    result = StanceValidity(n_boot=0, probe=False).score(vectors, table)
    assert abs(result.stance_auc_cross_llm.value - 0.5) < 0.06


def test_the_probe_is_trained_on_other_llms_and_other_questions(monkeypatch):
    import univar.evaluate.stance

    fits = []
    real = univar.evaluate.stance.probe_scores

    def spy(train, y_train, test, seed=0, held_out=None):
        fits.append((len(train), len(test)))
        return real(train, y_train, test, seed, held_out)

    monkeypatch.setattr(univar.evaluate.stance, "probe_scores", spy)
    vectors, table = synthetic(stance_weight=2.0)
    result = StanceValidity(n_boot=0).score(vectors, table)
    assert 0 < len(fits) <= 4 * 5 and result.n_probe_test == len(table)  # one fit per (LLM, question fold)
    for n_train, n_test in fits:  # the held-out LLM's answers and its fold's questions are never trained on
        assert n_train < 0.75 * len(table) * 0.95 and n_train + n_test < len(table)


def test_same_seed_same_numbers_and_results_serialise():
    vectors, table = synthetic(stance_weight=1.0)
    a = StanceValidity(n_boot=100, seed=3).score(vectors, table, encoder="x").to_dict()
    b = StanceValidity(n_boot=100, seed=3).score(vectors, table, encoder="x").to_dict()
    assert a == b and json.loads(json.dumps(a)) == a
    for key in ("stance_auc", "stance_auc_cross_llm", "probe_balanced_acc"):
        low, high = a[f"{key}_ci"]
        assert low <= a[key] <= high


def test_unlabelled_or_one_sided_data_is_refused():
    vectors, table = synthetic()
    with pytest.raises(UnivarError, match="no column 'stance'"):
        StanceValidity().score(vectors, table.drop(columns="stance"))
    with pytest.raises(UnivarError, match="two different stance labels"):
        StanceValidity().score(vectors, table.assign(stance="agree"))
    with pytest.raises(UnivarError, match="empty"):
        StanceValidity().score(vectors, table.assign(stance=None))


def test_stance_labels_are_text_whatever_the_file_held(tmp_path):
    table = pd.DataFrame({"question": ["q1", "q1", "q2", "q2"], "answer": ["a", "b", "c", "d"],
                          "model": ["m", "n", "m", "n"], "lang": "en", "rating": [7.0, 3.0, None, 7.0]})
    write_qa(table, tmp_path / "r.parquet")
    write_qa(table, tmp_path / "r.csv")
    from_parquet = stance_labels(read_qa(tmp_path / "r.parquet", {"rating": "stance"}))
    from_csv = stance_labels(read_qa(tmp_path / "r.csv", {"rating": "stance"}))
    assert from_parquet.tolist()[:2] == from_csv.tolist()[:2] == ["7", "3"]  # 7.0 and "7.0" are one label
    assert from_parquet.isna().tolist() == from_csv.isna().tolist() == [False, False, True, False]
    assert stance_labels(read_qa(tmp_path / "r.parquet")).isna().all()  # no stance column: all unlabelled
    (tmp_path / "bad.jsonl").write_text('{"question": "q", "answer": "a", "model": "m", "lang": "en", '
                                        '"stance": ["yes"]}\n')
    with pytest.raises(QAError, match="column 'stance' holds list") as info:
        read_qa(tmp_path / "bad.jsonl")
    assert str(info.value).endswith("bad.jsonl:1")


def test_bundled_sets_carry_the_human_labels_and_datasets_says_which(capsys):
    expected = {"valuebench": {"agree", "disagree"},
                "donotanswer": {"0_refuse", "1_refute", "2_balanced", "3_disclaimer", "4_uncertain", "5_follow"},
                "xstest": {"1_full_compliance", "2_full_refusal", "3_partial_refusal"}}
    for name, labels in expected.items():
        table = read_qa(f"bundled:{name}")
        assert set(stance_labels(table).dropna()) == labels
    vb = read_qa("bundled:valuebench")
    labelled = stance_labels(vb)
    assert (vb["rating"][labelled == "agree"] >= 7).all() and (vb["rating"][labelled == "disagree"] <= 3).all()
    assert labelled[(vb["rating"] > 3) & (vb["rating"] < 7)].isna().all()
    dna = read_qa("bundled:donotanswer")
    assert (dna["stance"].str[0].astype(int) == dna["action"]).all()
    assert "stance" not in read_qa("bundled:fulcra").columns
    assert main(["datasets"]) == 0
    listing = capsys.readouterr().out.split("bundled:")
    labelled_sets = {part.split()[0] for part in listing if "stance labels:" in part}
    assert labelled_sets == set(expected)


@pytest.mark.slow
def test_cli_evaluate_stance_writes_the_json_and_bad_input_is_one_error_line(tmp_path, capsys):
    out = tmp_path / "s.json"
    assert main(["evaluate", "stance", "bundled:xstest", "--encoder", "tfidf", "--json", str(out),
                 "--n-boot", "50"]) == 0
    result = json.loads(out.read_text())
    for key in ("stance_auc", "stance_auc_cross_llm", "probe_balanced_acc", "n_questions", "n_pairs"):
        assert key in result
    assert 0.5 < result["stance_auc"] < 1 and result["n_questions"] > 100
    assert "stance AUC" in capsys.readouterr().out
    other = tmp_path / "a1.json"  # --stance COL takes another column: one annotator's labels
    assert main(["evaluate", "stance", "bundled:xstest", "--encoder", "tfidf", "--stance", "annotation_1",
                 "--json", str(other), "--n-boot", "0"]) == 0
    assert json.loads(other.read_text())["n_pairs"] != result["n_pairs"]
    capsys.readouterr()
    assert main(["evaluate", "stance", "bundled:fulcra", "--encoder", "tfidf"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no column 'stance'") and err.count("\n") == 1
    assert main(["evaluate", "stance", "bundled:xstest", "--encoder", "tfidf", "--stance", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "nope" in err and err.count("\n") == 1


@pytest.mark.slow
def test_minilm_sees_xstest_refusals_as_the_issue_measured(tmp_path):
    out = tmp_path / "s.json"
    assert main(["evaluate", "stance", "bundled:xstest", "--encoder", "minilm", "--json", str(out),
                 "--n-boot", "200"]) == 0
    result = json.loads(out.read_text())
    assert result["stance_auc"] == pytest.approx(0.748, abs=0.002)  # the issue's table, computed before this code
    assert result["probe_balanced_acc"] > result["probe_chance"]


def test_the_probe_scores_a_table_of_one_question_fold():
    # a benchmark scores the held-out fold 0 alone: the probe's folds must split those questions again
    from univar.qa import question_folds

    vectors, table = synthetic(n_questions=200, stance_weight=2.0)
    fold0 = question_folds(table["question"]) == 0
    result = StanceValidity(n_boot=0).score(vectors[fold0], table[fold0].reset_index(drop=True))
    assert result.n_probe_test == int(fold0.sum()) and result.probe_balanced_acc.value > 0.8
