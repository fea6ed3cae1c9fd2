"""The value map and the comparison figures on real minilm embeddings of bundled ValueBench answers."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from univar.commands.compare import write_compare_files
from univar.commands.maps import write_map_files
from univar.encoders import embed
from univar.qa import class_names, qa_texts
from univar.viz import fit_map, spread_labels

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def embedded(small_qa, minilm):
    return small_qa, embed(qa_texts(small_qa), minilm, progress=False)


@pytest.fixture(scope="module")
def newcomer(valuebench, small_qa, minilm):
    """30 answers of llama-7b-chat to questions outside the map, relabelled as an unknown LLM."""
    held = valuebench[~valuebench["question"].isin(set(small_qa["question"])) &
                      (valuebench["model"] == "llama-7b-chat")].sample(30, random_state=0).copy()
    held["model"] = "newcomer"
    return held.reset_index(drop=True), embed(qa_texts(held), minilm, progress=False)


@pytest.fixture(scope="module")
def map_dir(tmp_path_factory, embedded, newcomer):
    table, vectors = embedded
    out = tmp_path_factory.mktemp("map")
    vmap, fig, nearest = write_map_files(table, vectors, out, "minilm", "test", seed=0,
                                         new_table=newcomer[0], new_vectors=newcomer[1])
    return out, vmap, fig, nearest


@pytest.mark.slow
def test_map_is_seeded_and_one_point_per_qa(embedded):
    table, vectors = embedded
    labels = class_names(table)
    a = fit_map(vectors, labels, seed=0)
    b = fit_map(vectors, labels, seed=0)
    assert a.coords.shape == (len(table), 2)
    assert np.allclose(a.coords, b.coords)
    cents = a.centroids()
    assert list(cents.index) == sorted(set(labels))


def test_map_files_png_and_offline_html(map_dir, small_qa):
    out, _, fig, _ = map_dir
    png = (out / "map.png").read_bytes()
    assert png.startswith(PNG_MAGIC) and len(png) > 20_000
    page = (out / "map.html").read_text(encoding="utf-8")
    # self-contained: plotly.js inline, no script or stylesheet fetched from anywhere
    assert len(page) > 3_000_000 and "Plotly.newPlot" in page
    assert not re.search(r"<script[^>]+src=", page)
    assert not re.search(r"<link[^>]+href=\"?https?:", page)
    # one trace (legend entry) per class, plus centroids and the new LLM; hover carries the QA
    names = [t.name for t in fig.data]
    classes = sorted(set(class_names(small_qa)))
    assert names[: len(classes)] == classes
    assert "class centroids" in names and "new: newcomer$en" in names
    first = fig.data[0]
    assert "Q:" in first.hovertemplate and "A:" in first.hovertemplate
    model, lang = classes[0].split("$")
    assert first.customdata[0][0] == model and first.customdata[0][1] == lang
    # the colour buttons restyle every trace: by model and by language
    buttons = fig.layout.updatemenus[0].buttons
    assert [b.label for b in buttons] == ["colour by model", "colour by language"]
    assert all(len(b.args[0]["marker.color"]) == len(fig.data) for b in buttons)
    coords = pd.read_csv(out / "map_coords.csv")
    assert len(coords) == len(small_qa) + 30


def test_add_places_new_llm_next_to_its_source_class(map_dir):
    _, _, _, nearest = map_dir
    assert list(nearest.columns) == ["new", "rank", "class", "cosine", "energy"]
    assert nearest["class"].iloc[0] == "llama-7b-chat$en"
    assert nearest["cosine"].is_monotonic_increasing


def test_projection_does_not_refit_and_lands_known_qas_in_place(map_dir, embedded):
    """Transforming QAs the map was fitted on puts them near their own fitted position.

    Not on it: a fitted QA's evidence comes from the one probe that did not see its question, a projected
    QA's from the mean of all fold probes."""
    _, vmap, _, _ = map_dir
    table, vectors = embedded
    before = vmap.coords.copy()
    rows = np.arange(0, len(table), 7)
    projected = vmap.transform(vectors[rows])
    assert np.array_equal(vmap.coords, before)  # the existing map did not move
    extent = np.ptp(vmap.coords, axis=0).max()
    gap = np.linalg.norm(projected - vmap.coords[rows], axis=1)
    assert np.median(gap) < 0.1 * extent


def _topic_and_class(class_weight: float, n_questions: int = 60, seed: int = 0):
    """Vectors ruled by their question (as raw sentence embeddings are), with a weaker class direction."""
    rng = np.random.default_rng(seed)
    dim, models = 48, [f"llm{i}" for i in range(6)]
    class_dirs = rng.normal(size=(len(models), dim))
    rows, vecs = [], []
    for q in range(n_questions):
        topic = rng.normal(size=dim) * 3.0
        for m, model in enumerate(models):
            vecs.append(topic + class_weight * class_dirs[m] + rng.normal(scale=0.5, size=dim))
            rows.append((model + "$en", f"question {q}?"))
    labels, questions = map(np.array, zip(*rows))
    return np.array(vecs), labels.astype(object), questions.astype(object)


def test_evidence_map_shows_the_classes_a_raw_umap_hides():
    import umap

    from univar.evidence import neighbour_accuracy

    vectors, labels, questions = _topic_and_class(class_weight=1.5)
    vmap = fit_map(vectors, labels, seed=0, questions=questions)
    raw = umap.UMAP(n_neighbors=15, metric="cosine", random_state=0, n_epochs=200).fit_transform(vectors)
    raw_acc = neighbour_accuracy(raw, labels, k=10)
    assert vmap.basis == "class evidence"
    assert raw_acc < 0.3  # the raw layout clumps each question's six answers together
    assert vmap.fidelity > 0.8 and vmap.shows_classes
    assert vmap.fidelity == neighbour_accuracy(vmap.coords, labels, k=10)
    assert "name its class for" in vmap.describe()


def test_map_says_so_when_the_encoder_has_no_class_signal():
    vectors, labels, questions = _topic_and_class(class_weight=0.0)
    vmap = fit_map(vectors, labels, seed=0, questions=questions)
    assert not vmap.shows_classes
    assert vmap.fidelity < 0.3 and abs(vmap.chance - 1 / 6) < 1e-9
    assert "barely separates" in vmap.describe()


def test_class_evidence_is_cross_fitted_over_question_folds():
    """A QA's evidence never depends on its own label: relabelling one fold leaves that fold's evidence alone."""
    from univar.evidence import _folds, fit_evidence

    vectors, labels, questions = _topic_and_class(class_weight=0.8)
    folds = _folds(questions)
    _, evidence = fit_evidence(vectors, labels, questions)
    shuffled = labels.copy()
    rows = np.flatnonzero(folds == 0)
    shuffled[rows] = np.random.default_rng(1).permutation(shuffled[rows])
    _, again = fit_evidence(vectors, shuffled, questions)
    assert np.allclose(evidence[rows], again[rows])
    assert not np.allclose(evidence[folds != 0], again[folds != 0])
    # every question sits in one fold, so a QA's evidence comes from probes that never saw its question
    assert all(len(set(folds[questions == q])) == 1 for q in set(questions))


def test_one_class_map_falls_back_to_the_embeddings(embedded):
    table, vectors = embedded
    one = np.full(len(table), "only$en", dtype=object)
    vmap = fit_map(vectors, one, seed=0, questions=table["question"].to_numpy())
    assert vmap.evidence is None and vmap.basis == "embedding" and "one class" in vmap.describe()


def test_heatmap_colour_scale_spans_the_pairs_not_the_diagonal():
    from univar.viz import heatmap_limits

    dist = pd.DataFrame([[0.0, 0.83, 0.9], [0.83, 0.0, 1.01], [0.9, 1.01, 0.0]], index=list("abc"),
                        columns=list("abc"))
    assert heatmap_limits(dist) == (0.83, 1.01)


def test_map_html_has_a_title_and_a_legend_that_follows_the_colouring(map_dir):
    out, _, fig, _ = map_dir
    page = (out / "map.html").read_text(encoding="utf-8")
    assert re.search(r"<title>Value map · test · encoder minilm[^<]*</title>", page)
    by_model, by_lang = (b.args for b in fig.layout.updatemenus[0].buttons)
    assert by_lang[1]["legend.title.text"] == "language" and by_model[1]["legend.title.text"].startswith("class")
    shown = [name for name, show in zip(by_lang[0]["name"], by_lang[0]["showlegend"])
             if show and not name.startswith("new: ") and name != "class centroids"]
    assert shown == ["en"]  # one entry per language, not one per class
    assert by_model[0]["name"][0].endswith("$en")
    coords = pd.read_csv(out / "map_coords.csv")
    assert list(coords.columns) == ["class", "x", "y", "question_fold", "question"]
    assert set(coords["question_fold"]) <= {-1, 0, 1, 2, 3, 4} and (coords["question_fold"] == -1).sum() == 30


def test_compare_files_heatmap_dendrogram_and_csv(tmp_path, embedded):
    table, vectors = embedded
    dist, _ = write_compare_files(vectors, class_names(table), tmp_path, "minilm", "test",
                                     groups=table["question"].to_numpy(), n_boot=30)
    assert dist.paired  # the six LLMs answered the same questions
    for name in ("heatmap.png", "heatmap_energy.png", "dendrogram.png"):
        assert (tmp_path / name).read_bytes().startswith(PNG_MAGIC)
    csv = pd.read_csv(tmp_path / "distances.csv")
    assert len(csv) == 15  # 6 LLMs -> 15 pairs
    assert (csv["cosine_lo"] <= csv["cosine"]).all() and (csv["cosine"] <= csv["cosine_hi"]).all()
    assert (csv["energy_lo"] <= csv["energy"]).all() and (csv["energy"] <= csv["energy_hi"]).all()
    # estimates are unbiased, so LLMs that cannot be told apart on 40 questions may dip just below 0;
    # the most distant pair is the one the full 1,706 questions also put furthest apart, clearly above 0
    assert (csv["cosine"] > -0.02).all() and (csv["cosine"] < 0.5).all()
    top = csv.sort_values("cosine").iloc[-1]
    assert {top["class_a"], top["class_b"]} == {"gpt-3.5-turbo-1106$en", "llama-7b-chat$en"}
    assert top["cosine_lo"] > 0 and top["energy_lo"] > 0
    neighbours = pd.read_csv(tmp_path / "neighbours.csv")
    assert len(neighbours) == 6 * 3 and set(neighbours.columns) >= {"class", "neighbour", "distance", "energy"}


def test_spread_labels_never_overlap():
    points = np.array([[0.5, 0.5]] * 6 + [[0.1, 0.9]])
    spots = spread_labels(points, gap=0.035, width=0.22)
    same = spots[:6]
    ys = np.sort(same[:, 1])
    assert np.all(np.diff(ys) >= 0.035 - 1e-9)
    assert np.all((spots >= 0) & (spots <= 1))
