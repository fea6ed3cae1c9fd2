"""The shipped default model: present, small, loadable as ``--encoder univar``, trained without fold 0."""

from __future__ import annotations

import json

import numpy as np

from univar.encoders import available_encoders, get_encoder
from univar.model import shipped_model_path
from univar.model.io import weights_digest


def test_shipped_model_is_small_documented_and_never_saw_fold_0():
    path = shipped_model_path()
    assert path is not None, "the shipped model is missing; run `make model`"
    assert sorted(p.name for p in path.iterdir() if not p.name.startswith(".")) == [
        "MODEL_CARD.md", "model.safetensors", "univar.json"]
    assert sum(p.stat().st_size for p in path.iterdir()) < 5_000_000
    config = json.loads((path / "univar.json").read_text())
    assert config["mode"] == "set" and config["base"] == "minilm"
    assert 0 in config["training"]["exclude_folds"] and config["training"]["val_fold"] != 0
    assert "mtbench" not in config["training"]["data"]  # the non-value control stays out of training
    card = (path / "MODEL_CARD.md").read_text()
    assert "fold 0" in card and "| valuebench |" in card


def test_encoder_univar_loads_with_a_weight_hash_and_differs_from_its_base(small_qa, minilm):
    enc = get_encoder("univar")
    assert enc.name == "univar" and "univar" in available_encoders()
    assert weights_digest(shipped_model_path(), json.loads((shipped_model_path() / "univar.json").read_text())) in enc.id
    from univar.qa import qa_texts

    texts = qa_texts(small_qa.head(20))
    u, m = enc.encode(texts, progress=False), minilm.encode(texts, progress=False)
    config = json.loads((shipped_model_path() / "univar.json").read_text())
    w = config["head"].get("keep_base", 0.0)
    assert u.shape == (20, config["dim"]) == (20, 768 if w else 384) and m.shape == (20, 384)
    assert np.allclose(np.linalg.norm(u, axis=1), 1, atol=1e-5)
    m = m / np.linalg.norm(m, axis=1, keepdims=True)
    head = u[:, -384:] / np.linalg.norm(u[:, -384:], axis=1, keepdims=True)
    if w:  # the base half is minilm's vector itself
        assert np.allclose(u[:, :384], m * w / np.sqrt(w**2 + 1), atol=1e-4)
    assert np.abs(head - m).max() > 0.05  # the head trained away from the identity it started as
