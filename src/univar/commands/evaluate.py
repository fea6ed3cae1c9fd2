"""``univar evaluate value-id`` (who wrote it) and ``univar evaluate stance`` (what position it takes)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from univar.commands import (
    DataArg,
    DeviceOpt,
    EncoderOpt,
    LogOpt,
    MapOpt,
    StanceOpt,
    err,
    evaluate_app,
    load_data,
    out,
    output_file,
)
from univar.commands.tables import results_table, stance_table
from univar.device import resolve
from univar.encoders.embed import EmbedStats
from univar.evaluate import StanceValidity, ValueIdentification
from univar.progress import event, log_to


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

    # the settings are checked there, once; univar.cli words a SettingError with the flag (--split must be ...)
    scorer = ValueIdentification(split=split, k=k, target=target, test_fraction=test_fraction, seed=seed)
    resolve(device)
    with log_to(log):
        table = load_data(data, map_)
        enc = get_encoder(encoder, device)
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

    scorer = StanceValidity(n_boot=n_boot, seed=seed)
    resolve(device)
    with log_to(log):
        table = load_data(data, map_, stance_col)
        StanceValidity.labelled_rows(table)  # refuse unlabelled data before loading an encoder
        enc = get_encoder(encoder, device)
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
