"""``univar explain``: which values separate two classes most, with examples, and the questions on which they
take different positions where the data has stance labels."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from univar.analysis import explain_pair
from univar.commands import DataArg, EncoderOpt, MapOpt, SeedOpt, StanceOpt, app, embed_data, load_data, out
from univar.errors import UnivarError
from univar.files import write_json
from univar.qa import class_names
from univar.tables import NAME, TEXT, Col, FitTable


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
    enc, vectors = embed_data(table, encoder)
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
