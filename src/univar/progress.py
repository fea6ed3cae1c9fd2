"""Progress of every long-running stage, for a person at a terminal and for a log file alike.

- stderr is a terminal: a rich bar (count, rate, time left); stdout stays parseable.
- stderr is not a terminal (``nohup``, ``> log 2>&1``, a batch scheduler): rich would draw nothing until
  the end, so plain lines take its place: one when a stage starts, then at most one every
  ``UNIVAR_PROGRESS_INTERVAL`` seconds (30 by default), and one when it ends.
- ``--log FILE.jsonl`` (:func:`log_to`): the same progress ticks, plus what commands report with
  :func:`event` (one line per training epoch, say), as JSON lines that a script can follow.

``UNIVAR_PROGRESS=0`` silences stderr (the test suite sets it); the JSON log is written either way.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)

stderr = Console(stderr=True)
_sink: IO[str] | None = None


def enabled() -> bool:
    return os.environ.get("UNIVAR_PROGRESS", "1") != "0"


def interval() -> float:
    """Seconds between two plain progress lines (and JSON ticks); 30 unless ``UNIVAR_PROGRESS_INTERVAL`` says."""
    try:
        return max(0.0, float(os.environ.get("UNIVAR_PROGRESS_INTERVAL", "30")))
    except ValueError:
        return 30.0


@contextmanager
def log_to(path: str | Path | None) -> Iterator[None]:
    """Append every :func:`event` to ``path`` as one JSON object per line while the block runs."""
    global _sink
    if path is None:
        yield
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    previous = _sink
    with path.open("a", encoding="utf-8") as fh:
        _sink = fh
        try:
            yield
        finally:
            _sink = previous


def event(kind: str, **fields: object) -> None:
    """One JSON line in the ``--log`` file (nothing without one): ``{"time", "event": kind, **fields}``."""
    if _sink is None:
        return
    record = {"time": time.strftime("%Y-%m-%dT%H:%M:%S"), "event": kind,
              **{k: _plain(v) for k, v in fields.items()}}
    _sink.write(json.dumps(record, ensure_ascii=False) + "\n")
    _sink.flush()  # a follower (tail -f, a scheduler) sees each line as it happens


def _plain(value: object) -> object:
    """JSON has no NaN or infinity; numpy scalars become Python numbers."""
    if hasattr(value, "item") and callable(value.item):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class _Ticker:
    """Counts work and, at most every ``interval()`` seconds, tells the plain line and the JSON log."""

    def __init__(self, total: int, description: str, unit: str, plain: bool):
        self.total, self.description, self.unit, self.plain = total, description, unit, plain
        self.done, self.started = 0, time.monotonic()
        self.last = self.started
        self.every = interval()
        self.emit("start")

    def advance(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if now - self.last >= self.every and self.done < self.total:
            self.last = now
            self.emit("progress")

    def emit(self, kind: str) -> None:
        elapsed = time.monotonic() - self.started
        rate = self.done / elapsed if elapsed > 0 and self.done else None
        eta = (self.total - self.done) / rate if rate else None
        event(f"stage_{kind}" if kind != "progress" else "progress", stage=self.description, done=self.done,
              total=self.total, unit=self.unit, elapsed_s=round(elapsed, 3),
              rate=round(rate, 3) if rate else None, eta_s=round(eta, 1) if eta is not None else None)
        if not self.plain:
            return
        unit = f" {self.unit}" if self.unit else ""
        line = f"{self.description}: {self.done:,}/{self.total:,}{unit} ({100 * self.done / self.total:.0f}%)"
        if kind != "start":
            line += f", {_clock(elapsed)} elapsed"
            if rate:
                line += f", {rate:,.1f}{unit}/s"
            if kind == "progress" and eta is not None:
                line += f", eta {_clock(eta)}"
            if kind == "end":
                line += ", done"
        print(line, file=sys.stderr, flush=True)


@contextmanager
def bar(total: int, description: str, unit: str = "") -> Iterator[Callable[[int], None]]:
    """Yield ``advance(n)``: a bar on a terminal, plain periodic lines otherwise, JSON ticks with ``--log``."""
    if total <= 0 or (not enabled() and _sink is None):
        yield lambda n=1: None
        return
    live = enabled() and stderr.is_terminal
    ticker = _Ticker(total, description, unit, plain=enabled() and not live)
    if not live:
        yield ticker.advance
        ticker.emit("end")
        return
    columns = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TaskProgressColumn(),
               TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn()]
    with Progress(*columns, console=stderr, transient=False) as progress:
        task = progress.add_task(description, total=total, rate="")

        def advance(n: int = 1) -> None:
            ticker.advance(n)
            progress.advance(task, n)
            speed = progress.tasks[0].speed
            if speed:
                progress.update(task, rate=f"{speed:,.1f} {unit}/s" if unit else f"{speed:,.1f}/s")

        yield advance
    ticker.emit("end")
