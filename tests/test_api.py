"""The public Python API at the top level: read, load, encode, save, evaluate, train, get_encoder."""

from __future__ import annotations

import subprocess
import sys

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
    # [keep_base * residual, head] over the joined bases (univar.json's dim)
    assert isinstance(model, Encoder) and model.name == "univar"
    assert model.dim == model.config["dim"] == 2 * model.base.dim
    rows = table.head(6)
    from_table = model.encode(rows, progress=False)
    from_pairs = model.encode(list(zip(rows["question"], rows["answer"])), progress=False)
    from_texts = model.encode([f"Q: {q} A: {a}" for q, a in zip(rows["question"], rows["answer"])], progress=False)
    assert from_table.shape == (6, model.dim)
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


@pytest.mark.slow
def test_value_identification_object_matches_the_cli_json(table, tmp_path, capsys):
    from univar.cli import main
    from univar.qa import write_qa

    result = univar.ValueIdentification(split="question", k=10).evaluate(univar.get_encoder("minilm"), table)
    assert isinstance(result.knn, univar.KnnScores) and isinstance(result.linear, univar.ProbeScores)
    assert result.knn.k == 10 and 0 <= result.knn.acc <= 1 and 0 <= result.linear.acc_at_1 <= 1
    with pytest.raises(TypeError):  # no dict-style access kept beside the attributes
        result.knn["acc"]
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


def test_an_encoder_takes_its_device_as_a_parameter():
    """``device=`` as sentence-transformers takes it, on the encoder and the model; no process-wide device."""
    model = univar.UniVaR.load("univar", device="cpu")
    assert model.device == "cpu" and {p.device for p in model.base.parts if hasattr(p, "device")} == {"cpu"}
    minilm = univar.get_encoder("minilm", device="cpu")
    assert minilm.device == "cpu" and minilm.where() == "cpu"
    assert univar.get_encoder("minilm").device == "auto"  # another encoder is not moved by the first
    with pytest.raises(univar.UnivarError, match="device must be"):
        univar.get_encoder("minilm", device="gpu")


def test_the_name_univar_means_the_shipped_model_beside_a_folder_of_that_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "univar").mkdir()  # e.g. a checkout or an output folder called univar
    (tmp_path / "univar" / "notes.txt").write_text("not a model")
    assert univar.get_encoder("univar").path == univar.UniVaR.load("univar").path != tmp_path / "univar"
