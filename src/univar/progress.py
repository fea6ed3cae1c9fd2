"""One progress bar style for every long-running stage (rich, on stderr so stdout stays parseable)."""

from __future__ import annotations

import os
from contextlib import contextmanager
from collections.abc import Iterator

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)

stderr = Console(stderr=True)


def enabled() -> bool:
    return os.environ.get("UNIVAR_PROGRESS", "1") != "0"


@contextmanager
def bar(total: int, description: str, unit: str = "") -> Iterator[callable]:
    """Yield ``advance(n)``; shows count, rate and time left while work goes on."""
    if not enabled() or total <= 0:
        yield lambda n=1: None
        return
    columns = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TaskProgressColumn(),
               TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn()]
    with Progress(*columns, console=stderr, transient=False) as progress:
        task = progress.add_task(description, total=total, rate="")

        def advance(n: int = 1) -> None:
            progress.advance(task, n)
            speed = progress.tasks[0].speed
            if speed:
                progress.update(task, rate=f"{speed:,.1f} {unit}/s" if unit else f"{speed:,.1f}/s")

        yield advance
