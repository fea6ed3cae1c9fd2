"""The value map and the comparison figures on real minilm embeddings of bundled ValueBench answers."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from univar.encoders import embed
from univar.qa import qa_texts
from univar.report import class_names, write_compare_files, write_map_files
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
    """Transforming QAs the map was fitted on puts them beside their own fitted position."""
    _, vmap, _, _ = map_dir
    table, vectors = embedded
    before = vmap.coords.copy()
    rows = np.arange(0, len(table), 7)
    projected = vmap.transform(vectors[rows])
    assert np.array_equal(vmap.coords, before)  # the existing map did not move
    extent = np.ptp(vmap.coords, axis=0).max()
    gap = np.linalg.norm(projected - vmap.coords[rows], axis=1)
    assert np.median(gap) < 0.05 * extent


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
