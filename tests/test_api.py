"""The public Python API at the top level: read, load, encode, save, evaluate, train, get_encoder."""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest

import univar
from univar.encoders import Encoder


@pytest.fixture(scope="module")
def table(small_qa):
    return small_qa.reset_index(drop=True)


def test_import_univar_stays_light_and_lists_its_api():
    code = ("import sys, univar; assert 'torch' not in sys.modules, 'torch'; "
            "t = univar.read_qa('bundled:xstest'); assert 'torch' not in sys.modules; print(len(t))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    for name in ("read_qa", "UniVaR", "ValueIdentification", "train", "get_encoder", "Encoder", "KnnScores",
                 "ProbeScores"):
        assert name in univar.__all__ and name in dir(univar)
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        univar.nothing  # noqa: B018


def test_univar_is_an_encoder_that_encodes_tables_pairs_and_texts_alike(table, tmp_path):
    model = univar.UniVaR.load("univar")
    assert isinstance(model, Encoder) and model.name == "univar" and model.dim == 1792
    rows = table.head(6)
    from_table = model.encode(rows, progress=False)
    from_pairs = model.encode(list(zip(rows["question"], rows["answer"])), progress=False)
    from_texts = model.encode([f"Q: {q} A: {a}" for q, a in zip(rows["question"], rows["answer"])], progress=False)
    assert from_table.shape == (6, 1792)
    assert np.allclose(from_table, from_pairs) and np.allclose(from_table, from_texts)
    assert np.allclose(from_table, model.encode_qas(rows), atol=1e-5)  # the cache gives what the model computes
    assert univar.get_encoder("univar").id == model.id
    with pytest.raises(univar.UnivarError, match="single string"):
        model.encode("Q: x A: y")


def test_save_copies_a_model_that_encodes_the_same(table, tmp_path):
    model = univar.UniVaR.load("univar")
    copy = univar.UniVaR.load(model.save(tmp_path / "copy"))
    assert copy.id == model.id and copy.name == str(tmp_path / "copy")
    rows = table.head(4)
    assert np.allclose(copy.encode_qas(rows), model.encode_qas(rows), atol=1e-6)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(univar.UnivarError, match="not a univar model directory"):
        model.save(tmp_path / "busy")


def test_value_identification_object_matches_the_cli_json(table, tmp_path, capsys):
    from univar.cli import main
    from univar.qa import write_qa

    result = univar.ValueIdentification(split="question", k=10).evaluate(univar.get_encoder("minilm"), table)
    assert isinstance(result.knn, univar.KnnScores) and isinstance(result.linear, univar.ProbeScores)
    assert result.knn.k == 10 and 0 <= result.knn.acc <= 1 and 0 <= result.linear.acc_at_1 <= 1
    assert result.knn["acc"] == result.knn.acc and result.linear["acc@1"] == result.linear.acc_at_1  # old style
    data = write_qa(table, tmp_path / "qa.csv")
    assert main(["evaluate", "value-id", str(data), "--encoder", "minilm", "--split", "question", "--k", "10",
                 "--json", str(tmp_path / "r.json")]) == 0
    import json

    cli = json.loads((tmp_path / "r.json").read_text())
    assert result.to_dict() | {"encoder": cli["encoder"]} == cli
    with pytest.raises(univar.UnivarError, match="not its name"):
        univar.ValueIdentification().evaluate("minilm", table)
    for bad, message in (({"split": "both"}, "split must be one of random, question, got 'both'"),
                         ({"k": 0}, "k must be at least 1, got 0"),
                         ({"target": "size"}, "target must be one of class, model, lang, got 'size'"),
                         ({"test_fraction": 1.5}, "test_fraction must be between 0 and 1, got 1.5")):
        with pytest.raises(univar.UnivarError) as error:  # a SettingError: the CLI words it with the flag
            univar.ValueIdentification(**bad)
        assert str(error.value) == message and error.value.as_flag() == "--" + message.replace("_", "-")


def test_train_returns_a_loaded_model(table, tmp_path):
    trained = univar.train(table, out=tmp_path / "mine", mode="set", lam=3, epochs=1, hidden=32, batch_size=16,
                           steps_per_epoch=3, progress=False)
    assert isinstance(trained, univar.UniVaR) and trained.path == tmp_path / "mine"
    assert trained.encode(table.head(3), progress=False).shape == (3, trained.dim)
    with pytest.raises(univar.UnivarError, match="unknown training setting"):
        univar.train(table, out=tmp_path / "x", lamda=5)


def test_old_names_still_work_and_say_they_are_deprecated(table):
    from univar.model import UniVaREncoder

    model = univar.UniVaR.load("univar")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        same = UniVaREncoder(model, name="renamed")
    assert same is model and model.name == "renamed"
    assert any(issubclass(w.category, DeprecationWarning) for w in caught)
    from univar.evaluate import value_identification  # once documented in the README; ValueIdentification now

    with pytest.warns(DeprecationWarning, match="ValueIdentification"), pytest.raises(univar.UnivarError):
        value_identification(None, "minilm")  # warns, then refuses a name as ValueIdentification does
    from univar import encoders as old_home

    with pytest.warns(DeprecationWarning, match="univar.get_encoder"):
        assert old_home.get_encoder is univar.get_encoder
    result = univar.ValueIdentification(split="question", k=5).score(
        np.random.default_rng(0).normal(size=(len(table), 8)).astype(np.float32), table)
    with pytest.warns(DeprecationWarning, match="to_dict"):
        assert result.to_json() == result.to_dict()


@pytest.mark.slow
def test_readme_python_snippets_run_as_written(table, tmp_path, monkeypatch):
    """Each ```python block of the README, executed in order in one namespace.

    Two things are made small so the suite stays quick, and nothing else is changed: ``univar.read_qa``
    returns the test subset (40 ValueBench questions), and ``univar.train`` runs 1 short epoch.
    """
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Python\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) >= 2 and "univar.train(" in blocks[0]
    full_train = univar.train
    monkeypatch.setattr(univar, "read_qa", lambda source, mapping=None: table)
    monkeypatch.setattr(univar, "train", lambda data, **kw: full_train(
        data, **kw, epochs=1, steps_per_epoch=3, hidden=32, batch_size=16, progress=False))
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102 - our own README
    assert namespace["vectors"].shape == (len(table), 1792)
    assert (tmp_path / "models" / "copy" / "univar.json").is_file()
    assert isinstance(namespace["trained"], univar.UniVaR) and (tmp_path / "models" / "mine").is_dir()
    assert namespace["result"].to_dict()["split"] == "question" and len(namespace["per_llm"]) == 6


def test_the_name_univar_means_the_shipped_model_beside_a_folder_of_that_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "univar").mkdir()  # e.g. a checkout or an output folder called univar
    (tmp_path / "univar" / "notes.txt").write_text("not a model")
    assert univar.get_encoder("univar").path == univar.UniVaR.load("univar").path != tmp_path / "univar"
