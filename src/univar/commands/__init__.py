"""Shared pieces of the command line: the typer app, its sub-apps, consoles and common options.

Each command (or command group) registers itself on ``app`` from its own module in this package (``COMMANDS``, in
the order ``--help`` lists them); ``univar.cli`` imports them all and owns error handling.

The command modules import univar's modules at the top, except ``univar.model``, ``univar.registry`` and
``univar.demo``: those load torch (a second or more), so the commands that need them import them inside the
function, and ``univar --help``, ``datasets``, ``elicit`` and ``translate`` start without torch
(tests/docs/test_imports.py holds both rules).
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from univar.encoders.embed import EmbedStats
from univar.encoders.embed import embed as run_embed  # `embed` here is the command's module, univar.commands.embed
from univar.files import atomic_path, temporary_of
from univar.qa import parse_mapping, qa_texts, read_many

COMMANDS = ("embed", "evaluate", "demo", "datasets", "train", "elicit", "maps", "compare", "explain")

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Measure the human values that LLMs express, as high-dimensional embeddings (UniVaR).")
evaluate_app = typer.Typer(no_args_is_help=True,
                           help="Evaluate encoders: value identification (who wrote it) and stance validity (what "
                                "position it takes).")
app.add_typer(evaluate_app, name="evaluate")

out = Console()  # results on stdout
err = Console(stderr=True)  # progress, notes and errors on stderr

DataArg = Annotated[list[str], typer.Argument(help="QA files (CSV, JSONL, Parquet) or bundled:<name>.",
                                              show_default=False)]
MapOpt = Annotated[Optional[list[str]], typer.Option("--map",
                                                     help="Take another schema: NEW=OLD, e.g. answer=completion.")]
StanceOpt = Annotated[Optional[str], typer.Option("--stance", help="The column of position labels (agree / "
                                                                 "disagree, refuse / comply, ...), if not 'stance'; "
                                                                 "the same as --map stance=COL.")]
EncoderOpt = Annotated[str, typer.Option("--encoder", "-e", help="univar, minilm, minilm-int8, use-multilingual, "
                                                                 "e5-small, tfidf, or a model directory.")]
DeviceOpt = Annotated[str, typer.Option("--device", help="auto (a GPU when present), cpu, cuda or cuda:N; for the "
                                                         "torch models (minilm, univar, model folders).")]
LogOpt = Annotated[Optional[Path], typer.Option("--log", help="Also write progress and results as JSON lines to this "
                                                              "file (appended).")]
OutDir = Annotated[Path, typer.Option("--out", help="Output folder.")]
SeedOpt = Annotated[int, typer.Option(help="Random seed (UMAP, bootstrap, subsamples).")]


def flag(*names: str, help: str):
    """A boolean option that ``--help`` shows as a plain flag; typer would print a ``<bool>`` value after it,
    as if ``--verbose true`` were how it is used."""
    return typer.Option(*names, help=help, metavar="")


def load_data(data: list[str], mapping: list[str] | None, stance: str | None = None):
    """Read and concatenate the DATA arguments, applying ``--map`` (and ``--stance COL``, one more mapping)."""
    return read_many(data, parse_mapping([*(mapping or ()), *([f"stance={stance}"] if stance else ())]))


def embed_data(table, encoder: str):
    """The chosen encoder and the vectors of ``table``'s QAs (map, compare, explain), with one line of counts."""
    from univar.registry import get_encoder  # loads torch: see the module docstring

    enc = get_encoder(encoder)
    stats = EmbedStats()
    vectors = run_embed(qa_texts(table), enc, stats=stats)
    err.print(f"{encoder}: {stats.texts} QAs, {stats.embedded} embedded, {stats.cached} from cache")
    return enc, vectors


@contextmanager
def output_file(path: Path) -> Iterator[Path]:
    """Write ``path`` through ``<path>.tmp``, renamed over it only when the block succeeds.

    On any failure the temporary file is removed, so an earlier ``path`` stays as it was; an ``OSError``
    that names no file (disk full, file too large) gets this one, so the ``error:`` line says which file.
    """
    tmp = temporary_of(path)  # errors naming the temporary are about ``path``
    try:
        with atomic_path(path) as tmp:
            yield tmp
    except OSError as exc:
        if not exc.filename:
            reason = exc.strerror or str(exc).splitlines()[0]
            raise OSError(exc.errno or errno.EIO, f"cannot write the output ({reason})", str(path)) from None
        if exc.filename == str(tmp):
            raise OSError(exc.errno, exc.strerror, str(path)) from None
        raise


_run_started = 0.0  # when the command now running began (mark_run_start); 0: every file is this run's


def mark_run_start() -> None:
    """Called as a command begins: files modified from now on are what it wrote (see :func:`files_written`)."""
    global _run_started
    _run_started = time.time()


def files_written(folder: Path) -> list[str]:
    """The files under ``folder`` that the running command created or rewrote, as paths relative to it.

    Why from the disk: a list typed beside the writers drifts (``compare`` named 3 of the 6 files it wrote).
    A file's time comes from the filesystem's clock (a file server's; the kernel's, a tick coarse), not
    ``time.time()``; a probe file written now tells how far apart they are, so the start is read on its clock.
    """
    if not folder.is_dir():
        return []
    skew = 0.0
    probe = folder / f".univar-clock-{os.getpid()}"
    with suppress(OSError):
        now = time.time()
        probe.touch()
        skew = probe.stat().st_mtime - now
        probe.unlink()
    since = _run_started + skew - 0.05 if _run_started else 0.0
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                  if p.is_file() and p != probe and not p.name.endswith(".tmp") and p.stat().st_mtime >= since)


def written(out_dir: Path) -> str:
    """``<out_dir>: a.png, b.csv``: every file this run wrote there, read from the disk so the list cannot drift."""
    return f"{out_dir}: {', '.join(files_written(out_dir)) or 'nothing'}"
