"""Value-identification metrics against cases computed by hand, and the split rules (docs and README)."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

from univar.errors import UnivarError
from univar.evaluate import ValueIdentification, linear_probe, split_indices
from univar.evaluate.probe import top_k_accuracy
from univar.qa import question_fold


def score(x, labels, questions, **settings):
    """``ValueIdentification(**settings).score`` of vectors whose class is ``labels`` (as the model column)."""
    encoder = settings.pop("encoder", "")
    index = questions.index if isinstance(questions, pd.Series) else None  # a filtered table keeps its row labels
    table = pd.DataFrame({"model": list(labels), "question": list(questions)}, index=index)
    return ValueIdentification(target="model", **settings).score(x, table, encoder=encoder)


def test_top_k_accuracy_by_hand():
    scores = np.array([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2], [0.2, 0.3, 0.5]])
    classes = ["a", "b", "c"]
    truth = ["c", "a", "b"]
    # row 0 ranks b, c, a; row 1 ranks a, b, c; row 2 ranks c, b, a
    assert top_k_accuracy(scores, classes, truth, 1) == pytest.approx(1 / 3)
    assert top_k_accuracy(scores, classes, truth, 2) == pytest.approx(1.0)
    assert top_k_accuracy(scores, classes, ["z", "z", "z"], 3) == 0.0  # unseen labels never hit


def test_knn_by_hand():
    train = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9], [0.2, 0.8]], dtype=np.float32)
    y_train = np.array(["x", "x", "y", "y", "y"], dtype=object)
    test = np.array([[1, 0.05], [0.05, 1]], dtype=np.float32)
    y_test = np.array(["x", "x"], dtype=object)
    scores = ValueIdentification(k=2).score_knn(train, y_train, test, y_test)
    assert scores.to_dict() == {"k": 2, "acc": 0.5, "f1": pytest.approx(2 / 3)}
    assert scores.correct.tolist() == [True, False]
    # with k=5 every vote is 2 x against 3 y: both predicted y; k is at most the training rows
    assert ValueIdentification(k=5).score_knn(train, y_train, test, y_test).acc == 0.0
    assert ValueIdentification(k=9).score_knn(train, y_train, test, y_test).k == 5


def test_linear_probe_separates_separable_data():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(4, 8)) * 5
    labels = np.repeat(np.array(["a", "b", "c", "d"], dtype=object), 30)
    x = centres[np.repeat(np.arange(4), 30)] + rng.normal(size=(120, 8))
    scores = linear_probe(x[::2], labels[::2], x[1::2], labels[1::2])
    assert scores["acc@1"] == 1.0 and scores["f1"] == 1.0
    assert scores["acc@5"] is None and scores["acc@10"] is None  # 4 classes: a top-5 guess always hits


def test_question_fold_is_the_design_hash():
    q = "  Should I Value Tradition?  "
    expected = int(hashlib.sha1("should i value tradition?".encode()).hexdigest(), 16) % 5
    assert question_fold(q) == expected


def test_question_split_keeps_questions_on_one_side():
    questions = [f"question {i}" for i in range(200) for _ in range(3)]
    labels = ["m1", "m2", "m3"] * 200
    train, test = split_indices(labels, questions, "question")
    assert set(np.array(questions)[train]).isdisjoint(np.array(questions)[test])
    assert all(question_fold(questions[i]) == 0 for i in test)
    assert 0.1 < len(test) / len(questions) < 0.3


def test_random_split_is_per_class_and_seeded():
    labels = ["a"] * 50 + ["b"] * 10 + ["c"] * 1
    questions = [str(i) for i in range(len(labels))]
    train, test = split_indices(labels, questions, "random", 0.2, seed=3)
    tested = np.array(labels, dtype=object)[test]
    assert (tested == "a").sum() == 10 and (tested == "b").sum() == 2 and (tested == "c").sum() == 0
    again = split_indices(labels, questions, "random", 0.2, seed=3)
    other = split_indices(labels, questions, "random", 0.2, seed=4)
    assert np.array_equal(test, again[1]) and not np.array_equal(test, other[1])


def test_evaluation_is_reproducible_and_reports_the_contract():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(90, 5)).astype(np.float32)
    labels = np.repeat(np.array(["m$en", "m$pt", "n$en"], dtype=object), 30)
    questions = [f"q{i % 30}" for i in range(90)]
    a = score(x, labels, questions, encoder="e", k=5, seed=0).to_dict()
    b = score(x, labels, questions, encoder="e", k=5, seed=0).to_dict()
    assert a == b
    assert list(a) == ["encoder", "split", "target", "n_classes", "chance", "n_train", "n_test", "knn", "linear"]
    assert list(a["knn"]) == ["k", "acc", "f1"] and list(a["linear"]) == ["acc@1", "acc@5", "acc@10", "f1"]
    assert a["n_classes"] == 3 and a["chance"] == pytest.approx(1 / 3) and a["n_train"] + a["n_test"] == 90


def test_a_single_class_is_refused():
    with pytest.raises(UnivarError, match="at least 2 classes"):
        score(np.zeros((4, 2)), ["a"] * 4, ["q"] * 4)


def test_faiss_and_sklearn_agree():
    pytest.importorskip("faiss")
    from univar.evaluate import knn_predict

    rng = np.random.default_rng(2)
    train = rng.normal(size=(500, 16)).astype(np.float32)
    y_train = rng.choice(np.array(["a", "b", "c", "d"], dtype=object), 500)
    test = rng.normal(size=(200, 16)).astype(np.float32)
    a = knn_predict(train, y_train, test, 15, backend="sklearn")
    b = knn_predict(train, y_train, test, 15, backend="faiss")
    assert (a == b).mean() == 1.0


def test_linear_probe_fits_on_a_seeded_sample_of_a_large_training_side(monkeypatch):
    import univar.evaluate.identification as ev

    rng = np.random.default_rng(0)
    labels = np.array(["a", "b"] * 300, dtype=object)
    x = rng.normal(size=(600, 8)).astype(np.float32) + (labels == "a")[:, None] * 3
    questions = [f"q{i}" for i in range(600)]
    full = score(x, labels, questions, split="random", seed=1)
    seen = []
    real = ev.linear_probe
    monkeypatch.setattr(ev, "linear_probe",
                        lambda tr, ytr, te, yte, seed, held: seen.append(len(tr))
                        or real(tr, ytr, te, yte, seed, held))
    monkeypatch.setattr(ev, "PROBE_MAX_TRAIN", 100)
    a = score(x, labels, questions, split="random", seed=1)
    b = score(x, labels, questions, split="random", seed=1)
    assert seen == [100, 100] and a.linear == b.linear  # sampled, reproducibly
    assert a.n_train == full.n_train and a.knn == full.knn  # k-NN and the counts still use every training QA
    assert a.linear.acc_at_1 > 0.9  # separable data stays separated from 100 training QAs


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sklearn", "faiss"])
def test_knn_on_selected_rows_equals_knn_on_their_copy(backend):
    if backend == "faiss":
        pytest.importorskip("faiss")
    from univar.evaluate import Rows, knn_predict

    rng = np.random.default_rng(3)
    x = rng.normal(size=(20_000, 8)).astype(np.float32)  # more than one 8192-row slice on each side
    y = rng.choice(np.array(["a", "b", "c"], dtype=object), len(x))
    rows = rng.permutation(len(x))
    train, test = np.sort(rows[:11_000]), rows[11_000:]  # interleaved, the test side unsorted
    copied = knn_predict(x[train], y[train], x[test], 7, backend=backend)
    selected = knn_predict(Rows(x, train), y[train], Rows(x, test), 7, backend=backend)
    np.testing.assert_array_equal(selected, copied)


def test_faiss_knn_never_copies_the_whole_training_side():
    """The 200k-QA evaluation hit the 3 GiB budget (bench/memory.py) by holding the training rows twice
    besides FAISS's own index; numpy's allocations are traced, so a whole copy would show in the peak."""
    pytest.importorskip("faiss")
    import tracemalloc

    from univar.evaluate import Rows, knn_predict

    rng = np.random.default_rng(4)
    x = rng.normal(size=(240_000, 64)).astype(np.float32)  # 15 slices of training rows
    y = rng.choice(np.array(["a", "b"], dtype=object), len(x))
    train, test = np.arange(0, len(x), 2), np.arange(1, len(x), 32)
    train_bytes = len(train) * x.shape[1] * 4
    tracemalloc.start()
    try:
        knn_predict(Rows(x, train), y[train], Rows(x, test), 5, backend="faiss")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 0.5 * train_bytes, (peak, train_bytes)


def _chosen_c(caplog) -> float:
    line = [r.getMessage() for r in caplog.records if r.getMessage().startswith("linear probe: C=")][-1]
    return float(line.split("C=")[1].split()[0])


def test_linear_probe_chooses_its_l2_strength_on_training_rows_only(caplog):
    import logging

    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    caplog.set_level(logging.INFO, logger="univar")
    rng = np.random.default_rng(0)
    # a weak signal spread over 100 of 400 dimensions, 600 training rows: C=1 fits the noise
    labels = np.array(["a", "b"] * 1000, dtype=object)
    x = rng.normal(size=(2000, 400))
    x[:, :100] += (labels == "a")[:, None] * 0.15
    tr, te = np.arange(600), np.arange(600, 2000)
    held = np.arange(600) // 2 % 2 == 1
    tuned = linear_probe(x[tr], labels[tr], x[te], labels[te], held_out=held)
    c = _chosen_c(caplog)
    s = StandardScaler().fit(x[tr])
    fixed = LogisticRegression(C=1.0, max_iter=2000).fit(s.transform(x[tr]), labels[tr])
    fixed = fixed.score(s.transform(x[te]), labels[te])
    assert c < 1.0 and tuned["acc@1"] > fixed + 0.01
    # the test labels play no part in the choice
    shuffled = linear_probe(x[tr], labels[tr], x[te], rng.permutation(labels[te]), held_out=held)
    assert _chosen_c(caplog) == c and shuffled["acc@1"] != tuned["acc@1"]
    # a held-out part that leaves one class to fit on falls back to a random 20%
    linear_probe(x[tr], labels[tr], x[te], labels[te], held_out=np.arange(600) % 2 == 1)
    assert "on 115 held-out" in caplog.records[-1].getMessage()


def test_question_split_chooses_the_probe_strength_on_unseen_questions(monkeypatch):
    import univar.evaluate.identification as ev

    rng = np.random.default_rng(0)
    questions = [f"question {i // 3}" for i in range(600)]
    labels = np.array(["a", "b", "c"] * 200, dtype=object)
    x = rng.normal(size=(600, 8)).astype(np.float32) + (labels == "a")[:, None]
    seen = {}
    real = ev.linear_probe

    def spy(tr, ytr, te, yte, seed, held):
        seen["held"] = held
        return real(tr, ytr, te, yte, seed, held)

    monkeypatch.setattr(ev, "linear_probe", spy)
    score(x, labels, questions, split="question")
    train, _ = split_indices(labels, questions, "question")
    held = seen["held"]
    assert held is not None and len(held) == len(train) and 0 < held.sum() < len(train)
    held_q = {questions[i] for i in train[held]}
    assert held_q.isdisjoint(questions[i] for i in train[~held])
    assert all(question_fold(q) == 1 for q in held_q)
    score(x, labels, questions, split="random")
    assert seen["held"] is None  # the random split holds out random rows


def test_paired_difference_resamples_whole_questions():
    from univar.evaluate import paired_difference

    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(60), 5)  # 60 questions, 5 LLMs' answers each
    same = rng.random(300) < 0.5
    assert paired_difference(same, same, groups) == {"diff": 0.0, "ci_low": 0.0, "ci_high": 0.0, "level": 0.95,
                                                     "n_groups": 60}
    better = paired_difference(np.ones(300), rng.random(300) < 0.5, groups)
    assert better["ci_low"] > 0.3 and better["ci_low"] <= better["diff"] <= better["ci_high"]
    # A wins whole questions, B others: answers of one question move together, so resampling questions
    # gives a wider interval than treating the 300 answers as independent
    a = np.repeat(rng.random(60) < 0.6, 5)
    b = np.repeat(rng.random(60) < 0.4, 5)
    clustered = paired_difference(a, b, groups)
    independent = paired_difference(a, b, np.arange(300))
    assert clustered["diff"] == independent["diff"]
    assert clustered["ci_high"] - clustered["ci_low"] > 1.5 * (independent["ci_high"] - independent["ci_low"])
    with pytest.raises(UnivarError):
        paired_difference(np.ones(3), np.ones(4), [1, 2, 3])


def test_question_split_probe_reads_questions_by_position():
    rng = np.random.default_rng(1)
    questions = [f"question {i // 3}" for i in range(300)]
    labels = np.array(["a", "b", "c"] * 100, dtype=object)
    x = rng.normal(size=(300, 8)).astype(np.float32) + (labels == "a")[:, None]
    shifted = pd.Series(questions, index=np.arange(1000, 1300))  # a filtered table keeps its old row labels
    assert score(x, labels, shifted, split="question") == score(x, labels, questions, split="question")


@pytest.mark.parametrize("n_classes", [2, 5])
def test_probe_fit_agrees_with_sklearn_at_a_fixed_c(n_classes):
    """The hand-written probe minimises sklearn's objective (C / 2 with two classes, where sklearn fits one
    binomial vector): same predictions, same log-loss, on and off the training rows."""
    import torch
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss
    from sklearn.preprocessing import StandardScaler

    from univar.evaluate.probe import _fit_softmax, _probe_axes

    rng = np.random.default_rng(5)
    centres = rng.normal(size=(n_classes, 24))
    y = rng.integers(0, n_classes, size=3000)
    x = centres[y] + rng.normal(scale=2.0, size=(3000, 24))  # overlapping classes: a real optimum, not separation
    x[:, 5] *= 40  # standardisation must handle scales
    scaler = StandardScaler().fit(x[:2000])
    xs, xt = scaler.transform(x[:2000]), scaler.transform(x[2000:])
    for c in (0.01, 1.0):
        ref = LogisticRegression(C=c, tol=1e-10, max_iter=10_000).fit(xs, y[:2000])
        z, vectors = _probe_axes(torch.from_numpy(xs.astype(np.float32)))
        w, b = _fit_softmax(z, torch.from_numpy(y[:2000]), n_classes, c, vectors)
        w = (vectors @ w).double().numpy()
        for rows, truth in ((xs, y[:2000]), (xt, y[2000:])):
            logits = rows @ w + b.double().numpy()
            proba = np.exp(logits - logits.max(axis=1, keepdims=True))
            proba /= proba.sum(axis=1, keepdims=True)
            assert (logits.argmax(axis=1) == ref.predict(rows)).mean() >= 0.99
            assert abs(log_loss(truth, proba, labels=range(n_classes))
                       - log_loss(truth, ref.predict_proba(rows), labels=range(n_classes))) < 1e-3


def test_linear_probe_is_deterministic():
    import torch

    from univar.evaluate.probe import _fit_softmax, _probe_axes

    rng = np.random.default_rng(6)
    labels = rng.choice(np.array(list("abcdefg"), dtype=object), 6000)
    x = rng.normal(size=(6000, 96)).astype(np.float32) + (labels == "a")[:, None] * 0.3
    held = np.arange(5000) % 5 == 0
    first = linear_probe(x[:5000], labels[:5000], x[5000:], labels[5000:], held_out=held)
    second = linear_probe(x[:5000], labels[:5000], x[5000:], labels[5000:], held_out=held)
    assert first == second
    z, vectors = _probe_axes(torch.from_numpy(x[:5000]))
    y = torch.from_numpy(np.unique(labels[:5000], return_inverse=True)[1])
    fits = [_fit_softmax(z, y, 7, 0.3, vectors) for _ in range(2)]
    assert torch.equal(fits[0][0], fits[1][0]) and torch.equal(fits[0][1], fits[1][1])


def test_faiss_search_over_slices_of_the_training_rows_finds_the_same_neighbours(monkeypatch):
    """Large training sides are searched a slice at a time (univar.evaluate.knn.FAISS_SLICE) and the k best merged."""
    pytest.importorskip("faiss")
    import univar.evaluate.knn as ev

    rng = np.random.default_rng(5)
    train = rng.normal(size=(5000, 16)).astype(np.float32)
    y_train = rng.choice(np.array(["a", "b", "c", "d"], dtype=object), len(train))
    test = rng.normal(size=(900, 16)).astype(np.float32)
    whole = ev._faiss_neighbours(train, test, 25)
    monkeypatch.setattr(ev, "FAISS_SLICE", 700)  # 8 slices, the last one short
    sliced = ev._faiss_neighbours(train, test, 25)
    np.testing.assert_array_equal(sliced, whole)
    assert (ev.knn_predict(train, y_train, test, 25, backend="faiss")
            == ev.knn_predict(train, y_train, test, 25, backend="sklearn")).all()


def _three_llms(valuebench: pd.DataFrame) -> pd.DataFrame:
    """The small file of issue 22: 20 ValueBench questions, each answered by the same 3 LLMs (60 QAs)."""
    models = ["gpt-4-1106-preview", "llama-7b-chat", "mistral-7b-instruct"]
    table = valuebench[valuebench["model"].isin(models)].drop_duplicates(["question", "model"])
    answered = table.groupby("question")["model"].nunique()
    first = [q for q in table["question"].drop_duplicates() if answered[q] == 3][:20]
    return table[table["question"].isin(first)].reset_index(drop=True)


@pytest.mark.slow
def test_probe_beats_chance_on_60_qas_of_3_llms_as_sklearn_does(valuebench, caplog):
    """With fewer training QAs than dimensions (48 against TF-IDF's 59) standardising every column let the probe
    fit the noise columns: 43% over the five question folds (chance 33%), some folds below chance. Scaled by
    probe_scaler it reads the leading columns, and scikit-learn's LogisticRegression at the C the probe chose, on
    the same scaled features, agrees with it."""
    import logging

    from sklearn.linear_model import LogisticRegression

    from univar.encoders import embed
    from univar.evaluate.probe import probe_scaler
    from univar.qa import class_labels, qa_texts, question_folds
    from univar.registry import get_encoder

    caplog.set_level(logging.INFO, logger="univar")
    table = _three_llms(valuebench)
    assert len(table) == 60
    x = embed(qa_texts(table), get_encoder("tfidf"), progress=False)
    labels = np.asarray(class_labels(table).to_numpy(), dtype=object)
    folds = question_folds(table["question"])
    probe_hits = sklearn_hits = 0
    for fold in range(5):
        tr, te = folds != fold, folds == fold
        assert tr.sum() <= x.shape[1] + 1  # the regime of the issue: any labelling of the training QAs separates
        acc = linear_probe(x[tr], labels[tr], x[te], labels[te])["acc@1"]
        scaler = probe_scaler(x[tr])
        ref = LogisticRegression(C=_chosen_c(caplog), max_iter=10_000).fit(scaler.transform(x[tr]), labels[tr])
        probe_hits += round(acc * te.sum())
        sklearn_hits += int((ref.predict(scaler.transform(x[te])) == labels[te]).sum())
    assert probe_hits / 60 >= 0.5 > 1 / 3
    assert abs(probe_hits - sklearn_hits) <= 2


def test_probe_scaler_is_standard_scaler_unless_the_rows_are_fewer_than_the_dimensions():
    from sklearn.preprocessing import StandardScaler

    from univar.evaluate.probe import probe_scaler

    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 40)) * np.geomspace(1, 1e-3, 40)  # a spectrum falling off, as SVD components do
    np.testing.assert_array_equal(probe_scaler(x).scale_, StandardScaler().fit(x).scale_)  # every bundled set
    few, ref = probe_scaler(x[:41]), StandardScaler().fit(x[:41])
    median = np.median(ref.scale_)
    assert few.scale_.min() == median and (few.scale_ == np.maximum(ref.scale_, median)).all()
    np.testing.assert_array_equal(few.mean_, ref.mean_)


def test_question_split_warns_when_its_test_fold_is_small():
    rng = np.random.default_rng(0)
    for n_questions, warned in ((20, True), (60, False)):
        questions = [f"question {i // 2}" for i in range(2 * n_questions)]
        labels = np.array(["a", "b"] * n_questions, dtype=object)
        result = score(rng.normal(size=(len(labels), 4)).astype(np.float32), labels, questions, split="question",
                       k=3)
        small = [w for w in result.warnings if "test fold" in w]
        assert bool(small) is warned, (result.n_test, result.warnings)
        if warned:
            assert result.n_test < 20 and f"holds only {result.n_test} QAs" in small[0] and "\n" not in small[0]
    assert not [w for w in score(rng.normal(size=(60, 4)).astype(np.float32), labels[:60], questions[:60],
                                 k=3).warnings if "test fold" in w]  # the random split has no fold to warn of


def test_scores_below_chance_are_said_with_the_random_split_trap():
    """Every class answers the same questions once and the vectors carry the question only: the random split
    trains on the other classes' answers to each test question, so k-NN names another class every time."""
    rng = np.random.default_rng(0)
    topics = rng.normal(size=(40, 16))
    questions = [f"question {i // 3}" for i in range(120)]
    labels = np.array(["a", "b", "c"] * 40, dtype=object)
    x = (topics[np.arange(120) // 3] + 0.05 * rng.normal(size=(120, 16))).astype(np.float32)
    result = score(x, labels, questions, k=2)
    low = [w for w in result.warnings if "below chance" in w]
    assert result.knn.acc < 0.1 and len(low) == 1 and "\n" not in low[0]
    assert f"{result.n_test} of the {result.n_test} test QAs have their question answered in training by other " \
           "classes only" in low[0] and "--split question" in low[0]
    held_out = score(x, labels, questions, split="question", k=2)
    assert not [w for w in held_out.warnings if "below chance" in w]
