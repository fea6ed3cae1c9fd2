"""Core commands: embed, evaluate value-id, evaluate stance, demo, datasets."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape

from univar.commands import (
    DataArg,
    DeviceOpt,
    EncoderOpt,
    LogOpt,
    MapOpt,
    StanceOpt,
    app,
    err,
    evaluate_app,
    load_data,
    out,
    output_file,
)
from univar.data import BUNDLED, STANCE_LABELS
from univar.encoders import EmbedStats, use_device
from univar.encoders import embed as run_embed
from univar.errors import SettingError, UnivarError
from univar.evaluate import ValueIdentification, results_table
from univar.progress import event, log_to
from univar.qa import qa_texts
from univar.stance import StanceResult, StanceValidity
from univar.tables import NAME, Col, FitTable


@app.command()
def embed(data: DataArg, encoder: EncoderOpt = "univar",
          out_file: Annotated[Path, typer.Option("--out", help="Output: .parquet (QAs + embedding column) or "
                                                               ".npy (matrix).")] = Path("embeddings.parquet"),
          map_: MapOpt = None, device: DeviceOpt = "auto", log: LogOpt = None) -> None:
    """Embed every QA of DATA with an encoder (cached on disk)."""
    with log_to(log):
        _embed(data, encoder, out_file, map_, device)


def _embed(data: list[str], encoder: str, out_file: Path, map_: list[str] | None, device: str) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from univar.registry import get_encoder  # loads torch: see univar.commands

    suffix = out_file.suffix.lower()
    if suffix not in (".parquet", ".npy"):
        raise UnivarError(f"--out must end in .parquet or .npy, got {out_file.name}")
    use_device(device)
    start = time.perf_counter()
    table = load_data(data, map_)
    enc = get_encoder(encoder)
    stats = EmbedStats()
    with output_file(out_file) as tmp:  # renamed over --out only when complete
        if suffix == ".npy":  # streamed to disk window by window (a memory map)
            vectors = run_embed(qa_texts(table), enc, stats=stats, out=tmp)
            del vectors
        else:
            vectors = run_embed(qa_texts(table), enc, stats=stats)
            arrow = pa.Table.from_pandas(table.reset_index(drop=True), preserve_index=False)
            flat = pa.array(vectors.reshape(-1), type=pa.float32())
            arrow = arrow.append_column("embedding", pa.FixedSizeListArray.from_arrays(flat, vectors.shape[1]))
            arrow = arrow.replace_schema_metadata({**(arrow.schema.metadata or {}),
                                                   b"univar.encoder": enc.id.encode(),
                                                   b"univar.encoder_name": enc.name.encode()})
            pq.write_table(arrow, tmp, compression="zstd")
    err.print(f"{stats.texts} QAs ({stats.unique} unique): {stats.embedded} embedded, {stats.cached} from cache "
              f"-> {out_file} ({stats.texts} x {enc.dim})")
    event("embed_end", encoder=enc.name, qas=stats.texts, unique=stats.unique, embedded=stats.embedded,
          cached=stats.cached, dim=enc.dim, out=str(out_file), seconds=round(time.perf_counter() - start, 3))


@evaluate_app.command("value-id")
def value_id(
    data: DataArg,
    encoder: EncoderOpt = "univar",
    split: Annotated[str, typer.Option(help="random (per class, the paper's) or question (question-disjoint, "
                                            "fold 0 of 5).")] = "random",
    test_fraction: Annotated[float, typer.Option("--test-fraction",
                                                 help="Test share per class (random split).")] = 0.2,
    k: Annotated[int, typer.Option("--k", help="Neighbours for k-NN.")] = 50,
    seed: Annotated[int, typer.Option(help="Random seed (split and probe).")] = 0,
    target: Annotated[str, typer.Option(help="class (model$lang), model, or lang.")] = "class",
    json_file: Annotated[Optional[Path], typer.Option("--json", help="Write the scores as JSON.")] = None,
    map_: MapOpt = None,
    device: DeviceOpt = "auto",
    log: LogOpt = None,
) -> None:
    """Which (LLM, language) produced this QA? k-NN and linear probe on per-QA embeddings."""
    from univar.registry import get_encoder  # loads torch: see univar.commands

    try:  # the settings are checked there, once; the message names the flag here (--split must be one of ...)
        scorer = ValueIdentification(split=split, k=k, target=target, test_fraction=test_fraction, seed=seed)
    except SettingError as exc:
        raise UnivarError(exc.as_flag()) from None
    use_device(device)
    with log_to(log):
        table = load_data(data, map_)
        enc = get_encoder(encoder)
        stats = EmbedStats()
        start = time.perf_counter()
        result = scorer.evaluate(enc, table, progress=True, stats=stats)
        _tell(result, results_table([result], title=" + ".join(data)), "value_id", stats, start, json_file)


@evaluate_app.command("stance")
def stance(
    data: DataArg,
    encoder: EncoderOpt = "univar",
    json_file: Annotated[Optional[Path], typer.Option("--json", help="Write the scores as JSON.")] = None,
    stance_col: StanceOpt = None,
    n_boot: Annotated[int, typer.Option("--n-boot", help="Question resamples for the 95% intervals.")] = 1000,
    seed: Annotated[int, typer.Option(help="Random seed (resamples and probe).")] = 0,
    map_: MapOpt = None,
    device: DeviceOpt = "auto",
    log: LogOpt = None,
) -> None:
    """Does the space see the position an answer takes? Within-question stance AUC and a leave-one-LLM-out probe."""
    from univar.registry import get_encoder  # loads torch: see univar.commands

    try:
        scorer = StanceValidity(n_boot=n_boot, seed=seed)
    except SettingError as exc:
        raise UnivarError(exc.as_flag()) from None
    use_device(device)
    with log_to(log):
        table = load_data(data, map_, stance_col)
        StanceValidity.labelled_rows(table)  # refuse unlabelled data before loading an encoder
        enc = get_encoder(encoder)
        stats = EmbedStats()
        start = time.perf_counter()
        result = scorer.evaluate(enc, table, progress=True, stats=stats)
        _tell(result, stance_table([result], title=" + ".join(data)), "stance", stats, start, json_file)


def _tell(result, table, name: str, stats: EmbedStats, start: float, json_file: Path | None) -> None:
    """What an evaluate command says of its result: each warning on one line (a log reader greps for them), the
    table, the embedding counts, the ``name`` event of ``--log``, and ``--json``."""
    for warning in result.warnings:
        err.print(f"warning: {warning}", markup=False, highlight=False, soft_wrap=True)
        event("warning", message=warning)
    out.print(table)
    err.print(f"{stats.embedded} QAs embedded, {stats.cached} from cache; {time.perf_counter() - start:.1f}s")
    event(name, **result.to_dict(), embedded=stats.embedded, cached=stats.cached,
          seconds=round(time.perf_counter() - start, 3))
    if json_file:
        with output_file(json_file) as tmp:
            tmp.write_text(json.dumps(result.to_dict(), indent=2) + "\n")


def stance_table(results: list[StanceResult], title: str = "stance validity") -> FitTable:
    """A rich table: one row per encoder, each measure with its interval (0.5 / chance: the stance is invisible).

    Laid out for the console's width (univar.tables): the encoder's name stays whole; where four columns do not
    fit, the cross-LLM AUC goes first."""
    first = results[0]
    table = FitTable(Col("encoder", NAME), Col("stance AUC"), Col("cross-LLM AUC", drop=1), Col("probe bal. acc"),
                     title=f"{escape(title)} · {first.n_questions} questions with 2+ labels · {first.n_pairs} pairs · "
                           f"labels {escape(', '.join(first.labels))} · probe chance {first.probe_chance:.3f}",
                     caption=f"\\[low, high]: {int(100 * first.level)}% interval resampling questions; 0.5 (AUC) "
                             "and the probe's chance mean the space does not see the position")

    def cell(v) -> str:
        if v.value is None:
            return "-"
        return f"{v.value:.3f}" + ("" if v.low is None else f"\n[{v.low:.3f}, {v.high:.3f}]")

    for r in results:
        table.add_row(escape(r.encoder), cell(r.stance_auc), cell(r.stance_auc_cross_llm), cell(r.probe_balanced_acc))
    return table


@app.command()
def demo(out_dir: Annotated[Path, typer.Option("--out", help="Where results go.")] = Path("demo-out"),
         limit: Annotated[int, typer.Option(help="Questions sampled from bundled ValueBench (0: all).")] = 0) -> None:
    # one line: the command list of --help would show a line break in the docstring
    """The main job, offline on bundled data: embed, value identification vs minilm, value map, LLM comparison, one report.html."""  # noqa: E501
    from univar.demo import run_demo

    run_demo(out_dir, per_class=limit or None, console=out)


@app.command("datasets")
def datasets() -> None:
    """List the bundled datasets (use them as bundled:<name>) and which carry stance labels."""
    for name, (_, about) in sorted(BUNDLED.items()):
        out.print(f"[bold]bundled:{name}[/bold]  {about}", markup=True, highlight=False)
        if name in STANCE_LABELS:
            out.print(f"    stance labels: {STANCE_LABELS[name]}", markup=False, highlight=False)


