"""The ``univar`` command line: one thin command per stage; the work is done by the library.

Bad input ends with one ``error: ...`` line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from univar.errors import UnivarError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Measure the human values that LLMs express, as high-dimensional embeddings (UniVaR).")
evaluate_app = typer.Typer(no_args_is_help=True, help="Evaluate encoders (value identification).")
app.add_typer(evaluate_app, name="evaluate")

out = Console()  # results on stdout
err = Console(stderr=True)

DataArg = Annotated[list[str], typer.Argument(help="QA files (CSV, JSONL, Parquet) or bundled:<name>.", show_default=False)]
MapOpt = Annotated[Optional[list[str]], typer.Option("--map", help="Take another schema: NEW=OLD, e.g. answer=completion.")]
EncoderOpt = Annotated[str, typer.Option("--encoder", "-e", help="univar, minilm, minilm-int8, use-multilingual, e5-small, tfidf, or a model directory.")]


def _load(data: list[str], mapping: list[str] | None):
    from univar.qa import parse_mapping, read_many

    return read_many(data, parse_mapping(mapping))


@app.command()
def embed(data: DataArg, encoder: EncoderOpt = "univar", out_file: Annotated[Path, typer.Option("--out", help="Output: .parquet (QAs + embedding column) or .npy (matrix).")] = Path("embeddings.parquet"),
          map_: MapOpt = None) -> None:
    """Embed every QA of DATA with an encoder (cached on disk)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from univar.encoders import EmbedStats, embed as run_embed, get_encoder
    from univar.qa import qa_texts

    suffix = out_file.suffix.lower()
    if suffix not in (".parquet", ".npy"):
        raise UnivarError(f"--out must end in .parquet or .npy, got {out_file.name}")
    table = _load(data, map_)
    enc = get_encoder(encoder)
    stats = EmbedStats()
    vectors = run_embed(qa_texts(table), enc, stats=stats)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_file.with_name(out_file.name + ".tmp")
    if suffix == ".npy":
        with open(tmp, "wb") as fh:
            np.save(fh, vectors)
    else:
        arrow = pa.Table.from_pandas(table.reset_index(drop=True), preserve_index=False)
        flat = pa.array(vectors.reshape(-1), type=pa.float32())
        arrow = arrow.append_column("embedding", pa.FixedSizeListArray.from_arrays(flat, vectors.shape[1]))
        arrow = arrow.replace_schema_metadata({**(arrow.schema.metadata or {}),
                                               b"univar.encoder": enc.id.encode(), b"univar.encoder_name": enc.name.encode()})
        pq.write_table(arrow, tmp, compression="zstd")
    os.replace(tmp, out_file)
    err.print(f"{stats.texts} QAs ({stats.unique} unique): {stats.embedded} embedded, {stats.cached} from cache "
              f"-> {out_file} ({vectors.shape[0]} x {vectors.shape[1]})")


@evaluate_app.command("value-id")
def value_id(
    data: DataArg,
    encoder: EncoderOpt = "univar",
    split: Annotated[str, typer.Option(help="random (per class, the paper's) or question (question-disjoint, fold 0 of 5).")] = "random",
    test_fraction: Annotated[float, typer.Option("--test-fraction", help="Test share per class (random split).")] = 0.2,
    k: Annotated[int, typer.Option("--k", help="Neighbours for k-NN.")] = 50,
    seed: Annotated[int, typer.Option(help="Random seed (split and probe).")] = 0,
    target: Annotated[str, typer.Option(help="class (model$lang), model, or lang.")] = "class",
    json_file: Annotated[Optional[Path], typer.Option("--json", help="Write the scores as JSON.")] = None,
    map_: MapOpt = None,
) -> None:
    """Which (LLM, language) produced this QA? k-NN and linear probe on per-QA embeddings."""
    from univar.encoders import EmbedStats, get_encoder
    from univar.evaluate import SPLITS, TARGETS, results_table, value_identification

    if split not in SPLITS:
        raise UnivarError(f"--split must be one of {', '.join(SPLITS)}, got {split!r}")
    if target not in TARGETS:
        raise UnivarError(f"--target must be one of {', '.join(TARGETS)}, got {target!r}")
    if k < 1:
        raise UnivarError(f"--k must be at least 1, got {k}")
    table = _load(data, map_)
    enc = get_encoder(encoder)
    stats = EmbedStats()
    start = time.perf_counter()
    result = value_identification(table, enc, split=split, test_fraction=test_fraction, k=k, seed=seed,
                                  target=target, stats=stats)
    out.print(results_table([result], title=" + ".join(data)))
    err.print(f"{stats.embedded} QAs embedded, {stats.cached} from cache; {time.perf_counter() - start:.1f}s")
    if json_file:
        json_file.parent.mkdir(parents=True, exist_ok=True)
        json_file.write_text(json.dumps(result.to_json(), indent=2) + "\n")


@app.command()
def demo(out_dir: Annotated[Path, typer.Option("--out", help="Where results go.")] = Path("demo-out"),
         limit: Annotated[int, typer.Option(help="QAs per class (0: all).")] = 0) -> None:
    """The main job, offline on bundled data: value identification with every available encoder."""
    from univar.demo import run_demo

    run_demo(out_dir, per_class=limit or None, console=out)


@app.command("datasets")
def datasets() -> None:
    """List the bundled datasets (use them as bundled:<name>)."""
    from univar.data import BUNDLED

    for name, (_, about) in sorted(BUNDLED.items()):
        out.print(f"[bold]bundled:{name}[/bold]  {about}")


def _configure_logging(verbose: bool) -> None:
    from rich.logging import RichHandler

    handler = RichHandler(console=err, show_time=False, show_path=False, markup=False)
    logger = logging.getLogger("univar")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO if verbose else logging.WARNING)
    logger.propagate = False


@app.callback()
def _root(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Say more about what is done.")] = False) -> None:
    _configure_logging(verbose)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the app; turn user errors into one ``error:`` line and exit code 2."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    _configure_logging(False)
    try:
        app(args=argv, prog_name="univar", standalone_mode=False)
    except UnivarError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        print("error: aborted", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("error: interrupted; finished work is kept (re-run to resume)", file=sys.stderr)
        return 130
    except Exception as exc:  # click usage errors and the like
        import click

        if isinstance(exc, click.exceptions.ClickException):
            print(f"error: {exc.format_message()}", file=sys.stderr)
            return 2
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
