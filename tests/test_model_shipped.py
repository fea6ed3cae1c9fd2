"""The shipped default model: present, small, loadable as ``--encoder univar``, trained without fold 0."""

from __future__ import annotations

import json

import numpy as np

from univar.model.io import weights_digest
from univar.model.univar import shipped_model_path
from univar.registry import available_encoders, get_encoder


def test_shipped_model_is_small_documented_and_never_saw_fold_0():
    path = shipped_model_path()
    assert path is not None, "the shipped model is missing; run `make model`"
    assert sorted(p.name for p in path.iterdir() if not p.name.startswith(".")) == [
        "MODEL_CARD.md", "model.safetensors", "training_questions.json", "univar.json"]
    assert sum(p.stat().st_size for p in path.iterdir()) < 10_000_000  # the head and two ridge maps, float32
    config = json.loads((path / "univar.json").read_text())
    assert config["mode"] == "set" and config["base"] == "minilm+use-multilingual"
    from univar.registry import get_encoder

    parts = [p.dim for p in get_encoder(config["base"]).parts]  # the topic map is one block per base encoder
    assert config["head"]["topic_alpha"] > 0 and config["head"]["topic_blocks"] == parts
    assert 0 in config["training"]["exclude_folds"] and config["training"]["val_fold"] != 0
    assert "mtbench" not in config["training"]["data"]  # the non-value control stays out of training
    card = (path / "MODEL_CARD.md").read_text()
    assert "fold 0" in card and "| valuebench |" in card


def test_encoder_univar_loads_with_a_weight_hash_and_differs_from_its_base(small_qa, minilm):
    enc = get_encoder("univar")
    assert enc.name == "univar" and "univar" in available_encoders()
    assert weights_digest(shipped_model_path(),
                          json.loads((shipped_model_path() / "univar.json").read_text())) in enc.id
    from univar.qa import qa_texts

    texts = qa_texts(small_qa.head(20))
    u, m = enc.encode(texts, progress=False), minilm.encode(texts, progress=False)
    config = json.loads((shipped_model_path() / "univar.json").read_text())
    w, base_dim = config["head"]["keep_base"], 384 + 512
    assert u.shape == (20, config["dim"]) == (20, 2 * base_dim)
    assert np.allclose(np.linalg.norm(u, axis=1), 1, atol=1e-5)
    m = m / np.linalg.norm(m, axis=1, keepdims=True)
    # u = [w * residual, head] / sqrt(w^2 + 1); the residual joins two unit parts, so its own norm is sqrt(2)
    residual = u[:, :base_dim] * np.sqrt(w**2 + 1) / w * np.sqrt(2)
    # each part's residual is a unit vector
    assert np.allclose(np.linalg.norm(residual[:, :384], axis=1), 1, atol=1e-4)
    assert np.abs(residual[:, :384] - m).max() > 0.05  # the topic was taken out of minilm's vector
    head = u[:, base_dim:] / np.linalg.norm(u[:, base_dim:], axis=1, keepdims=True)
    assert np.abs(head - residual / np.sqrt(2)).max() > 0.05  # the head trained away from the identity it started as
