"""UniVaR building blocks that need no encoder: the InfoNCE loss, the view sampler, the identity head."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from univar.model.heads import SetViewEncoder
from univar.model.loss import InfoNCELoss
from univar.model.views import ViewSampler


def _manual_infonce(a, b, scale, drop=None):
    logits = scale * F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).T
    total = 0.0
    for i in range(len(a)):
        keep = [j for j in range(len(b)) if drop is None or j == i or not drop[i][j]]
        total += -(logits[i, i] - torch.logsumexp(logits[i, keep], 0))
    return total / len(a)


def test_infonce_matches_the_formula_with_paper_scale():
    torch.manual_seed(0)
    a, b = torch.randn(6, 8), torch.randn(6, 8)
    loss = InfoNCELoss(mask_same_class=False)(a, b)
    assert loss.item() == pytest.approx(_manual_infonce(a, b, 50.0).item(), rel=1e-5)


def test_same_class_pairs_are_never_negatives_when_masked():
    torch.manual_seed(1)
    a, b = torch.randn(6, 8), torch.randn(6, 8)
    classes = torch.tensor([0, 0, 1, 1, 2, 3])
    same = (classes[:, None] == classes[None, :]).tolist()
    masked = InfoNCELoss(mask_same_class=True)(a, b, classes)
    assert masked.item() == pytest.approx(_manual_infonce(a, b, 50.0, drop=same).item(), rel=1e-5)
    unmasked = InfoNCELoss(mask_same_class=False)(a, b, classes)
    assert masked.item() < unmasked.item()  # removing negatives can only lower the loss
    # with one pair per class, masking changes nothing
    distinct = torch.arange(6)
    assert InfoNCELoss()(a, b, distinct).item() == pytest.approx(unmasked.item(), rel=1e-6)


def test_symmetric_and_learnable_scale():
    torch.manual_seed(2)
    a, b = torch.randn(5, 4), torch.randn(5, 4)
    sym = InfoNCELoss(symmetric=True, mask_same_class=False)(a, b)
    one_way = (InfoNCELoss(mask_same_class=False)(a, b) + InfoNCELoss(mask_same_class=False)(b, a)) / 2
    assert sym.item() == pytest.approx(one_way.item(), rel=1e-5)
    learn = InfoNCELoss(learnable_scale=True)
    assert learn.scale.item() == pytest.approx(50.0, rel=1e-5)
    learn(a, b).backward()
    assert learn.log_scale.grad is not None and learn.log_scale.grad.abs().item() > 0
    assert list(InfoNCELoss().parameters()) == []  # the paper's scale is fixed


def test_aligned_views_give_low_loss():
    x = torch.eye(8)
    assert InfoNCELoss()(x, x).item() < 1e-6
    assert InfoNCELoss()(x, x.roll(1, 0)).item() > 40  # every positive is orthogonal, a negative is exact


def test_view_sampler_draws_views_of_one_class_with_sizes_in_range():
    labels = np.array(["a"] * 30 + ["b"] * 30 + ["c"] * 4)
    sampler = ViewSampler(labels, lam=5, batch_size=64, batching="mask", seed=3)
    sizes = set()
    for _ in range(20):
        batch = sampler.sample()
        for row_a, row_b, cls in zip(batch.a, batch.b, batch.classes):
            va, vb = row_a[row_a >= 0], row_b[row_b >= 0]
            sizes.update([len(va), len(vb)])
            assert {labels[i] for i in np.concatenate([va, vb])} == {sampler.class_names[cls]}
            if sampler.class_names[cls] != "c":  # large classes give disjoint views
                assert not set(va) & set(vb)
    assert sizes == {1, 2, 3, 4, 5}


def test_class_aware_batches_hold_distinct_classes():
    labels = np.repeat([f"m{i}$en" for i in range(10)], 20)
    sampler = ViewSampler(labels, lam=1, batch_size=64, batching="class", seed=0)
    assert sampler.batch_size == 10
    for _ in range(5):
        classes = sampler.sample().classes
        assert len(set(classes.tolist())) == len(classes) == 10


def test_sampler_is_reproducible_and_restorable():
    labels = np.repeat(["x", "y", "z"], 50)
    one, two = ViewSampler(labels, 5, 16, seed=9), ViewSampler(labels, 5, 16, seed=9)
    assert np.array_equal(one.sample().a, two.sample().a)
    saved = one.state()
    first = one.sample()
    one.restore(saved)
    assert np.array_equal(one.sample().b, first.b)
    assert not np.array_equal(ViewSampler(labels, 5, 16, seed=10).sample().a,
                              ViewSampler(labels, 5, 16, seed=9).sample().a)


@pytest.mark.parametrize("pooling", ["mean", "attention"])
def test_head_starts_as_the_identity(pooling):
    torch.manual_seed(0)
    enc = SetViewEncoder(16, hidden=32, pooling=pooling).eval()
    x = torch.randn(4, 3, 16)
    mask = torch.tensor([[1, 0, 0], [1, 1, 0], [1, 1, 1], [1, 1, 1]], dtype=torch.bool)
    assert torch.allclose(enc.encode_items(x), F.normalize(x, dim=-1), atol=1e-6)
    expected = F.normalize((F.normalize(x, dim=-1) * mask[..., None]).sum(1) / mask.sum(1, keepdim=True), dim=-1)
    assert torch.allclose(enc(x, mask), expected, atol=1e-6)
    assert torch.allclose(enc(x[:1, :1], mask[:1, :1]), enc.encode_items(x[0, :1]), atol=1e-6)
    assert math.isclose(enc(x, mask).norm(dim=-1).mean().item(), 1.0, rel_tol=1e-5)


@pytest.mark.parametrize("pooling", ["mean", "attention"])
def test_keep_base_puts_the_base_beside_the_head(pooling):
    torch.manual_seed(0)
    enc = SetViewEncoder(16, hidden=32, pooling=pooling, keep_base=1.5).eval()
    with torch.no_grad():
        enc.head.down.weight.normal_()  # a head that has learned something, so the two halves differ
        if pooling == "attention":
            enc.query.normal_()
    x = torch.randn(5, 16)
    items = enc.encode_items(x)
    assert items.shape == (5, 32) and enc.dim == 32
    assert torch.allclose(items.norm(dim=-1), torch.ones(5), atol=1e-6)
    base, head = F.normalize(x, dim=-1), enc.head_items(x)
    # cosine of two QAs = (w^2 cos_base + cos_head) / (w^2 + 1)
    expected = (1.5**2 * base @ base.T + head @ head.T) / (1.5**2 + 1)
    assert torch.allclose(items @ items.T, expected, atol=1e-5)
    mask = torch.ones(1, 5, dtype=torch.bool)
    view = enc(x[None], mask)[0]
    weights = torch.softmax(enc.attention_scores(items), 0) if pooling == "attention" else torch.full((5,), 0.2)
    assert torch.allclose(view, F.normalize((weights[:, None] * items).sum(0), dim=0), atol=1e-5)


def test_topic_removal_takes_out_what_the_question_predicts_per_block():
    from univar.model.heads import TopicRemoval

    g = torch.Generator().manual_seed(0)
    q = torch.randn(500, 6, generator=g)
    style = torch.randn(500, 6, generator=g) * 0.1  # what the question does not predict
    mix = torch.randn(6, 6, generator=g)
    x = q @ mix + style
    topic = TopicRemoval(6, alpha=1e-3, blocks=[2, 4]).fit(x, q)
    assert torch.count_nonzero(topic.weight[:2, 2:]) == 0 and torch.count_nonzero(topic.weight[2:, :2]) == 0
    residual = topic(x, q)
    assert torch.allclose(residual[:, :2].norm(dim=1), torch.ones(500), atol=1e-5)
    assert torch.allclose(residual[:, 2:].norm(dim=1), torch.ones(500), atol=1e-5)
    # within a block, the residual is the unpredictable part: it follows `style`, not the question
    whole = TopicRemoval(6, alpha=1e-3).fit(x, q)
    raw = x - ((q - whole.q_mean) @ whole.weight + whole.x_mean)
    assert torch.allclose(raw, style - style.mean(0), atol=0.05)
    enc = SetViewEncoder(6, hidden=8, topic_alpha=1.0)
    with pytest.raises(ValueError, match="question vectors"):
        enc.inputs(x)
