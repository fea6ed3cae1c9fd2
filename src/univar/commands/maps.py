"""``univar map``: the value map of DATA (evidence-based placement, UMAP), and new LLMs placed on it."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import numpy as np
import pandas as pd
import typer
from rich.markup import escape

from univar.analysis import nearest_classes
from univar.commands import (
    DataArg,
    EncoderOpt,
    MapOpt,
    OutDir,
    SeedOpt,
    app,
    embed_data,
    err,
    load_data,
    out,
    written,
)
from univar.encoders.embed import embed
from univar.errors import UnivarError
from univar.qa import class_names, qa_texts, question_folds, read_many
from univar.tables import NAME, Col, FitTable
from univar.viz import fit_map, map_figure, map_png, write_map_html


@app.command("map")
def map_(
    data: DataArg,
    encoder: EncoderOpt = "univar",
    out_dir: OutDir = Path("map-out"),
    add: Annotated[list[str] | None, typer.Option(
        "--add", help="QA file(s) of a new LLM to place on the map (no refit).")] = None,
    color: Annotated[str | None, typer.Option(
        "--color", help="Colour the PNG by model or lang (HTML: both, switchable).")] = None,
    seed: SeedOpt = 0,
    map_: MapOpt = None,
) -> None:
    """Value map: each QA placed by its class evidence (probes trained on other questions), laid out by UMAP,
    with class centroids -> map.png, map.html, map_coords.csv."""
    if color not in (None, "model", "lang"):
        raise UnivarError(f"--color must be model or lang, got {color!r}")
    table = load_data(data, map_)
    new_table = read_many(add) if add else None
    if new_table is not None and not set(new_table["question"]).intersection(table["question"]):
        err.print("note: the new QAs answer none of the map's questions; their distances then mix what the "
                  "questions are about with values. Ask the new LLM the same questions where you can.")
    enc, vectors = embed_data(table, encoder)
    new_vectors = None
    if new_table is not None:
        new_vectors = embed(qa_texts(new_table), enc)
    out_dir.mkdir(parents=True, exist_ok=True)
    vmap, _, nearest = write_map_files(table, vectors, out_dir, enc.name, " + ".join(data), seed=seed,
                                       color_by=color, new_table=new_table, new_vectors=new_vectors)
    (out if vmap.shows_classes else err).print(("" if vmap.shows_classes else "note: ") + vmap.describe())
    out.print(f"map written to {written(out_dir)}")
    if nearest is not None:
        for name, group in nearest.groupby("new", sort=True):
            out.print(_nearest_table(str(name), group, enc.name))
        out.print(f"nearest classes written to {out_dir / 'nearest.csv'}")


def _nearest_table(name: str, group, encoder: str) -> FitTable:
    """The classes nearest one new LLM (rows of nearest.csv): the class names, which ``explain --a`` takes, stay
    whole at 80 columns; the energy distance goes first where even that does not fit."""
    t = FitTable(Col("rank"), Col("class", NAME), Col("cosine\ndistance"), Col("energy\ndistance", drop=1),
                 title=f"nearest classes of new {escape(name)} ({escape(encoder)})")
    for rank, cls, cosine, energy in zip(group["rank"], group["class"], group["cosine"], group["energy"]):
        t.add_row(str(rank), escape(str(cls)), f"{cosine:.4f}", f"{energy:.4f}" if math.isfinite(energy) else "-")
    return t


# --- the files `univar map` writes (the demo writes the same) -----------------------------------------

def map_title(table: pd.DataFrame, encoder_name: str, source: str) -> str:
    """The value map's heading: where the QAs come from, the encoder, and how many QAs and classes."""
    n_classes = len(set(class_names(table).tolist()))
    return f"Value map · {source} · encoder {encoder_name} · {len(table):,} QAs · {n_classes} classes"


def write_map_files(table: pd.DataFrame, vectors: np.ndarray, out_dir: str | Path, encoder_name: str,
                    source: str, *, seed: int = 0, color_by: str | None = None,
                    new_table: pd.DataFrame | None = None, new_vectors: np.ndarray | None = None):
    """Fit the map and write ``map.png``, ``map.html`` and ``map_coords.csv`` (and place NEW QAs when given).

    ``map_coords.csv`` has one row per QA: ``class, x, y``, then ``question_fold`` (0 is the folds' held-out
    fold of value identification; new QAs: -1) and ``question``, so anyone can check the map's fidelity.
    Returns ``(value_map, figure, nearest)``; ``nearest`` lists each new class's nearest existing classes
    (None without NEW).
    """
    out_dir = Path(out_dir)
    labels = class_names(table)
    if color_by is None:  # colour by what varies: language when there are several, else model
        color_by = "lang" if table["lang"].nunique() > 1 and table["model"].nunique() == 1 else "model"
    questions = table["question"].astype(str).to_numpy(dtype=object)
    vmap = fit_map(vectors, labels, seed=seed, questions=questions)
    title = map_title(table, encoder_name, source)
    new_coords = nearest = None
    new_labels = None
    if new_table is not None and new_vectors is not None:
        new_coords = vmap.transform(new_vectors)
        new_labels = class_names(new_table)
        frames = []
        for name in sorted(set(new_labels.tolist())):
            mask = new_labels == name
            near = nearest_classes(new_vectors[mask], vectors, labels, k=5, groups=table["question"].to_numpy(),
                                   new_groups=new_table["question"].to_numpy()[mask])
            near.insert(0, "new", name)
            frames.append(near)
        nearest = pd.concat(frames, ignore_index=True)
        nearest.to_csv(out_dir / "nearest.csv", index=False)
        title += f" · + {len(new_table):,} new QAs projected"
    subtitle = vmap.describe()
    map_png(vmap, out_dir / "map.png", title, color_by=color_by, new_coords=new_coords, new_labels=new_labels,
            subtitle=subtitle)
    fig = map_figure(vmap, table, title, color_by=color_by, new_coords=new_coords, new_table=new_table,
                     subtitle=subtitle)
    write_map_html(fig, out_dir / "map.html", title=title)
    coords = pd.DataFrame({"class": labels, "x": vmap.coords[:, 0], "y": vmap.coords[:, 1],
                           "question_fold": question_folds(questions), "question": questions})
    if new_coords is not None:
        coords = pd.concat([coords, pd.DataFrame({"class": [f"new: {c}" for c in new_labels],
                                                   "x": new_coords[:, 0], "y": new_coords[:, 1],
                                                   "question_fold": -1,
                                                   "question": new_table["question"].astype(str).to_numpy()})],
                           ignore_index=True)
    coords.to_csv(out_dir / "map_coords.csv", index=False)
    return vmap, fig, nearest
