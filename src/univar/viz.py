"""Pictures of value space: the value map (UMAP, PNG and interactive HTML), distance heatmaps, dendrograms.

The map is a 2-D UMAP of per-QA value embeddings, seeded so the same data and encoder give the same
picture, with one centroid per ``model$lang`` class. The fitted reducer is kept, so QAs of a new LLM can be
projected into an existing map without refitting it (``univar map --add``): the old points stay where
they were and the new ones land among the classes they resemble.

The HTML map is one self-contained file (plotly.js inlined, no network): one legend entry per class,
hover shows model, language, question and an answer excerpt, and two buttons switch the colouring
between model and language. PNGs use matplotlib's Agg backend, so nothing needs a display.
"""

from __future__ import annotations

import html
import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from univar.qa import CLASS_SEP

log = logging.getLogger("univar")

# A qualitative palette that stays distinguishable for ~20 groups; beyond that colours repeat by design
# (the legend and hover still name every class).
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf", "#393b79", "#e7ba52", "#843c39", "#5254a3", "#8ca252", "#bd9e39",
           "#ad494a", "#a55194", "#6b6ecf", "#637939"]
SVG_POINT_LIMIT = 5000  # above this the HTML map draws with WebGL (scattergl) to stay responsive
NEW_PREFIX = "new: "


def _mpl():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def colours(names: Sequence[str]) -> dict[str, str]:
    """A stable colour per name (sorted order), cycling through ``PALETTE``."""
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(sorted(set(names)))}


@dataclass
class ValueMap:
    """A fitted 2-D map: the reducer, the coordinates of the QAs it was fitted on, and their labels."""

    reducer: object
    coords: np.ndarray
    labels: np.ndarray  # model$lang per QA
    seed: int

    def transform(self, vectors: np.ndarray) -> np.ndarray:
        """Project new QA embeddings into this map (no refit)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return np.asarray(self.reducer.transform(np.asarray(vectors, dtype=np.float32)))

    def centroids(self, coords: np.ndarray | None = None, labels: Sequence[str] | None = None) -> pd.DataFrame:
        """Mean map position of each class."""
        coords = self.coords if coords is None else coords
        labels = self.labels if labels is None else np.asarray(labels, dtype=object)
        frame = pd.DataFrame({"class": labels, "x": coords[:, 0], "y": coords[:, 1]})
        return frame.groupby("class", sort=True)[["x", "y"]].mean()


def fit_map(vectors: np.ndarray, labels: Sequence[str], seed: int = 0, n_neighbors: int = 15,
            min_dist: float = 0.1, n_epochs: int = 200) -> ValueMap:
    """Fit a seeded UMAP (cosine metric) on per-QA embeddings.

    A fixed ``random_state`` makes UMAP single-threaded and repeatable; a map that moves between runs
    would mislead more than a slower one. 200 epochs (UMAP's own choice above 10,000 points; it uses 500
    below) keep the layout and make small maps about twice as fast.
    """
    import umap

    vectors = np.asarray(vectors, dtype=np.float32)
    n_neighbors = max(2, min(n_neighbors, len(vectors) - 1))
    reducer = umap.UMAP(n_neighbors=n_neighbors, min_dist=min_dist, metric="cosine", random_state=seed,
                        n_components=2, transform_seed=seed, n_epochs=n_epochs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # n_jobs overridden by random_state; numba deprecations
        coords = reducer.fit_transform(vectors)
    return ValueMap(reducer=reducer, coords=np.asarray(coords), labels=np.asarray(labels, dtype=object), seed=seed)


def _split_class(label: str) -> tuple[str, str]:
    model, _, lang = str(label).rpartition(CLASS_SEP)
    return (model, lang) if model else (label, "")


def _excerpt(text: str, limit: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def map_png(vmap: ValueMap, path: str | Path, title: str, color_by: str = "model",
            new_coords: np.ndarray | None = None, new_labels: Sequence[str] | None = None) -> Path:
    """The map as a PNG: QAs as small dots coloured by model or language, class centroids labelled."""
    plt = _mpl()
    labels = vmap.labels
    key = np.array([_split_class(c)[0 if color_by == "model" else 1] for c in labels], dtype=object)
    palette = colours(key)
    n_groups = len(palette)
    fig, ax = plt.subplots(figsize=(11, 8) if n_groups <= 20 else (13, 9), dpi=110)
    size = float(np.clip(20000 / max(len(labels), 1), 3, 40))
    for group, colour in palette.items():
        mask = key == group
        ax.scatter(vmap.coords[mask, 0], vmap.coords[mask, 1], s=size, c=colour, alpha=0.45, linewidths=0,
                   label=f"{group} ({int(mask.sum())})", rasterized=True)
    cents = vmap.centroids()
    one_lang = len({_split_class(c)[1] for c in cents.index}) == 1
    for name, row in cents.iterrows():
        colour = palette[_split_class(name)[0 if color_by == "model" else 1]]
        ax.scatter([row.x], [row.y], s=110, c=colour, marker="o", edgecolors="black", linewidths=1.4, zorder=3)
    if len(cents) <= 40:
        _label_centroids(ax, cents, [(_split_class(c)[0] if one_lang else c) for c in cents.index])
    if new_coords is not None and len(new_coords):
        new_labels = np.asarray(new_labels if new_labels is not None else ["new"] * len(new_coords), dtype=object)
        for name in sorted(set(new_labels.tolist())):
            mask = new_labels == name
            ax.scatter(new_coords[mask, 0], new_coords[mask, 1], s=size * 3, c="black", marker="x", linewidths=0.8,
                       label=f"{NEW_PREFIX}{name} ({int(mask.sum())})", zorder=5)
            cx, cy = new_coords[mask].mean(0)
            ax.scatter([cx], [cy], s=260, c="gold", marker="*", edgecolors="black", linewidths=1.2, zorder=6)
            ax.annotate(f"{NEW_PREFIX}{name}", (cx, cy), xytext=(6, -12), textcoords="offset points",
                        fontsize=9, weight="bold", zorder=6)
    ax.set_title(title, fontsize=12)
    ax.set_xlabel("UMAP 1")
    ax.set_ylabel("UMAP 2")
    ax.set_xticks([])
    ax.set_yticks([])
    n_entries = n_groups + (len(set(new_labels.tolist())) if new_coords is not None and len(new_coords) else 0)
    legend = ax.legend(title=f"colour: {color_by}  (large dots: class centroids)", loc="center left",
                       bbox_to_anchor=(1.01, 0.5), fontsize=8 if n_entries <= 30 else 6, markerscale=max(1.0, 30 / size) ** 0.5,
                       ncol=1 if n_entries <= 30 else 2, frameon=False)
    for handle in legend.legend_handles:
        handle.set_alpha(1.0)
    return _save(fig, path)


def spread_labels(points: np.ndarray, gap: float = 0.035, width: float = 0.22) -> np.ndarray:
    """Label positions (fractions of the plot, 0..1) near ``points`` that do not collide.

    Labels go up and to the right of their point; one that would overlap a label already placed is pushed
    up by ``gap`` until it is free. Centroids of similar classes often coincide, so this matters.
    """
    points = np.asarray(points, dtype=float)
    placed: list[tuple[float, float]] = []
    spots = np.zeros_like(points)
    for i in np.argsort(points[:, 1], kind="stable"):
        x, y = points[i, 0] + 0.02, points[i, 1] + 0.02
        for _ in range(len(points)):
            clash = [py for px, py in placed if abs(px - x) < width and abs(py - y) < gap]
            if not clash:
                break
            y = max(clash) + gap
        placed.append((x, y))
        spots[i] = (min(x, 0.97), min(y, 0.98))
    return spots


def _label_centroids(ax, cents: pd.DataFrame, texts: list[str]) -> None:
    """Matplotlib centroid labels, spread apart and joined to their centroid by a thin line."""
    ax.figure.canvas.draw()  # fix the data limits before converting
    to_axes = ax.transAxes.inverted().transform
    points = np.array([to_axes(ax.transData.transform((x, y))) for x, y in zip(cents.x, cents.y)])
    spots = spread_labels(points)
    for i, (name, row) in enumerate(cents.iterrows()):
        ax.annotate(texts[i], (row.x, row.y), xytext=spots[i], textcoords="axes fraction", fontsize=8, zorder=4,
                    bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "#999999", "lw": 0.5, "alpha": 0.85},
                    arrowprops={"arrowstyle": "-", "color": "#555555", "lw": 0.6})


def map_figure(vmap: ValueMap, table: pd.DataFrame, title: str, color_by: str = "model",
               new_coords: np.ndarray | None = None, new_table: pd.DataFrame | None = None,
               excerpt: int = 220):
    """The interactive map (a plotly Figure): one trace per class, hover with the QA, colour buttons.

    One trace per class gives one legend entry per class (click to hide, double-click to isolate);
    the buttons restyle every trace's colour by model or by language, which the legend then follows.
    """
    import plotly.graph_objects as go

    scatter = go.Scattergl if len(vmap.labels) + (0 if new_coords is None else len(new_coords)) > SVG_POINT_LIMIT \
        else go.Scatter
    classes = sorted(set(vmap.labels.tolist()))
    by_model = colours([_split_class(c)[0] for c in classes])
    by_lang = colours([_split_class(c)[1] for c in classes])
    questions = table["question"].astype(str).to_numpy()
    answers = table["answer"].astype(str).to_numpy()
    fig = go.Figure()
    hover = ("<b>%{customdata[0]}</b> · %{customdata[1]}<br><b>Q:</b> %{customdata[2]}"
             "<br><b>A:</b> %{customdata[3]}<extra></extra>")
    model_colours, lang_colours = [], []
    for name in classes:
        model, lang = _split_class(name)
        mask = vmap.labels == name
        custom = np.stack([np.full(mask.sum(), model, dtype=object), np.full(mask.sum(), lang, dtype=object),
                           [_wrap(_excerpt(q, 160)) for q in questions[mask]],
                           [_wrap(_excerpt(a, excerpt)) for a in answers[mask]]], axis=1)
        fig.add_trace(scatter(x=vmap.coords[mask, 0], y=vmap.coords[mask, 1], mode="markers", name=name,
                              legendgroup=name, customdata=custom, hovertemplate=hover,
                              marker={"size": 5, "color": by_model[model], "opacity": 0.6}))
        model_colours.append(by_model[model])
        lang_colours.append(by_lang[lang])
    cents = vmap.centroids()
    fig.add_trace(go.Scatter(x=cents.x, y=cents.y, mode="markers", text=list(cents.index),
                             name="class centroids", hovertemplate="<b>%{text}</b> centroid<extra></extra>",
                             marker={"size": 12, "color": "white", "line": {"color": "black", "width": 2}, "symbol": "circle"}))
    annotations = []
    if len(cents) <= 40:  # labels spread apart like the PNG's, each joined to its centroid
        lo, hi = vmap.coords.min(0), vmap.coords.max(0)
        span = np.where(hi - lo > 0, hi - lo, 1.0)
        spots = spread_labels((cents[["x", "y"]].to_numpy() - lo) / span) * span + lo
        for (name, row), (sx, sy) in zip(cents.iterrows(), spots):
            annotations.append({"x": row.x, "y": row.y, "ax": sx, "ay": sy, "axref": "x", "ayref": "y", "text": html.escape(name),
                                    "showarrow": True, "arrowhead": 0, "arrowwidth": 0.8, "arrowcolor": "#555",
                                    "font": {"size": 10}, "bgcolor": "rgba(255,255,255,0.85)", "bordercolor": "#999",
                                    "borderwidth": 0.5, "xanchor": "left"})
    model_colours.append("white")
    lang_colours.append("white")
    if new_coords is not None and new_table is not None and len(new_coords):
        new_labels = (new_table["model"].astype(str) + CLASS_SEP + new_table["lang"].astype(str)).to_numpy()
        nq, na = new_table["question"].astype(str).to_numpy(), new_table["answer"].astype(str).to_numpy()
        for name in sorted(set(new_labels.tolist())):
            mask = new_labels == name
            model, lang = _split_class(name)
            custom = np.stack([np.full(mask.sum(), f"{NEW_PREFIX}{model}", dtype=object),
                               np.full(mask.sum(), lang, dtype=object),
                               [_wrap(_excerpt(q, 160)) for q in nq[mask]],
                               [_wrap(_excerpt(a, excerpt)) for a in na[mask]]], axis=1)
            fig.add_trace(scatter(x=new_coords[mask, 0], y=new_coords[mask, 1], mode="markers",
                                  name=f"{NEW_PREFIX}{name}", customdata=custom, hovertemplate=hover,
                                  marker={"size": 8, "color": "black", "symbol": "x"}))
            model_colours.append("black")
            lang_colours.append("black")
    buttons = [{"label": "colour by model", "method": "restyle", "args": [{"marker.color": model_colours}]},
               {"label": "colour by language", "method": "restyle", "args": [{"marker.color": lang_colours}]}]
    if color_by == "lang":
        for i, trace in enumerate(fig.data):
            trace.marker.color = lang_colours[i]
    fig.update_layout(
        title={"text": html.escape(title), "x": 0.01, "y": 0.985, "yanchor": "top", "font": {"size": 15}},
        template="plotly_white", height=720, hovermode="closest", annotations=annotations,
        legend={"title": {"text": "class (model$lang)"}, "itemsizing": "constant", "font": {"size": 10}},
        updatemenus=[{"type": "buttons", "direction": "right", "x": 0.0, "y": 1.01, "xanchor": "left", "yanchor": "bottom",
                          "buttons": buttons, "active": 0 if color_by == "model" else 1, "showactive": True,
                          "font": {"size": 11}, "pad": {"b": 4}}],
        xaxis={"title": "UMAP 1", "showticklabels": False, "zeroline": False},
        yaxis={"title": "UMAP 2", "showticklabels": False, "zeroline": False},
        margin={"l": 40, "r": 20, "t": 110, "b": 40},
    )
    return fig


def _wrap(text: str, width: int = 70) -> str:
    """Break hover text into lines (plotly tooltips do not wrap on their own); escape HTML."""
    import textwrap

    return "<br>".join(html.escape(line) for line in textwrap.wrap(text, width)) or "(empty)"


def write_map_html(fig, path: str | Path) -> Path:
    """A standalone HTML file with plotly.js inlined: opens offline, from disk, in any browser."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.write_html(str(path), include_plotlyjs=True, full_html=True, config={"displaylogo": False,
                                                                             "responsive": True})
    return path


def heatmap_png(dist: pd.DataFrame, path: str | Path, title: str, label: str = "distance",
                lo: pd.DataFrame | None = None, hi: pd.DataFrame | None = None) -> Path:
    """A class-by-class distance heatmap; values (and CIs, when small enough) written in the cells."""
    plt = _mpl()
    n = len(dist)
    with_ci = lo is not None and hi is not None and n <= 8
    side = float(np.clip((1.25 if with_ci else 0.55) * n + 3, 6, 30))
    fig, ax = plt.subplots(figsize=(side + 1.5, side), dpi=110 if n <= 40 else 80)
    image = ax.imshow(dist.to_numpy(), cmap="viridis_r", interpolation="nearest")
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    fs = 9 if n <= 12 else 7 if n <= 30 else 4
    ax.set_xticklabels(dist.columns, rotation=60, ha="right", fontsize=fs)
    ax.set_yticklabels(dist.index, fontsize=fs)
    if n <= 12:
        values = dist.to_numpy()
        top = np.nanmax(values) if np.isfinite(values).any() else 1.0
        for i in range(n):
            for j in range(n):
                if i == j:
                    continue
                text = f"{values[i, j]:.3f}"
                if with_ci:
                    text += f"\n[{lo.iloc[i, j]:.3f}, {hi.iloc[i, j]:.3f}]"
                # viridis_r: light (yellow) for small distances, dark for large ones
                ax.text(j, i, text, ha="center", va="center", fontsize=7,
                        color="black" if values[i, j] < 0.55 * top else "white")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label=label)
    ax.set_title(title, fontsize=11)
    return _save(fig, path)


def _save(fig, path: str | Path) -> Path:
    """Lay out, write and close a figure (closing matters: pyplot keeps every open figure alive)."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    return path


def dendrogram_png(dist: pd.DataFrame, path: str | Path, title: str, label: str = "distance") -> Path:
    """Average-linkage clustering of the classes from a distance matrix (UPGMA, like a value family tree)."""
    from scipy.cluster.hierarchy import dendrogram, linkage
    from scipy.spatial.distance import squareform

    plt = _mpl()
    values = dist.to_numpy(dtype=np.float64).copy()
    values = (values + values.T) / 2
    np.fill_diagonal(values, 0.0)
    values = np.clip(values, 0.0, None)  # an energy estimate can dip below zero for alike classes
    tree = linkage(squareform(values, checks=False), method="average")
    n = len(dist)
    fig, ax = plt.subplots(figsize=(10, float(np.clip(0.28 * n + 2, 4, 40))), dpi=110 if n <= 60 else 80)
    dendrogram(tree, labels=list(dist.index), orientation="right", ax=ax, color_threshold=None,
               leaf_font_size=9 if n <= 30 else 6)
    ax.set_xlabel(label)
    ax.set_title(title, fontsize=11)
    return _save(fig, path)
