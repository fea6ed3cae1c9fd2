"""Distances, bootstrap, Mantel test and per-value explanation on constructed cases with known answers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm, pearsonr

from univar.analysis import (
    class_distances,
    class_means,
    cosine_distances,
    energy_distance,
    explain_pair,
    keyed_ratings,
    mantel,
    nearest_classes,
    nearest_neighbours,
    profile_distances,
    questionnaire_validity,
    rating_profiles,
    resolve_class,
)
from univar.errors import UnivarError


def _points(n: int, dim: int = 5, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, dim))


def _dist(points: np.ndarray) -> np.ndarray:
    return np.linalg.norm(points[:, None] - points[None], axis=-1)


# --- Mantel -------------------------------------------------------------------------------------------

def test_mantel_identical_matrices_is_exact_minimum_p():
    d = _dist(_points(6))
    result = mantel(d, 3 * d + 2)  # a linear transform keeps Pearson r at 1
    assert result.exact and result.permutations == math.factorial(6)
    assert result.r == pytest.approx(1.0)
    # only the identity order reaches r = 1 for distinct random distances
    assert result.p == pytest.approx(1 / 720)


def test_mantel_reversed_matrix_has_p_one():
    d = _dist(_points(5))
    result = mantel(d, 10 - d)
    assert result.r == pytest.approx(-1.0)
    assert result.p == pytest.approx(1.0)  # every order correlates at least as well as the worst


def test_mantel_r_is_pearson_of_upper_triangles_and_p_matches_brute_force():
    rng = np.random.default_rng(3)
    x = _dist(_points(6, seed=1))
    y = x + rng.normal(scale=0.6, size=x.shape)
    y = (y + y.T) / 2
    np.fill_diagonal(y, 0)
    iu = np.triu_indices(6, 1)
    result = mantel(x, y)
    assert result.r == pytest.approx(pearsonr(x[iu], y[iu])[0], abs=1e-12)
    # brute force over all 720 orders, one at a time
    import itertools

    hits = sum(pearsonr(x[iu], y[np.ix_(p, p)][iu])[0] >= result.r - 1e-12
               for p in map(list, itertools.permutations(range(6))))
    assert result.p == pytest.approx(hits / 720)


def test_mantel_random_permutations_above_eight_classes():
    d = _dist(_points(12, seed=2))
    result = mantel(d, d, permutations=999, seed=0)
    assert not result.exact and result.permutations == 999
    assert result.p == pytest.approx(1 / 1000)  # nothing but the identity reaches r = 1
    unrelated = _dist(_points(12, seed=9))
    p = mantel(d, unrelated, permutations=999, seed=0).p
    assert 0.01 < p <= 1.0


def test_mantel_rejects_bad_input():
    with pytest.raises(UnivarError):
        mantel(np.zeros((2, 2)), np.zeros((2, 2)))
    with pytest.raises(UnivarError):
        mantel(np.zeros((4, 4)), np.zeros((5, 5)))
    with pytest.raises(UnivarError, match="constant"):
        mantel(np.ones((4, 4)), _dist(_points(4)))


# --- distances -------------------------------------------------------------------------------------------

def test_energy_distance_matches_closed_form_for_shifted_normals():
    """N(0,1) vs N(mu,1): 2 E|X-Y| - E|X-X'| - E|Y-Y'| with E|N(m, s^2)| the folded-normal mean."""
    rng = np.random.default_rng(0)
    mu = 1.5
    # normal quantiles instead of random draws: the estimate converges fast enough for a 1% tolerance
    x = norm.ppf((np.arange(2000) + 0.5) / 2000)[:, None]
    y = x + mu
    s = math.sqrt(2)
    folded = s * math.sqrt(2 / math.pi) * math.exp(-mu ** 2 / (2 * s * s)) + mu * (1 - 2 * norm.cdf(-mu / s))
    expected = 2 * folded - 2 * (2 / math.sqrt(math.pi))
    assert energy_distance(x, y) == pytest.approx(expected, rel=0.01)
    # two samples of one distribution: near zero (U-statistic, unbiased)
    assert abs(energy_distance(x, rng.normal(size=(3000, 1)))) < 0.02


def test_class_distances_agree_with_direct_computation_and_cis_contain_estimates():
    rng = np.random.default_rng(1)
    a, b, c = rng.normal(size=(60, 8)), rng.normal(size=(50, 8)), rng.normal(size=(70, 8))
    b[:, 0] += 2.0  # b is far from a and c; a and c share a distribution
    a[:, 1] += 1.0
    c[:, 1] += 1.0
    vectors = np.vstack([a, b, c])
    labels = ["a$en"] * 60 + ["b$en"] * 50 + ["c$en"] * 70
    dist = class_distances(vectors, labels, n_boot=300, seed=0)
    assert dist.classes == ["a$en", "b$en", "c$en"]
    assert dist.sizes == [60, 50, 70]
    # debiased cosine: the squared length of a mean from pairs of distinct QAs only
    def norm2(x):
        s = x.sum(0)
        return (s @ s - (x * x).sum()) / (len(x) * (len(x) - 1))
    expected = 1 - a.mean(0) @ b.mean(0) / np.sqrt(norm2(a) * norm2(b))
    assert dist.cosine[0, 1] == pytest.approx(expected)
    naive = cosine_distances(np.stack([a.mean(0), b.mean(0), c.mean(0)]))
    assert dist.cosine[0, 2] < naive[0, 2]  # the naive distance of two alike classes is inflated by noise
    assert dist.energy[0, 1] == pytest.approx(energy_distance(a, b))
    assert dist.energy[1, 2] == pytest.approx(energy_distance(b, c))
    for metric in ("cosine", "energy"):
        est, lo, hi = (getattr(dist, metric), getattr(dist, f"{metric}_lo"), getattr(dist, f"{metric}_hi"))
        off = ~np.eye(3, dtype=bool)
        assert np.all(lo[off] <= est[off]) and np.all(est[off] <= hi[off])
        assert np.allclose(est, est.T)
    # a and c are alike: the energy CI covers 0; b is far from both: its CIs exclude 0
    assert dist.energy_lo[0, 2] <= 0 <= dist.energy_hi[0, 2]
    assert dist.energy_lo[0, 1] > 0.5 and dist.energy_lo[1, 2] > 0.5
    long = dist.long()
    assert len(long) == 3 and set(long.columns) >= {"class_a", "class_b", "cosine", "cosine_lo", "energy_hi"}


def test_debiased_cosine_is_near_zero_for_one_distribution_whatever_the_sizes():
    """Like sentence embeddings: a mean of length ~1 against a per-QA spread of 0.3 in each of 32 directions."""
    centre = np.zeros(32)
    centre[0] = 1.0
    gaps, naives = [], []
    for seed in range(5):
        rng = np.random.default_rng(seed)
        big, small = rng.normal(scale=0.3, size=(400, 32)) + centre, rng.normal(scale=0.3, size=(20, 32)) + centre
        far = rng.normal(scale=0.3, size=(20, 32)) + np.roll(centre, 1)
        vectors = np.vstack([big, small, far])
        labels = ["big$en"] * 400 + ["small$en"] * 20 + ["far$en"] * 20
        dist = class_distances(vectors, labels, n_boot=20, seed=0).matrix("cosine")
        gaps.append(dist.loc["big$en", "small$en"])
        naives.append(cosine_distances(np.stack([big.mean(0), small.mean(0)]))[0, 1])
        assert dist.loc["big$en", "far$en"] == pytest.approx(1.0, abs=0.25)  # orthogonal centres (noise ~0.07)
    # 20 noisy QAs: the naive distance mistakes noise for a difference (~0.06); the debiased one does not
    assert np.mean(naives) > 0.04
    assert abs(np.mean(gaps)) < 0.01 and max(abs(g) for g in gaps) < 0.03


def test_paired_design_leaves_out_same_question_pairs():
    """Three LLMs answer the same 60 questions; an answer is question topic + LLM offset + noise.

    The true class means are centre + offset (topics average out), so the true cosine distance is known.
    Ignoring that answers to one question are alike because of the question, the naive distances are off;
    with the questions given they match the truth, and the question bootstrap covers it.
    """
    rng = np.random.default_rng(2)
    dim, n_q = 24, 60
    centre = np.zeros(dim)
    centre[0] = 1.0
    offsets = {"a": np.zeros(dim), "b": np.zeros(dim), "c": np.zeros(dim)}
    offsets["c"][1] = 0.6
    topics = rng.normal(scale=0.5, size=(n_q, dim))
    rows, labels, questions = [], [], []
    for name, off in offsets.items():
        for q in range(n_q):
            rows.append(centre + off + topics[q] + rng.normal(scale=0.15, size=dim))
            labels.append(f"{name}$en")
            questions.append(f"question {q}")
    vectors = np.array(rows)
    truth = cosine_distances(np.stack([centre + offsets[n] for n in "abc"]))
    dist = class_distances(vectors, labels, groups=questions, n_boot=300, seed=0)
    assert dist.paired
    assert dist.cosine[0, 1] == pytest.approx(truth[0, 1], abs=0.01)  # a and b: same values, distance ~0
    assert dist.cosine[0, 2] == pytest.approx(truth[0, 2], abs=0.04)  # c leans away: ~0.14
    assert dist.cosine_lo[0, 2] <= truth[0, 2] <= dist.cosine_hi[0, 2]
    assert dist.cosine_lo[0, 2] > dist.cosine_hi[0, 1]  # c is clearly farther than b
    off = ~np.eye(3, dtype=bool)
    for metric in ("cosine", "energy"):
        est, lo, hi = (getattr(dist, metric), getattr(dist, f"{metric}_lo"), getattr(dist, f"{metric}_hi"))
        assert np.all(lo[off] <= est[off] + 1e-12) and np.all(est[off] <= hi[off] + 1e-12)
    assert dist.energy_lo[0, 1] <= 0.01 and dist.energy_lo[0, 2] > 0.05


def test_class_distances_subsample_for_energy_and_need_two_classes():
    vectors = _points(400, seed=4)
    labels = ["x$en"] * 200 + ["y$en"] * 200
    dist = class_distances(vectors, labels, n_boot=10, max_points=100)
    assert dist.energy_points == 50
    with pytest.raises(UnivarError, match="at least 2 classes"):
        class_distances(vectors, ["x$en"] * 400, n_boot=0)
    with pytest.raises(UnivarError, match="single QA"):
        class_distances(vectors[:3], ["x$en", "x$en", "y$en"], n_boot=0)


def test_nearest_neighbours_orders_by_distance():
    frame = pd.DataFrame([[0, 3, 1], [3, 0, 2], [1, 2, 0]], index=list("abc"), columns=list("abc"), dtype=float)
    near = nearest_neighbours(frame, k=2)
    assert near[near["class"] == "a"]["neighbour"].tolist() == ["c", "b"]
    assert near[near["class"] == "b"]["neighbour"].tolist() == ["c", "a"]
    assert near["distance"].tolist()[:2] == [1.0, 3.0]


def test_nearest_classes_finds_the_source_of_new_points():
    rng = np.random.default_rng(5)
    centres = rng.normal(scale=3, size=(4, 6))
    vectors = np.vstack([rng.normal(size=(80, 6)) + c for c in centres])
    labels = np.repeat([f"m{i}$en" for i in range(4)], 80)
    new = rng.normal(size=(30, 6)) + centres[2]
    near = nearest_classes(new, vectors, labels, k=3)
    assert near["class"].iloc[0] == "m2$en"
    assert near["cosine"].is_monotonic_increasing and len(near) == 3
    assert near["energy"].iloc[0] < near["energy"].iloc[1]


# --- questionnaire ratings -------------------------------------------------------------------------

def _rated_table() -> pd.DataFrame:
    """Four LLMs x two values x three items; m0/m1 rate alike, m2/m3 rate alike."""
    rows = []
    base = {"m0": (9, 2), "m1": (8, 3), "m2": (2, 9), "m3": (3, 8)}
    for model, (v1, v2) in base.items():
        for item in range(3):
            rows.append({"model": model, "lang": "en", "value": "Order", "agreement": 1, "rating": v1,
                         "question": f"order {item}", "answer": "a"})
            # a reverse-keyed item: agreeing with "I dislike rules" means a low Order score
            rows.append({"model": model, "lang": "en", "value": "Order", "agreement": -1, "rating": 10 - v1,
                         "question": f"dislike {item}", "answer": "a"})
            rows.append({"model": model, "lang": "en", "value": "Openness", "agreement": 1, "rating": v2,
                         "question": f"open {item}", "answer": "a"})
    return pd.DataFrame(rows)


def test_keyed_ratings_flip_reverse_items_and_profiles_average_them():
    table = _rated_table()
    keyed = keyed_ratings(table)
    reverse = table["agreement"] == -1
    assert keyed[reverse].tolist() == (10 - table.loc[reverse, "rating"]).tolist()
    assert keyed[~reverse].tolist() == table.loc[~reverse, "rating"].tolist()
    labels = table["model"] + "$" + table["lang"]
    profiles = rating_profiles(table, labels)
    assert profiles.loc["m0$en", "Order"] == pytest.approx(9)  # 9 and flipped (10 - 1) = 9
    assert profiles.loc["m2$en", "Openness"] == pytest.approx(9)
    d = profile_distances(profiles)
    assert d.loc["m0$en", "m1$en"] == pytest.approx(1.0)
    assert d.loc["m0$en", "m2$en"] == pytest.approx(7.0)


def test_questionnaire_validity_agrees_when_embedding_distances_follow_ratings():
    table = _rated_table()
    labels = (table["model"] + "$" + table["lang"]).to_numpy()
    classes = ["m0$en", "m1$en", "m2$en", "m3$en"]
    prof = profile_distances(rating_profiles(table, labels))
    agreeing = pd.DataFrame(prof.to_numpy() ** 2, index=classes, columns=classes)  # monotone, not linear
    v = questionnaire_validity(table, labels, agreeing)
    assert v.result.r > 0.9 and v.n_values == 2 and v.result.exact
    assert v.result.permutations == 24 and v.result.p <= 2 / 24  # identity and at most one symmetric order
    flipped = prof.to_numpy().max() - prof.to_numpy()
    np.fill_diagonal(flipped, 0)
    disagreeing = pd.DataFrame(flipped, index=classes, columns=classes)
    assert questionnaire_validity(table, labels, disagreeing).result.r < 0


# --- explanation -------------------------------------------------------------------------------------

def test_explain_pair_ranks_the_value_that_differs_first():
    rng = np.random.default_rng(7)
    rows, vecs = [], []
    shift = np.zeros(16)
    shift[3] = 4.0
    for value in ("Care", "Fairness", "Loyalty"):
        for q in range(6):
            topic = rng.normal(size=16)
            for model in ("a", "b"):
                v = topic + rng.normal(scale=0.3, size=16)
                if value == "Fairness" and model == "b":
                    v = v + shift
                rows.append({"model": model, "lang": "en", "value": value, "question": f"{value} q{q}",
                             "answer": f"{model} answers {value} {q}", "rating": 5})
                vecs.append(v)
    table, vectors = pd.DataFrame(rows), np.array(vecs)
    labels = (table["model"] + "$" + table["lang"]).to_numpy()
    ex = explain_pair(table, vectors, labels, "a", "b$en", top=2)
    assert (ex.class_a, ex.class_b, ex.grouping) == ("a$en", "b$en", "value")
    assert ex.values["value"].iloc[0] == "Fairness"
    assert ex.values["separation"].iloc[0] > 5 * abs(ex.values["separation"].iloc[1])
    first = ex.examples[0]
    assert first["paired"] and first["question_a"] == first["question_b"]
    assert first["answer_a"].startswith("a answers Fairness") and first["answer_b"].startswith("b answers Fairness")
    # without a value column, questions are grouped into topics instead
    ex2 = explain_pair(table.drop(columns=["value"]), vectors, labels, "a$en", "b$en")
    assert ex2.grouping == "topic" and ex2.values["topic"].iloc[0].startswith("topic")


def test_explain_ranks_by_the_score_it_shows_and_shows_its_standard_error():
    rng = np.random.default_rng(3)
    rows, vecs = [], []
    for v, value in enumerate(("Care", "Fairness", "Loyalty", "Purity")):
        shift = np.zeros(16)
        shift[v] = 0.6 * (v + 1)  # four values, four sizes of difference, questions differ in number
        for q in range(4 + 3 * v):
            topic = rng.normal(size=16)
            for model in ("a", "b"):
                rows.append({"model": model, "lang": "en", "value": value, "question": f"{value} q{q}",
                             "answer": f"{model} {value} {q}"})
                vecs.append(topic + rng.normal(scale=0.4, size=16) + (shift if model == "b" else 0))
    table, vectors = pd.DataFrame(rows), np.array(vecs)
    labels = (table["model"] + "$" + table["lang"]).to_numpy()
    ex = explain_pair(table, vectors, labels, "a", "b", top=4, min_qas=3)
    shown = ex.table()
    assert list(shown.columns[:4]) == ["value", "score", "separation", "SE"]
    assert shown["score"].is_monotonic_decreasing
    assert np.allclose(shown["score"], shown["separation"] - shown["SE"])
    assert (shown["SE"] > 0).all()
    assert [e["value"] for e in ex.examples] == list(shown["value"])
    assert all("has no ratings" in e["lean"] for e in ex.examples)  # a lean sentence even without ratings


def test_explain_example_is_a_difference_in_stance_with_both_ratings():
    """Of the questions on a value, the example is the one where the two LLMs' ratings differ most in the
    direction they lean, not the one whose wording differs most."""
    rng = np.random.default_rng(5)
    rows, vecs = [], []
    gaps = [0, 1, 6, 2, 0, 3]  # b rates lower than a by this much on question q
    for q, gap in enumerate(gaps):
        topic = rng.normal(size=16)
        for model in ("a", "b"):
            wording = 3.0 if q == 0 and model == "b" else 0.0  # question 0: very different words, same stance
            rows.append({"model": model, "lang": "en", "value": "Care", "question": f"care q{q}",
                         "answer": f"{model} {q}", "rating": 8 - (gap if model == "b" else 0), "agreement": 1})
            vecs.append(topic + rng.normal(scale=0.2, size=16) + wording * rng.normal(size=16))
    table, vectors = pd.DataFrame(rows), np.array(vecs)
    labels = (table["model"] + "$" + table["lang"]).to_numpy()
    ex = explain_pair(table, vectors, labels, "a", "b", top=1)
    e = ex.examples[0]
    assert e["question_a"] == "care q2" and (e["rating_a"], e["rating_b"]) == (8.0, 2.0)
    assert e["rating_difference"] == 6.0 and e["reverse_keyed"] is False
    row = ex.values.iloc[0]
    assert row["rating_a"] > row["rating_b"]
    assert e["lean"].startswith("a$en leans towards Care") and "b$en away from it" in e["lean"]


def test_resolve_class_accepts_model_names():
    classes = ["gpt$en", "llama$en", "llama$de"]
    assert resolve_class("gpt", classes) == "gpt$en"
    assert resolve_class("llama$de", classes) == "llama$de"
    with pytest.raises(UnivarError, match="several languages"):
        resolve_class("llama", classes)
    with pytest.raises(UnivarError, match="unknown class"):
        resolve_class("mistral", classes)


def test_class_means_are_per_class_averages():
    vectors = np.array([[1.0, 0], [3, 0], [0, 2]])
    classes, means = class_means(vectors, ["b", "b", "a"])
    assert classes == ["a", "b"]
    assert np.allclose(means, [[0, 2], [2, 0]])


def test_explain_ranks_the_questions_two_llms_take_different_positions_on_first():
    from univar.analysis.explain import stance_questions

    table = pd.DataFrame({"question": ["q1", "q1", "q2", "q2", "q3", "q3", "q4"],
                          "answer": list("abcdefg"), "model": list("ababab") + ["a"], "lang": "en",
                          "stance": ["yes", "no", "yes", "yes", "no", "yes", "no"]})
    vectors = np.array([[1, 0], [0.9, 0.1], [1, 0], [0, 1], [1, 0], [1, 0.05], [1, 1]], dtype=float)
    labels = (table["model"] + "$en").to_numpy()
    q = stance_questions(table, vectors, labels == "a$en", labels == "b$en")
    # differing labels first (q1, q3: the farther pair first), then q2, whose pair is the farthest of all but
    # takes one position; q4 was answered by one side only
    assert q["question"].tolist() == ["q1", "q3", "q2"]
    assert q["differ"].tolist() == [True, True, False]
    assert q["distance"].iloc[2] > q["distance"].iloc[0] > q["distance"].iloc[1]
    assert stance_questions(table.drop(columns="stance"), vectors, labels == "a$en", labels == "b$en") is None
    ex = explain_pair(table.assign(value="v"), vectors, labels, "a", "b", min_qas=2)
    assert ex.to_dict()["questions"][0]["question"] == "q1"
