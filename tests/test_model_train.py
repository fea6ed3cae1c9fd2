"""UniVaR training end to end on real minilm embeddings of a small ValueBench subset: the model trains,
saves safetensors + univar.json, loads wherever an encoder is accepted, resumes exactly, refuses pickles
and damaged directories, and trains data-parallel under torchrun."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors.torch import load_file

from univar.cli import main
from univar.errors import UnivarError
from univar.model.config import TrainConfig
from univar.model.train import train_table
from univar.model.univar import UniVaR
from univar.qa import question_fold, write_qa

FAST = dict(epochs=4, batch_size=32, steps_per_epoch=8, hidden=64, lam=3, patience=50, threads=2)


@pytest.fixture(scope="session")
def small_file(small_qa, tmp_path_factory, session_cache):
    return write_qa(small_qa, tmp_path_factory.mktemp("data") / "small.parquet")


@pytest.fixture(scope="session")
def trained(small_qa, tmp_path_factory, session_cache):
    out = tmp_path_factory.mktemp("model") / "m"
    result = train_table(small_qa, TrainConfig(**FAST), out, progress=False)
    return out, result


def test_training_lowers_the_loss_and_writes_safetensors_and_json(trained, small_qa):
    out, result = trained
    losses = [h["loss"] for h in result.history[1:]]
    assert losses[-1] < losses[0]
    names = {p.name for p in out.iterdir()}
    assert {"MODEL_CARD.md", "checkpoint", "model.safetensors", "univar.json"} <= names
    assert not [n for n in names if n.endswith(".tmp")] and not out.with_name("m.training").exists()
    card = (out / "MODEL_CARD.md").read_text()  # the card says what this directory holds
    assert f"{len(small_qa):,} QAs of 6 (LLM, language) classes" in card and "lambda 3" in card
    config = json.loads((out / "univar.json").read_text())
    assert config["format"] == "univar" and config["mode"] == "set" and config["lambda"] == 3
    assert set(load_file(str(out / "model.safetensors"))) >= {"head.up.weight", "head.down.weight"}
    # question fold 0 is never trained on and fold 1 only validates
    folds = small_qa["question"].map(question_fold)
    assert config["training"]["n_train"] == int((folds >= 2).sum())
    assert config["training"]["n_val"] == int((folds == 1).sum())
    # the saved model is the best on validation, and epoch 0 (the base encoder) was a candidate
    scores = [h["val_knn_acc"] for h in result.history]
    assert result.best_score == max(scores) >= result.base_score == scores[0]
    assert config["validation"]["best_epoch"] == result.best_epoch


def test_model_dir_is_an_encoder_with_a_weight_hash_in_its_id(trained, small_qa, tmp_path):
    out, _ = trained
    enc = UniVaR.load(out)
    vectors = enc.encode(["Q: Is honesty important? A: Yes."] * 2, progress=False)
    assert vectors.shape == (2, 384) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    assert UniVaR.load(copy).id == enc.id  # same weights, same cache
    from safetensors.torch import save_file

    weights = load_file(str(copy / "model.safetensors"))
    weights["head.down.bias"] = weights["head.down.bias"] + 0.01
    save_file(weights, str(copy / "model.safetensors"))
    changed = UniVaR.load(copy)
    assert changed.id != enc.id  # changed weights never reuse the old embeddings
    assert not np.allclose(changed.encode(["Q: Is honesty important? A: Yes."], progress=False, cache=False),
                           vectors[:1])


def test_python_api(trained, small_qa):
    out, _ = trained
    model = UniVaR.load(out)
    per_qa = model.encode_qas(small_qa.head(5))
    assert per_qa.shape == (5, 384)
    pairs = list(zip(small_qa["question"].head(5), small_qa["answer"].head(5)))
    assert np.allclose(model.encode_qas(pairs), per_qa, atol=1e-5)
    one_qa_views = model.encode_views([small_qa.iloc[[i]] for i in range(5)])
    assert np.allclose(one_qa_views, per_qa, atol=1e-5)  # a view of one QA is that QA
    view = model.encode_views([small_qa.head(4)])[0]
    mean = per_qa[:4].mean(0)
    assert np.allclose(view, mean / np.linalg.norm(mean), atol=1e-5)
    llms = model.embed_llm(small_qa, n_bootstrap=50)
    assert len(llms) == 6 and set(llms["lang"]) == {"en"}
    assert (llms["spread"] > 0).all() and (llms["spread_p95"] >= llms["spread"]).all()
    assert all(abs(np.linalg.norm(v) - 1) < 1e-5 for v in llms["vector"])


def test_keep_base_model_trains_saves_and_loads(small_qa, tmp_path, minilm):
    result = train_table(small_qa, TrainConfig(**dict(FAST, epochs=2, keep_base=1.5)), tmp_path / "k", progress=False)
    config = json.loads((tmp_path / "k" / "univar.json").read_text())
    assert config["dim"] == 768 and config["head"]["keep_base"] == 1.5
    model = UniVaR.load(tmp_path / "k")
    vectors = model.encode_qas(small_qa.head(6))
    assert vectors.shape == (6, 768) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    base = minilm.encode_batch([f"Q: {q} A: {a}" for q, a in zip(small_qa.question.head(6), small_qa.answer.head(6))])
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    # the first half is the base encoder's vector, scaled by w / sqrt(w^2 + 1)
    assert np.allclose(vectors[:, :384], base * 1.5 / np.sqrt(1.5**2 + 1), atol=1e-4)
    assert result.best_score >= result.base_score  # validation scored the concatenation, epoch 0 included
    with pytest.raises(UnivarError, match="different settings: keep_base"):
        train_table(small_qa, TrainConfig(**dict(FAST, epochs=3, keep_base=0.5)), tmp_path / "k", resume=True,
              progress=False)


@pytest.mark.slow
def test_mean_gain_selects_the_epoch_by_every_dataset(small_qa, tmp_path):
    from univar.qa import read_many

    models = sorted(small_qa["model"].unique())
    paths = [write_qa(small_qa[small_qa["model"].isin(part)], tmp_path / f"{name}.parquet")
             for part, name in ((models[:3], "a"), (models[3:], "b"))]
    table = read_many(paths)
    assert set(table["dataset"]) == {str(p) for p in paths}
    result = train_table(table, TrainConfig(**dict(FAST, epochs=3, val_select="mean-gain")), tmp_path / "m",
                         progress=False)
    first = result.history[0]
    assert set(first["val_knn_acc_by_dataset"]) == {str(p) for p in paths} and first["val_score"] == 1.0
    for row in result.history:  # the mean over datasets of accuracy / epoch-0 accuracy
        gains = [row["val_knn_acc_by_dataset"][g] / first["val_knn_acc_by_dataset"][g] for g in map(str, paths)]
        assert row["val_score"] == pytest.approx(np.mean(gains))
    best = max(result.history, key=lambda r: r["val_score"])
    assert result.best_score == best["val_score"] and result.best_epoch == best["epoch"]
    assert "mean over datasets" in json.loads((tmp_path / "m" / "univar.json").read_text())["validation"]["metric"]
    with pytest.raises(UnivarError, match="at least 2 datasets"):
        train_table(small_qa, TrainConfig(**dict(FAST, val_select="mean-gain")), tmp_path / "one", progress=False)


@pytest.mark.slow
def test_resume_continues_exactly_where_a_run_stopped(small_qa, tmp_path):
    cfg = dict(FAST, epochs=4)
    straight = train_table(small_qa, TrainConfig(**cfg), tmp_path / "a", progress=False)
    train_table(small_qa, TrainConfig(**dict(cfg, epochs=2)), tmp_path / "b", progress=False)
    resumed = train_table(small_qa, TrainConfig(**cfg), tmp_path / "b", resume=True, progress=False)
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in straight.history]
    last_a = load_file(str(tmp_path / "a" / "checkpoint" / "state.safetensors"))
    last_b = load_file(str(tmp_path / "b" / "checkpoint" / "state.safetensors"))
    assert all((last_a[k] == last_b[k]).all() for k in last_a if k.startswith("model."))
    with pytest.raises(UnivarError, match="different settings: lam"):
        train_table(small_qa, TrainConfig(**dict(cfg, epochs=6, lam=5)), tmp_path / "b", resume=True, progress=False)
    with pytest.raises(UnivarError, match="no checkpoint"):
        train_table(small_qa, TrainConfig(**cfg), tmp_path / "none", resume=True, progress=False)


@pytest.mark.slow
def test_same_seed_same_model(small_qa, tmp_path):
    a = train_table(small_qa, TrainConfig(**dict(FAST, epochs=2)), tmp_path / "a", progress=False)
    b = train_table(small_qa, TrainConfig(**dict(FAST, epochs=2)), tmp_path / "b", progress=False)
    c = train_table(small_qa, TrainConfig(**dict(FAST, epochs=2, seed=1)), tmp_path / "c", progress=False)
    assert [h["loss"] for h in a.history] == [h["loss"] for h in b.history] != [h["loss"] for h in c.history]


def test_cli_train_then_evaluate_with_the_model_dir(small_file, tmp_path, capsys):
    out = tmp_path / "cli-model"
    code = main(["train", str(small_file), "--mode", "set", "--lambda", "2", "--base", "minilm", "--out", str(out),
                 "--epochs", "2", "--batch-size", "16", "--steps-per-epoch", "3"])
    assert code == 0 and (out / "univar.json").exists()
    assert "trained set model" in capsys.readouterr().out
    code = main(["evaluate", "value-id", str(small_file), "--encoder", str(out), "--split", "question",
                 "--json", str(tmp_path / "u.json")])
    assert code == 0
    result = json.loads((tmp_path / "u.json").read_text())
    assert set(result) == {"encoder", "split", "target", "n_classes", "chance", "n_train", "n_test", "knn", "linear"}
    assert result["n_classes"] == 6 and 0 <= result["knn"]["acc"] <= 1


def _refused(spec: str, capsys) -> str:
    code = main(["evaluate", "value-id", "bundled:valuebench", "--encoder", spec])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: ")
    return err[0]


def test_pickle_and_damaged_model_dirs_are_refused(trained, tmp_path, capsys):
    out, _ = trained
    pickled = tmp_path / "pickled"
    shutil.copytree(out, pickled)
    (pickled / "pytorch_model.bin").write_bytes(b"\x80\x04K\x01.")
    assert "pickle" in _refused(str(pickled), capsys)

    truncated = tmp_path / "truncated"
    shutil.copytree(out, truncated)
    data = (truncated / "model.safetensors").read_bytes()
    (truncated / "model.safetensors").write_bytes(data[: len(data) // 2])
    assert "safetensors" in _refused(str(truncated), capsys)

    bad_json = tmp_path / "bad-json"
    shutil.copytree(out, bad_json)
    (bad_json / "univar.json").write_text("{not json")
    assert "corrupt JSON" in _refused(str(bad_json), capsys)

    wrong_shape = tmp_path / "wrong-shape"
    shutil.copytree(out, wrong_shape)
    config = json.loads((wrong_shape / "univar.json").read_text())
    config["head"]["hidden"] = 32
    (wrong_shape / "univar.json").write_text(json.dumps(config))
    assert "do not match" in _refused(str(wrong_shape), capsys)

    no_weights = tmp_path / "no-weights"
    shutil.copytree(out, no_weights)
    (no_weights / "model.safetensors").unlink()
    assert "missing model.safetensors" in _refused(str(no_weights), capsys)


@pytest.mark.slow
def test_concat_mode_trains_saves_and_loads(small_qa, tmp_path):
    cfg = TrainConfig(mode="concat", lam=2, epochs=1, batch_size=4, steps_per_epoch=2, micro_batch=2, max_length=64,
                      val_max_reference=30, val_max_queries=12, patience=50)
    result = train_table(small_qa, cfg, tmp_path / "concat", progress=False)
    assert len(result.history) == 2 and result.history[1]["loss"] > 0
    assert all(0 <= h["val_knn_acc"] <= 1 for h in result.history)
    folder = tmp_path / "concat"
    assert (folder / "transformer" / "model.safetensors").exists()
    assert not [p for p in folder.rglob("*") if p.suffix in (".bin", ".pt", ".pkl")]
    model = UniVaR.load(folder)
    assert model.mode == "concat"
    assert model.encode_views([small_qa.head(3)]).shape == (1, 384)
    enc = UniVaR.load(folder)
    assert enc.encode(["Q: a A: b"], progress=False).shape == (1, 384)


@pytest.mark.slow
def test_gradcache_gives_the_same_gradient_as_one_big_batch(small_qa):
    """The concat step's gradient must not depend on the GradCache mini-batch size."""
    import torch

    from univar.model import distributed
    from univar.model.concat_mode import ConcatTrainer
    from univar.model.views import ViewSampler
    from univar.qa import class_labels, qa_texts

    texts = qa_texts(small_qa)
    batch = ViewSampler(class_labels(small_qa).to_numpy(), 2, 4, seed=0).sample()
    grads = []
    for micro in (2, 16):
        torch.manual_seed(0)
        cfg = TrainConfig(mode="concat", max_length=48, micro_batch=micro)
        trainer = ConcatTrainer(cfg, texts, distributed.Dist())
        for module in trainer.module.modules():  # different chunkings draw different dropout masks
            if isinstance(module, torch.nn.Dropout):
                module.p = 0.0
        torch.manual_seed(1)
        trainer.step(batch)
        grads.append(torch.cat([p.grad.flatten() for p in trainer.module.parameters() if p.grad is not None]))
    assert grads[0].abs().sum() > 0
    assert torch.allclose(grads[0], grads[1], atol=1e-5, rtol=1e-3)


@pytest.mark.slow
def test_ddp_two_processes_train_and_save_the_same_format(small_file, trained, tmp_path):
    """torchrun --nproc_per_node 2 (gloo on CPU): the loss falls and the directory matches single-process."""
    out = tmp_path / "ddp"
    torchrun = Path(sys.executable).with_name("torchrun")
    env = dict(os.environ, OMP_NUM_THREADS="1", UNIVAR_PROGRESS="0")
    proc = subprocess.run(
        [str(torchrun), "--standalone", "--nproc_per_node", "2", "-m", "univar", "train", str(small_file),
         "--mode", "set", "--lambda", "3", "--out", str(out), "--epochs", "4", "--batch-size", "16",
         "--steps-per-epoch", "8", "--patience", "50", "--hidden", "64"],
        env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    config = json.loads((out / "univar.json").read_text())
    assert config["training"]["world_size"] == 2
    losses = [h["loss"] for h in config["validation"]["history"][1:]]
    assert len(losses) == 4 and losses[-1] < losses[0]
    single, _ = trained
    single_config = json.loads((single / "univar.json").read_text())
    assert set(config) == set(single_config)
    ddp_w = load_file(str(out / "model.safetensors"))
    one_w = load_file(str(single / "model.safetensors"))
    assert set(ddp_w) == set(one_w) and all(ddp_w[k].dtype == one_w[k].dtype for k in ddp_w)
    assert UniVaR.load(out).encode(["Q: x A: y"], progress=False).shape == (1, 384)


@pytest.mark.slow
def test_topic_removal_model_subtracts_what_the_question_predicts(small_qa, tmp_path, minilm):
    """The saved model's QA vector is built from e(QA) - g(e(Q)), g the ridge map fitted on training QAs."""
    result = train_table(small_qa, TrainConfig(**dict(FAST, epochs=2, keep_base=1.5, topic_alpha=1.0)), tmp_path / "t",
                   progress=False)
    config = json.loads((tmp_path / "t" / "univar.json").read_text())
    assert config["head"]["topic_alpha"] == 1.0 and config["dim"] == 768
    model = UniVaR.load(tmp_path / "t")
    pairs = list(zip(small_qa.question.head(6), small_qa.answer.head(6)))
    vectors = model.encode_qas(pairs)
    x = minilm.encode_batch([f"Q: {q} A: {a}" for q, a in pairs])
    q = minilm.encode_batch([f"Q: {q} A: ." for q, _ in pairs])
    # refit the ridge map by hand on the training rows and compare with the model's first half
    folds = small_qa["question"].map(question_fold).to_numpy()
    rows = np.flatnonzero((folds != 0) & (folds != 1))
    texts = [f"Q: {a} A: {b}" for a, b in zip(small_qa.question, small_qa.answer)]
    xt = minilm.encode_batch([texts[i] for i in rows]).astype(np.float64)
    qt = minilm.encode_batch([f"Q: {small_qa.question.iloc[i]} A: ." for i in rows]).astype(np.float64)
    qm, xm = qt.mean(0), xt.mean(0)
    w = np.linalg.solve((qt - qm).T @ (qt - qm) + np.eye(384), (qt - qm).T @ (xt - xm))
    resid = x - ((q - qm) @ w + xm)
    resid /= np.linalg.norm(resid, axis=1, keepdims=True)
    assert np.allclose(vectors[:, :384], resid * 1.5 / np.sqrt(1.5**2 + 1), atol=2e-3)
    # a table and its (question, answer) pairs give the same vectors; the residual is not the plain base
    assert np.allclose(model.encode_qas(small_qa.head(6)), vectors, atol=1e-5)
    base = x / np.linalg.norm(x, axis=1, keepdims=True)
    assert np.abs(vectors[:, :384] - base * 1.5 / np.sqrt(1.5**2 + 1)).max() > 0.05
    assert result.best_score >= result.base_score
    with pytest.raises(UnivarError, match="different settings: topic_alpha"):
        train_table(small_qa, TrainConfig(**dict(FAST, epochs=3, keep_base=1.5, topic_alpha=3.0)), tmp_path / "t",
              resume=True, progress=False)


def test_validation_is_the_shared_knn_and_epoch_0_scores_the_base(small_qa, tmp_path, monkeypatch):
    """Validation scores through ValueIdentification.score_knn, the k-NN of ``univar evaluate value-id`` (no
    second k-NN): once for epoch 0, once per epoch, and its accuracy is the validation score."""
    import importlib

    import univar.evaluate.identification

    train_module = importlib.import_module("univar.model.train")
    assert not hasattr(train_module, "knn_predict")
    calls, scores = [], []
    real = univar.evaluate.identification.ValueIdentification.score_knn

    def spy(self, ref, labels, queries, truth):
        calls.append((len(ref), len(queries), self.k))
        scores.append(real(self, ref, labels, queries, truth))
        return scores[-1]

    monkeypatch.setattr(univar.evaluate.identification.ValueIdentification, "score_knn", spy)
    result = train_table(small_qa, TrainConfig(**dict(FAST, epochs=2, val_k=7)), tmp_path / "m", progress=False)
    folds = small_qa["question"].map(question_fold)
    assert calls == [(int((folds >= 2).sum()), int((folds == 1).sum()), 7)] * 3
    assert [h["epoch"] for h in result.history] == [0, 1, 2] and result.history[0]["loss"] is None
    assert [h["val_knn_acc"] for h in result.history] == [s.acc for s in scores]


def test_small_data_lowers_validation_k_as_evaluate_does_and_says_when_no_epoch_beat_the_base(small_qa, tmp_path):
    """60 QAs of 3 LLMs: k=50 is more than the training QAs, so every held-out QA had the same neighbours and
    validation sat at chance; it is lowered by the rule ``univar evaluate value-id`` uses, with one warning. With
    nothing learnt (lr 0) the model is epoch 0: said in one line and in the model card."""
    from univar.evaluate import knn_k
    from univar.qa import class_labels

    models, questions = sorted(small_qa["model"].unique())[:3], sorted(small_qa["question"].unique())[:20]
    table = small_qa[small_qa["model"].isin(models) & small_qa["question"].isin(questions)]
    table = table.groupby(["model", "question"]).head(1).reset_index(drop=True)  # one answer each
    assert len(table) == 60
    folds, labels = table["question"].map(question_fold).to_numpy(), class_labels(table).to_numpy()
    k, _ = knn_k(50, labels[folds >= 2], labels[folds == 1])
    assert (folds >= 2).sum() < 50 and 1 <= k < 50
    lines: list[str] = []
    result = train_table(table, TrainConfig(**dict(FAST, epochs=2, lr=0.0)), tmp_path / "m", progress=False,
                   report=lines.append)
    warned = [line for line in lines if line.startswith("warning: validation k-NN")]
    assert len(warned) == 1 and f"k=50 is more than the {(folds >= 2).sum()} training QAs; using k={k}" in warned[0]
    config = json.loads((tmp_path / "m" / "univar.json").read_text())
    assert config["validation"]["metric"].startswith(f"knn@{k} acc")
    assert result.best_epoch == 0 and len(result.history) == 3
    said = [line for line in lines if "no epoch beat the base encoder" in line]
    assert len(said) == 1 and said[0].startswith("note: ") and "untrained" in said[0]
    assert "**Untrained:** no epoch beat the base encoder" in (tmp_path / "m" / "MODEL_CARD.md").read_text()


def test_no_training_function_is_long():
    """The loop is a Trainer of short methods (none over 60 lines), not one long function of closures."""
    import ast
    import importlib
    import inspect

    train_module = importlib.import_module("univar.model.train")
    tree = ast.parse(inspect.getsource(train_module))
    long = [node.name for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef) and node.end_lineno - node.lineno + 1 > 60]
    assert long == []
    nested = [inner.name for outer in ast.walk(tree) if isinstance(outer, ast.FunctionDef)
              for inner in ast.walk(outer) if isinstance(inner, ast.FunctionDef) and inner is not outer]
    assert nested == []
    for name in ("run", "_epoch", "_validate", "_checkpoint", "_resume", "_save_best"):
        assert callable(getattr(train_module.Trainer, name)), name
