"""``univar demo``: the main job, offline on bundled data, into one report.html."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from univar.commands import app, out


@app.command()
def demo(out_dir: Annotated[Path, typer.Option("--out", help="Where results go.")] = Path("demo-out"),
         limit: Annotated[int, typer.Option(help="Questions sampled from bundled ValueBench (0: all).")] = 0) -> None:
    # one line: the command list of --help would show a line break in the docstring
    """The main job, offline on bundled data: embed, value identification vs minilm, value map, LLM comparison, one report.html."""  # noqa: E501
    from univar.demo import run_demo

    run_demo(out_dir, per_class=limit or None, console=out)
