"""Pictures of value space: the value map (UMAP, PNG and interactive HTML), distance heatmaps, dendrograms.

The map is a 2-D UMAP of per-QA class evidence (:mod:`univar.evidence`): each QA placed by how much it
looks like each class's answers, as judged by probes trained on other questions. Drawn from the raw
embeddings, a map clusters by question instead; drawn from the evidence, it shows the structure that value
identification finds, and only as much of it as the encoder has (``ValueMap.fidelity`` says how much).
It is seeded, so the same data and encoder give the same picture, with one centroid per ``model$lang``
class. The fitted probes and reducer are kept, so QAs of a new LLM can be placed into an existing map
without refitting it (``univar map --add``): the old points stay where they were and the new ones land
among the classes they resemble.

The HTML map is one self-contained file (plotly.js inlined, no network): one legend entry per class,
hover shows model, language, question and an answer excerpt, and two buttons switch the colouring (and
the legend) between model and language. PNGs use matplotlib's Agg backend, so nothing needs a display.
"""

from __future__ import annotations

import html
import logging
import textwrap
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from univar import progress
from univar.evidence import ClassEvidence, fit_evidence, neighbour_accuracy
from univar.files import atomic_write
from univar.qa import class_labels, split_class

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
    """A fitted 2-D map: the reducer, the coordinates of the QAs it was fitted on, and their labels.

    ``evidence`` is the cross-fitted class evidence the map is drawn from (None: the raw embeddings, when
    there is a single class); ``fidelity`` is the share of QAs whose 10 nearest neighbours on the map have
    their class, and ``chance`` what guessing the largest class would get.
    """

    reducer: object
    coords: np.ndarray
    labels: np.ndarray  # model$lang per QA
    seed: int
    evidence: ClassEvidence | None = None
    fidelity: float = float("nan")
    chance: float = float("nan")

    @property
    def basis(self) -> str:
        return "class evidence" if self.evidence is not None else "embedding"

    @property
    def shows_classes(self) -> bool:
        """Does the map separate the classes clearly enough that its colours mean something?

        Well above chance: at least 1.5x what guessing the largest class gets, and 10 points over it.
        """
        return bool(np.isfinite(self.fidelity) and self.fidelity >= max(1.5 * self.chance, self.chance + 0.10))

    def transform(self, vectors: np.ndarray) -> np.ndarray:
        """Project new QA embeddings into this map (no refit)."""
        points = np.asarray(vectors, dtype=np.float32)
        if self.evidence is not None:
            points = self.evidence.transform(points).astype(np.float32)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return np.asarray(self.reducer.transform(points))

    def centroids(self, coords: np.ndarray | None = None, labels: Sequence[str] | None = None) -> pd.DataFrame:
        """Mean map position of each class."""
        coords = self.coords if coords is None else coords
        labels = self.labels if labels is None else np.asarray(labels, dtype=object)
        frame = pd.DataFrame({"class": labels, "x": coords[:, 0], "y": coords[:, 1]})
        return frame.groupby("class", sort=True)[["x", "y"]].mean()

    def describe(self) -> str:
        """One sentence on what the map shows, for the CLI and the report."""
        if self.evidence is None:
            return "the map is drawn from the embeddings themselves (one class: there is no class evidence)"
        acc = f"{100 * self.fidelity:.1f}% of QAs (chance {100 * self.chance:.1f}%)"
        if self.shows_classes:
            return f"on the map, the 10 nearest neighbours of a QA name its class for {acc}"
        return (f"this encoder barely separates these classes: on the map the 10 nearest neighbours of a QA "
                f"name its class for only {acc}, so the colours are mixed and distances on the map say little")


def fit_map(vectors: np.ndarray, labels: Sequence[str], seed: int = 0, questions: Sequence[str] | None = None,
            n_neighbors: int = 15, min_dist: float = 0.1, n_epochs: int = 200) -> ValueMap:
    """Fit a seeded UMAP of per-QA class evidence (see :mod:`univar.evidence`).

    ``questions`` are the QAs' questions: the evidence of a QA comes from probes trained on other
    questions (None: each QA counts as its own question). With a single class there is no evidence to
    draw, and the map falls back to a UMAP of the embeddings (cosine).

    A fixed ``random_state`` makes UMAP single-threaded and repeatable; a map that moves between runs
    would mislead more than a slower one. 200 epochs (UMAP's own choice above 10,000 points; it uses 500
    below) keep the layout and make small maps about twice as fast.
    """
    import umap

    vectors = np.asarray(vectors, dtype=np.float32)
    labels = np.asarray(labels, dtype=object)
    questions = np.arange(len(labels)).astype(str) if questions is None else np.asarray(questions, dtype=object)
    with progress.step(f"class evidence for {len(labels):,} QAs (5 cross-fitted probes)"):
        fitted = fit_evidence(vectors, labels, questions, seed=seed)
    points, metric, evidence = vectors, "cosine", None
    if fitted is not None:
        evidence, points = fitted[0], fitted[1].astype(np.float32)
        metric = "euclidean"
    n_neighbors = max(2, min(n_neighbors, len(points) - 1))
    reducer = umap.UMAP(n_neighbors=n_neighbors, min_dist=min_dist, metric=metric, random_state=seed,
                        n_components=2, transform_seed=seed, n_epochs=n_epochs)
    with progress.step(f"UMAP layout of {len(labels):,} QAs"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # n_jobs overridden by random_state; numba deprecations
        coords = np.asarray(reducer.fit_transform(points))
    _, counts = np.unique(labels, return_counts=True)
    return ValueMap(reducer=reducer, coords=coords, labels=labels, seed=seed, evidence=evidence,
                    fidelity=neighbour_accuracy(coords, labels, k=10), chance=float(counts.max() / counts.sum()))


def _excerpt(text: str, limit: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def map_png(vmap: ValueMap, path: str | Path, title: str, color_by: str = "model",
            new_coords: np.ndarray | None = None, new_labels: Sequence[str] | None = None,
            subtitle: str = "") -> Path:
    """The map as a PNG: QAs as small dots coloured by model or language, class centroids labelled."""
    plt = _mpl()
    labels = vmap.labels
    key = np.array([split_class(c)[0 if color_by == "model" else 1] for c in labels], dtype=object)
    palette = colours(key)
    n_groups = len(palette)
    fig, ax = plt.subplots(figsize=(11, 8) if n_groups <= 20 else (13, 9), dpi=110)
    size = float(np.clip(20000 / max(len(labels), 1), 3, 40))
    for group, colour in palette.items():
        mask = key == group
        ax.scatter(vmap.coords[mask, 0], vmap.coords[mask, 1], s=size, c=colour, alpha=0.45, linewidths=0,
                   label=f"{group} ({int(mask.sum())})", rasterized=True)
    cents = vmap.centroids()
    one_lang = len({split_class(c)[1] for c in cents.index}) == 1
    for name, row in cents.iterrows():
        colour = palette[split_class(name)[0 if color_by == "model" else 1]]
        ax.scatter([row.x], [row.y], s=110, c=colour, marker="o", edgecolors="black", linewidths=1.4, zorder=3)
    if len(cents) <= 40:
        _label_centroids(ax, cents, [(split_class(c)[0] if one_lang else c) for c in cents.index])
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
    ax.set_title(title + (f"\n{subtitle}" if subtitle else ""), fontsize=12 if not subtitle else 10)
    ax.set_xlabel("UMAP 1")
    ax.set_ylabel("UMAP 2")
    ax.set_xticks([])
    ax.set_yticks([])
    n_entries = n_groups + (len(set(new_labels.tolist())) if new_coords is not None and len(new_coords) else 0)
    legend = ax.legend(title=f"colour: {color_by}  (large dots: class centroids)", loc="center left",
                       bbox_to_anchor=(1.01, 0.5), fontsize=8 if n_entries <= 30 else 6,
                       markerscale=max(1.0, 30 / size) ** 0.5, ncol=1 if n_entries <= 30 else 2, frameon=False)
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


HOVER = ("<b>%{customdata[0]}</b> · %{customdata[1]}<br><b>Q:</b> %{customdata[2]}"
         "<br><b>A:</b> %{customdata[3]}<extra></extra>")


@dataclass
class _Styles:
    """Per trace, in trace order: how it looks coloured by model (class legend) and by language."""

    model_colours: list[str] = field(default_factory=list)
    lang_colours: list[str] = field(default_factory=list)
    class_names: list[str] = field(default_factory=list)
    lang_names: list[str] = field(default_factory=list)
    lang_first: list[bool] = field(default_factory=list)  # the first trace of a language stands for it

    def add(self, model_colour: str, lang_colour: str, class_name: str, lang_name: str | None = None) -> None:
        lang_name = class_name if lang_name is None else lang_name
        self.model_colours.append(model_colour)
        self.lang_colours.append(lang_colour)
        self.class_names.append(class_name)
        self.lang_first.append(lang_name not in self.lang_names)
        self.lang_names.append(lang_name)

    def by_class(self) -> dict:
        return {"marker.color": self.model_colours, "name": self.class_names, "legendgroup": self.class_names,
                "showlegend": [True] * len(self.class_names)}

    def by_language(self) -> dict:
        return {"marker.color": self.lang_colours, "name": self.lang_names, "legendgroup": self.lang_names,
                "showlegend": self.lang_first}


def _hover_data(model: str, lang: str, questions: np.ndarray, answers: np.ndarray, excerpt: int) -> np.ndarray:
    """customdata rows for HOVER: model, language, the question and an answer excerpt, wrapped."""
    n = len(questions)
    return np.stack([np.full(n, model, dtype=object), np.full(n, lang, dtype=object),
                     [_wrap(_excerpt(q, 160)) for q in questions], [_wrap(_excerpt(a, excerpt)) for a in answers]],
                    axis=1)


def _centroid_labels(vmap: ValueMap, cents: pd.DataFrame) -> list[dict]:
    """Plotly annotations naming the centroids, spread apart like the PNG's, each joined to its centroid."""
    if len(cents) > 40:
        return []
    lo, hi = vmap.coords.min(0), vmap.coords.max(0)
    span = np.where(hi - lo > 0, hi - lo, 1.0)
    spots = spread_labels((cents[["x", "y"]].to_numpy() - lo) / span) * span + lo
    return [{"x": row.x, "y": row.y, "ax": sx, "ay": sy, "axref": "x", "ayref": "y", "text": html.escape(name),
             "showarrow": True, "arrowhead": 0, "arrowwidth": 0.8, "arrowcolor": "#555", "font": {"size": 10},
             "bgcolor": "rgba(255,255,255,0.85)", "bordercolor": "#999", "borderwidth": 0.5, "xanchor": "left"}
            for (name, row), (sx, sy) in zip(cents.iterrows(), spots)]


def map_figure(vmap: ValueMap, table: pd.DataFrame, title: str, color_by: str = "model",
               new_coords: np.ndarray | None = None, new_table: pd.DataFrame | None = None,
               excerpt: int = 220, subtitle: str = ""):
    """The interactive map (a plotly Figure): one trace per class, hover with the QA, colour buttons.

    One trace per class gives one legend entry per class (click to hide, double-click to isolate). The
    buttons restyle every trace's colour by model or by language, and the legend with it: coloured by
    language, it lists each language once (the first of its classes' traces stands for them all).
    """
    import plotly.graph_objects as go

    n_points = len(vmap.labels) + (0 if new_coords is None else len(new_coords))
    scatter = go.Scattergl if n_points > SVG_POINT_LIMIT else go.Scatter
    classes = sorted(set(vmap.labels.tolist()))
    by_model = colours([split_class(c)[0] for c in classes])
    by_lang = colours([split_class(c)[1] for c in classes])
    questions, answers = table["question"].astype(str).to_numpy(), table["answer"].astype(str).to_numpy()
    fig, styles = go.Figure(), _Styles()
    for name in classes:
        model, lang = split_class(name)
        mask = vmap.labels == name
        fig.add_trace(scatter(x=vmap.coords[mask, 0], y=vmap.coords[mask, 1], mode="markers", name=name,
                              legendgroup=name, customdata=_hover_data(model, lang, questions[mask], answers[mask],
                                                                       excerpt),
                              hovertemplate=HOVER, marker={"size": 5, "color": by_model[model], "opacity": 0.6}))
        styles.add(by_model[model], by_lang[lang], name, lang or "(no language)")
    cents = vmap.centroids()
    fig.add_trace(go.Scatter(x=cents.x, y=cents.y, mode="markers", text=list(cents.index), name="class centroids",
                             hovertemplate="<b>%{text}</b> centroid<extra></extra>",
                             marker={"size": 12, "color": "white", "line": {"color": "black", "width": 2},
                                     "symbol": "circle"}))
    styles.add("white", "white", "class centroids")
    if new_coords is not None and new_table is not None and len(new_coords):
        new_labels = class_labels(new_table).to_numpy(dtype=object)
        nq, na = new_table["question"].astype(str).to_numpy(), new_table["answer"].astype(str).to_numpy()
        for name in sorted(set(new_labels.tolist())):
            mask = new_labels == name
            model, lang = split_class(name)
            fig.add_trace(scatter(x=new_coords[mask, 0], y=new_coords[mask, 1], mode="markers",
                                  name=f"{NEW_PREFIX}{name}", hovertemplate=HOVER,
                                  customdata=_hover_data(f"{NEW_PREFIX}{model}", lang, nq[mask], na[mask], excerpt),
                                  marker={"size": 8, "color": "black", "symbol": "x"}))
            styles.add("black", "black", f"{NEW_PREFIX}{name}")
    if color_by == "lang":
        for i, trace in enumerate(fig.data):
            trace.marker.color, trace.name = styles.lang_colours[i], styles.lang_names[i]
            trace.showlegend, trace.legendgroup = styles.lang_first[i], styles.lang_names[i]
    _map_layout(fig, vmap, title, subtitle, color_by, styles, _centroid_labels(vmap, cents))
    return fig


def _map_layout(fig, vmap: ValueMap, title: str, subtitle: str, color_by: str, styles: _Styles,
                annotations: list[dict]) -> None:
    """Title, colour buttons (which switch the legend too), axes and margins of the interactive map."""
    buttons = [{"label": "colour by model", "method": "update",
                "args": [styles.by_class(), {"legend.title.text": "class (model$lang)"}]},
               {"label": "colour by language", "method": "update",
                "args": [styles.by_language(), {"legend.title.text": "language"}]}]
    fig.update_layout(
        title={"text": html.escape(title) + (f"<br><sup>{html.escape(subtitle)}</sup>" if subtitle else ""),
               "x": 0.01, "y": 0.985, "yanchor": "top", "font": {"size": 15}},
        template="plotly_white", height=720, hovermode="closest", annotations=annotations,
        legend={"title": {"text": "language" if color_by == "lang" else "class (model$lang)"},
                "itemsizing": "constant", "font": {"size": 10}},
        updatemenus=[{"type": "buttons", "direction": "right", "x": 0.0, "y": 1.01, "xanchor": "left",
                      "yanchor": "bottom", "buttons": buttons, "active": 0 if color_by == "model" else 1,
                      "showactive": True, "font": {"size": 11}, "pad": {"b": 4}}],
        xaxis={"title": f"UMAP 1 (of {vmap.basis})", "showticklabels": False, "zeroline": False},
        yaxis={"title": "UMAP 2", "showticklabels": False, "zeroline": False},
        margin={"l": 40, "r": 20, "t": 110, "b": 40},
    )


def _wrap(text: str, width: int = 70) -> str:
    """Break hover text into lines (plotly tooltips do not wrap on their own); escape HTML."""
    return "<br>".join(html.escape(line) for line in textwrap.wrap(text, width)) or "(empty)"


def write_map_html(fig, path: str | Path, title: str = "univar value map") -> Path:
    """A standalone HTML file with plotly.js inlined: opens offline, from disk, in any browser.

    plotly writes no ``<title>``, so a browser tab would show the file name; the map's title goes there.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    markup = fig.to_html(include_plotlyjs=True, full_html=True, config={"displaylogo": False, "responsive": True})
    markup = markup.replace("<head>", f"<head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>", 1)
    return atomic_write(path, markup)


def heatmap_png(dist: pd.DataFrame, path: str | Path, title: str, label: str = "distance",
                lo: pd.DataFrame | None = None, hi: pd.DataFrame | None = None) -> Path:
    """A class-by-class distance heatmap; values (and CIs, when small enough) written in the cells.

    The colour scale spans the off-diagonal values (:func:`heatmap_limits`); the diagonal (a class with
    itself) is grey and left out of it.
    """
    import matplotlib

    plt = _mpl()
    n = len(dist)
    with_ci = lo is not None and hi is not None and n <= 8
    side = float(np.clip((1.25 if with_ci else 0.55) * n + 3, 6, 30))
    fig, ax = plt.subplots(figsize=(side + 1.5, side), dpi=110 if n <= 40 else 80)
    shown = dist.to_numpy(dtype=np.float64).copy()
    np.fill_diagonal(shown, np.nan)
    vmin, vmax = heatmap_limits(dist)
    cmap = matplotlib.colormaps["viridis_r"].copy()
    cmap.set_bad("#e6e6e6")
    image = ax.imshow(shown, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    fs = 9 if n <= 12 else 7 if n <= 30 else 4
    ax.set_xticklabels(dist.columns, rotation=60, ha="right", fontsize=fs)
    ax.set_yticklabels(dist.index, fontsize=fs)
    if n <= 12:
        values = dist.to_numpy()
        for i in range(n):
            for j in range(n):
                if i == j:
                    continue
                text = f"{values[i, j]:.3f}"
                if with_ci:
                    text += f"\n[{lo.iloc[i, j]:.3f}, {hi.iloc[i, j]:.3f}]"
                # viridis_r: light (yellow) for small distances, dark for large ones
                ax.text(j, i, text, ha="center", va="center", fontsize=7,
                        color="black" if values[i, j] < vmin + 0.55 * (vmax - vmin) else "white")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label=label)
    ax.set_title(title, fontsize=11)
    return _save(fig, path)


def heatmap_limits(dist: pd.DataFrame) -> tuple[float, float]:
    """The colour range of a distance heatmap: the smallest and largest off-diagonal value.

    With the zero diagonal in it, a scale runs from 0 while the pairs may all lie in 0.83-1.01, and every
    cell gets one flat colour.
    """
    values = dist.to_numpy(dtype=np.float64)
    off = values[~np.eye(len(values), dtype=bool)] if len(values) > 1 else values.ravel()
    off = off[np.isfinite(off)]
    if not len(off):
        return 0.0, 1.0
    lo, hi = float(off.min()), float(off.max())
    return (lo, hi) if hi > lo else (lo - 0.5, hi + 0.5)


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
