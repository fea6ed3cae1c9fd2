"""The stance part of a univar model: a transformer fine-tuned with a within-question stance contrast, stored as
its tuned layers beside the head, loaded over its base, reused by a resumed run; and the loss it minimises."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from univar.errors import UnivarError
from univar.model.config import TrainConfig
from univar.model.loss import StanceContrastLoss
from univar.model.train import train_table
from univar.model.univar import UniVaR

FAST = dict(epochs=1, batch_size=32, steps_per_epoch=4, hidden=32, lam=2, patience=50, threads=2)


def test_the_stance_contrast_sees_only_positions_within_a_question():
    loss = StanceContrastLoss(temperature=0.1)
    question = torch.tensor([0, 0, 0, 0, 1, 1])
    label = torch.tensor([0, 0, 1, 1, 0, 1])
    model = torch.tensor([0, 1, 0, 1, 0, 1])
    side = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    by_position = loss(F.normalize(side + 0.01, dim=-1), question, label, model)
    by_writer = loss(F.normalize(torch.tensor([[1.0, 0], [0, 1.0], [1.0, 0], [0, 1.0], [1, 0], [0, 1]]), dim=-1),
                     question, label, model)
    assert by_position < 0.01 < 1.0 < by_writer  # a space that groups by LLM is what the loss punishes
    # question 1's answers take part only as anchors of their own question: moving them alone changes nothing
    # of question 0's terms, and a batch with no positive by another LLM gives 0
    assert loss(side, question, label, torch.zeros(6, dtype=torch.long)) == 0


@pytest.fixture(scope="module")
def stance_model(small_qa, tiny_base, tmp_path_factory, session_cache):
    out = tmp_path_factory.mktemp("stance") / "m"
    cfg = TrainConfig(**FAST, stance_weight=1.0, stance_base=str(tiny_base), stance_layers=1, stance_epochs=1,
                      stance_questions=4)
    return train_table(small_qa, cfg, out, progress=False), out


def test_a_stance_model_stores_its_tuned_layers_and_loads_over_its_base(stance_model, small_qa, tiny_base):
    from sentence_transformers import SentenceTransformer

    _, out = stance_model
    model = UniVaR.load(out)
    assert model.config["stance"]["weight"] == 1.0 and model.dim == model.head.dim + model.stance.dim
    tensors = load_file(str(out / "model.safetensors"))
    part = {k[len("stance."):]: v for k, v in tensors.items() if k.startswith("stance.")}
    assert part and all(".layer.0." in k for k in part)  # the top (only) layer, nothing else
    base = SentenceTransformer(str(tiny_base), device="cpu").state_dict()
    assert any(not torch.equal(v.float(), base[k].to(torch.float16).float()) for k, v in part.items())  # tuned
    vectors = model.encode_qas(small_qa.head(6))
    assert vectors.shape == (6, model.dim)
    assert torch.allclose(torch.from_numpy(vectors).norm(dim=1), torch.ones(6), atol=1e-5)
    # the stance part is the first block, weighted as univar.json says; the identity part follows unchanged
    identity = model.head.encode_items(model._base_vectors(list(small_qa.head(6).pipe(_texts)), False))
    combined = torch.from_numpy(vectors)
    scale = combined[:, model.stance.dim:].norm(dim=1, keepdim=True)
    assert torch.allclose(combined[:, model.stance.dim:] / scale, identity, atol=1e-5)
    assert np.allclose(model.encode(small_qa.head(6), progress=False), vectors, atol=1e-5)  # through the cache


def _texts(table):
    from univar.qa import qa_texts

    return qa_texts(table)


@pytest.mark.slow
def test_a_resumed_run_reuses_the_tuned_part_and_other_data_retunes_it(stance_model, small_qa, tiny_base,
                                                                      monkeypatch, tmp_path):
    import univar.model.stance as stance

    _, out = stance_model
    assert (out / "checkpoint" / stance.CHECKPOINT_FILE).is_file()
    calls = []
    real = stance.tune
    monkeypatch.setattr(stance, "tune", lambda *a, **k: calls.append(1) or real(*a, **k))
    cfg = TrainConfig(**dict(FAST, epochs=2), stance_weight=1.0, stance_base=str(tiny_base), stance_layers=1,
                      stance_epochs=1, stance_questions=4)
    train_table(small_qa, cfg, out, resume=True, progress=False)
    assert calls == []  # read back from the checkpoint
    assert stance.cached_file("x").parent.is_dir() and any(stance.cached_file("x").parent.iterdir())  # and cached
    relabelled = small_qa.assign(stance=small_qa["stance"].map({"agree": "disagree", "disagree": "agree"}))
    relabelled.loc[relabelled.index[::3], "stance"] = "agree"
    train_table(relabelled, cfg, tmp_path / "other", progress=False)
    assert calls == [1]
    # QAs without a label take no part in tuning: more of them reuse the tuned part
    more = small_qa.assign(stance=None).assign(question=small_qa["question"] + " (again)")
    import pandas as pd

    train_table(pd.concat([small_qa, more], ignore_index=True), cfg, tmp_path / "more", progress=False)
    assert calls == [1]


def test_a_stance_weight_needs_stance_labels(small_qa, tmp_path):
    with pytest.raises(UnivarError, match="stance"):
        train_table(small_qa.drop(columns="stance"), TrainConfig(**FAST, stance_weight=1.0), tmp_path / "m",
              progress=False)
    with pytest.raises(UnivarError, match="^stance_weight must be"):
        TrainConfig(mode="concat", stance_weight=1.0).check()
