"""Progress of every long-running stage, for a person at a terminal and for a log file alike.

- stderr is a terminal: a rich bar (count, rate, time left); stdout stays parseable.
- stderr is not a terminal (``nohup``, ``> log 2>&1``, a batch scheduler): rich would draw nothing until
  the end, so plain lines take its place: one when a stage starts, then at most one every
  ``UNIVAR_PROGRESS_INTERVAL`` seconds (30 by default), and one when it ends.
- ``--log FILE.jsonl`` (:func:`log_to`): the same progress ticks, plus what commands report with
  :func:`event` (one line per training epoch, say), as JSON lines that a script can follow.
- Work with no counter (fitting UMAP, a bootstrap) goes in :func:`step`: a spinner with the time spent, or
  plain "still running" lines, so a long silent stage never looks like a hang.

``UNIVAR_PROGRESS=0`` silences stderr (the test suite sets it); the JSON log is written either way.
"""

from __future__ import annotations

import json
import math
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

stderr = Console(stderr=True)
_sink: IO[str] | None = None
_sink_lock = threading.Lock()  # a step's heartbeat thread writes events while the main thread does
_at_end: list[Callable[[], None]] | None = None  # while a command runs (command_run): what it tells once, at its end


def enabled() -> bool:
    """Whether progress goes to stderr: ``UNIVAR_PROGRESS=0`` turns bars and plain progress lines off."""
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


@contextmanager
def command_run() -> Iterator[None]:
    """One command: a finding that many of its calls reach (see :func:`at_end`) is told once, when it ends.

    Why: one ``univar evaluate`` embeds through nested calls (chunks, the parts of a joined encoder, QA and
    question texts), and a note told by each call came out four times with partial counts.
    """
    global _at_end
    previous, _at_end = _at_end, []
    try:
        yield
    finally:
        calls, _at_end = _at_end, previous
        for call in calls:
            call()


def at_end(call: Callable[[], None]) -> bool:
    """Have ``call`` run once when the current :func:`command_run` ends; False (nothing held) outside one."""
    if _at_end is None:
        return False
    if call not in _at_end:
        _at_end.append(call)
    return True


def event(kind: str, **fields: object) -> None:
    """One JSON line in the ``--log`` file (nothing without one): ``{"time", "event": kind, **fields}``."""
    if _sink is None:
        return
    record = {"time": time.strftime("%Y-%m-%dT%H:%M:%S"), "event": kind,
              **{k: _plain(v) for k, v in fields.items()}}
    with _sink_lock:
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


def _span(seconds: float) -> str:
    """A duration as a person says it: 0.4s, 12s, 1m30s, 2h05m."""
    if seconds < 10:
        return f"{seconds:.1f}s"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m"


def _heartbeat(stop: threading.Event, every: float, beat: Callable[[], None]) -> threading.Thread:
    """Call ``beat`` every ``every`` seconds from a daemon thread until ``stop`` is set (it never blocks exit)."""
    def run() -> None:
        while not stop.wait(every):
            beat()

    thread = threading.Thread(target=run, name="univar-step-heartbeat", daemon=True)
    thread.start()
    return thread


@contextmanager
def step(description: str) -> Iterator[None]:
    """Show that work with no counter (fitting UMAP, a bootstrap, a Mantel test) is running, and how long it took.

    A bar needs a count; without this a stage that takes minutes after the last bar looks like a hang. On a
    terminal: a spinner with the elapsed time, then ``<description>: done in 12s``. Otherwise: ``<description>
    ...`` at the start, ``<description>: still running, 1m30s`` at most every :func:`interval` seconds, and the
    same end line. ``--log``: ``step_start``, ``step_progress`` and ``step_end`` events (``stage``, ``elapsed_s``;
    ``ok`` and ``error`` at the end). If the block raises, the end line says so and the exception propagates.
    """
    if not enabled() and _sink is None:
        yield
        return
    live = enabled() and stderr.is_terminal
    plain = enabled() and not live
    started = time.monotonic()
    event("step_start", stage=description)
    if plain:
        print(f"{description} ...", file=sys.stderr, flush=True)

    def beat() -> None:
        elapsed = time.monotonic() - started
        event("step_progress", stage=description, elapsed_s=round(elapsed, 3))
        if plain:
            print(f"{description}: still running, {_span(elapsed)}", file=sys.stderr, flush=True)

    stop = threading.Event()
    thread = _heartbeat(stop, max(interval(), 0.01), beat) if plain or _sink is not None else None
    spinner = (Progress(SpinnerColumn(), TextColumn("[bold]{task.description}"), TimeElapsedColumn(),
                        console=stderr, transient=True) if live else None)
    error: BaseException | None = None
    try:
        if spinner is not None:
            with spinner:
                spinner.add_task(description, total=None)
                yield
        else:
            yield
    except BaseException as exc:
        error = exc
        raise
    finally:
        stop.set()
        if thread is not None:
            thread.join()
        _step_end(description, time.monotonic() - started, error, live, plain)


def _step_end(description: str, elapsed: float, error: BaseException | None, live: bool, plain: bool) -> None:
    """The one line (and JSON event) that closes a :func:`step`."""
    event("step_end", stage=description, elapsed_s=round(elapsed, 3), ok=error is None,
          error=None if error is None else type(error).__name__)
    if error is None:
        line = f"{description}: done in {_span(elapsed)}"
    elif isinstance(error, Exception):
        line = f"{description}: failed after {_span(elapsed)} ({type(error).__name__})"
    else:  # Ctrl-C, SystemExit: not the step's fault
        line = f"{description}: interrupted after {_span(elapsed)}"
    if live:
        stderr.print(line, highlight=False, markup=False)
    elif plain:
        print(line, file=sys.stderr, flush=True)
