"""Commands that look at value space: ``map``, ``compare`` and ``explain``."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from univar.analysis import explain_pair, questionnaire_validity
from univar.commands import DataArg, EncoderOpt, MapOpt, StanceOpt, app, err, files_written, load_data, out
from univar.encoders import EmbedStats, embed
from univar.errors import UnivarError
from univar.files import write_json
from univar.progress import step
from univar.qa import qa_texts, read_many
from univar.report import class_names, write_compare_files, write_map_files
from univar.tables import NAME, TEXT, Col, FitTable

OutDir = Annotated[Path, typer.Option("--out", help="Output folder.")]
SeedOpt = Annotated[int, typer.Option(help="Random seed (UMAP, bootstrap, subsamples).")]


def _embed(table, encoder: str):
    from univar.registry import get_encoder  # loads torch: see univar.commands

    enc = get_encoder(encoder)
    stats = EmbedStats()
    vectors = embed(qa_texts(table), enc, stats=stats)
    err.print(f"{encoder}: {stats.texts} QAs, {stats.embedded} embedded, {stats.cached} from cache")
    return enc, vectors


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
    enc, vectors = _embed(table, encoder)
    new_vectors = None
    if new_table is not None:
        new_vectors = embed(qa_texts(new_table), enc)
    out_dir.mkdir(parents=True, exist_ok=True)
    vmap, _, nearest = write_map_files(table, vectors, out_dir, enc.name, " + ".join(data), seed=seed,
                                       color_by=color, new_table=new_table, new_vectors=new_vectors)
    (out if vmap.shows_classes else err).print(("" if vmap.shows_classes else "note: ") + vmap.describe())
    out.print(f"map written to {_written(out_dir)}")
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


@app.command()
def compare(
    data: DataArg,
    encoder: EncoderOpt = "univar",
    out_dir: OutDir = Path("compare-out"),
    bootstrap: Annotated[int, typer.Option(help="Bootstrap replicates for the confidence intervals (0: none).")] = 200,
    neighbours: Annotated[int, typer.Option(help="Nearest classes listed per class.")] = 3,
    seed: SeedOpt = 0,
    map_: MapOpt = None,
) -> None:
    """Distances between classes (cosine of means, energy distance) with bootstrap CIs, nearest neighbours,
    distances.csv + heatmap.png + dendrogram.png; a Mantel test against questionnaire ratings when present."""
    if bootstrap < 0:
        raise UnivarError(f"--bootstrap must be 0 or more, got {bootstrap}")
    if neighbours < 1:
        raise UnivarError(f"--neighbours must be at least 1, got {neighbours}")
    table = load_data(data, map_)
    enc, vectors = _embed(table, encoder)
    labels = class_names(table)
    with step(f"distances between {len(set(labels.tolist()))} classes"
              + (f" with {bootstrap} bootstrap resamples" if bootstrap else "")):
        dist, near = write_compare_files(vectors, labels, out_dir, enc.name, " + ".join(data),
                                         groups=table["question"].to_numpy(), n_boot=bootstrap, seed=seed,
                                         neighbours=neighbours)
    ci_pct = round(100 * dist.ci)
    out.print(f"[bold]nearest classes[/bold] ({enc.name}; cosine distance between class means"
              + (f" [{ci_pct}% bootstrap CI]" if bootstrap else "") + "; energy distance)")
    index = {c: i for i, c in enumerate(dist.classes)}
    for name, group in near.groupby("class", sort=False):
        out.print(escape(name))
        for row in group.itertuples(index=False):
            i, j = index[name], index[row.neighbour]
            ci = f"  [{dist.cosine_lo[i, j]:.4f}, {dist.cosine_hi[i, j]:.4f}]" if bootstrap else ""
            out.print(f"  {row.rank}  {escape(row.neighbour):<28} {row.distance:7.4f}{ci}   "
                      f"energy {dist.energy[i, j]:.4f}", highlight=False)
    if "rating" in table.columns and "value" in table.columns and len(dist.classes) >= 3:
        try:
            validity = questionnaire_validity(table, labels, dist.matrix("cosine"))
        except UnivarError as exc:
            err.print(f"no questionnaire check: {exc}")
        else:
            write_json(out_dir / "mantel.json", validity.to_dict())
            r = validity.result
            out.print(f"questionnaire check (Mantel, {r.n} classes, {validity.n_values} values): r = {r.r:.3f}, "
                      f"p = {r.p:.4f} ({'exact, all' if r.exact else 'random'} {r.permutations} permutations)")
    out.print(f"written to {_written(out_dir)}")


@app.command()
def explain(
    data: DataArg,
    class_a: Annotated[str, typer.Option("--a", help="First class: model$lang, or a model with one language.")],
    class_b: Annotated[str, typer.Option("--b", help="Second class.")],
    encoder: EncoderOpt = "univar",
    top: Annotated[int, typer.Option(help="How many values to show.")] = 5,
    json_file: Annotated[Path | None, typer.Option("--json", help="Write the explanation as JSON.")] = None,
    seed: SeedOpt = 0,
    stance_col: StanceOpt = None,
    map_: MapOpt = None,
) -> None:
    """Which values (the `value` column, else question topics) separate two classes most, with examples; with
    stance labels, the questions on which they take different positions."""
    if top < 1:
        raise UnivarError(f"--top must be at least 1, got {top}")
    table = load_data(data, map_, stance_col)
    enc, vectors = _embed(table, encoder)
    ex = explain_pair(table, vectors, class_names(table), class_a, class_b, top=top, seed=seed)
    out.print(_explain_table(ex, enc.name, top))
    for e in ex.examples:
        out.print(f"\n[bold]{_short(e[ex.grouping])}[/bold]")
        if e.get("lean"):
            out.print(f"  {_short(e['lean'])}")
        out.print(f"  Q: {_short(e['question_a'])}")
        out.print(f"  [cyan]{_short(ex.class_a)}[/cyan]{_rating(e, 'a')}: {_short(e['answer_a'])}")
        if e["question_b"] != e["question_a"]:
            out.print(f"  Q: {_short(e['question_b'])}")
        out.print(f"  [magenta]{_short(ex.class_b)}[/magenta]{_rating(e, 'b')}: {_short(e['answer_b'])}")
        if e.get("rating_difference") == e.get("rating_difference") and "rating_difference" in e:  # not nan
            out.print(f"  rating difference {e['rating_difference']:+.0f}"
                      + (" (reverse-keyed item: agreeing means less of the value)" if e.get("reverse_keyed") else ""))
    if ex.questions is not None:
        out.print(_stance_questions_table(ex, top))
    if json_file:
        write_json(json_file, ex.to_dict())


def _explain_table(ex, encoder: str, top: int) -> FitTable:
    """The ranking (Explanation.table) for the terminal: the two classes are A and B in the headers, named in full
    in the title, so a value and a class name stay whole at 80 columns; the QA counts, then SE and separation
    (score is their difference) are left out where the console is too narrow for them."""
    shown = ex.table(top)
    short = {f"QAs {ex.class_a}": ("QAs\nA", 3), f"QAs {ex.class_b}": ("QAs\nB", 3), "SE": ("SE", 2),
             "separation": ("separation", 1), f"rating {ex.class_a}": ("rating\nA", 0),
             f"rating {ex.class_b}": ("rating\nB", 0)}
    cols = [Col(str(c), NAME if ex.grouping == "value" else TEXT, min_width=24) if c == ex.grouping else
            Col(short.get(c, (str(c), 0))[0], drop=short.get(c, (str(c), 0))[1]) for c in shown.columns]
    t = FitTable(*cols, title=f"what separates A = {escape(ex.class_a)} from B = {escape(ex.class_b)} "
                              f"({escape(encoder)}); ranked by score = separation - SE (separation: squared shift "
                              f"between their mean answers on the {ex.grouping}, paired by question; SE: its "
                              "jackknife standard error)" + ("; ratings: mean keyed, 0-10"
                                                             if "rating_a" in ex.values.columns else ""))
    for row in shown.itertuples(index=False):
        t.add_row(*(_cell(col, value) for col, value in zip(shown.columns, row)))
    return t


def _stance_questions_table(ex, top: int) -> FitTable:
    """The questions the two answer most differently, by their stance labels first (Explanation.questions); the
    label columns are headed A and B (named in the title) so that the question keeps room at 80 columns."""
    q = ex.questions
    n_differ = int(q["differ"].sum())
    t = FitTable(Col("question", TEXT), Col("A", NAME, justify="right"), Col("B", NAME, justify="right"),
                 *([Col("rating\ngap", drop=2)] if "rating_gap" in q.columns else []), Col("distance", drop=1),
                 title=f"questions both A = {escape(ex.class_a)} and B = {escape(ex.class_b)} answered with a stance "
                       f"label: {n_differ} of {len(q)} with different positions; ranked by differing labels, then "
                       + ("rating gap, then " if "rating_gap" in q.columns else "")
                       + "cosine distance of the two answers")
    for row in q.head(top).itertuples(index=False):
        gap = [f"{row.rating_gap:.0f}"] if "rating_gap" in q.columns else []
        t.add_row(_short(row.question, 160), escape(str(row.stance_a)), escape(str(row.stance_b)), *gap,
                  f"{row.distance:.4f}")
    return t


def _cell(column: str, value) -> str:
    """One cell of the explain table: scores to 4 decimals, ratings to 1, counts and names as they are."""
    if isinstance(value, float):
        return f"{value:.1f}" if str(column).startswith("rating") else f"{value:.4f}"
    return escape(str(value))


def _rating(example: dict, side: str) -> str:
    value = example.get(f"rating_{side}")
    return f" (rating {value:.0f}/10)" if isinstance(value, float) and value == value else ""


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return escape(text if len(text) <= limit else text[: limit - 1] + "…")


def _written(out_dir: Path) -> str:
    """``<out_dir>: a.png, b.csv``: every file this run wrote there, read from the disk so the list cannot drift."""
    return f"{out_dir}: {', '.join(files_written(out_dir)) or 'nothing'}"
