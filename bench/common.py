"""Helpers shared by the benchmarks: timing, and one result format (each figure a ratio to a baseline
measured in the same run), written to bench/results/<name>.json and printed as a table."""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from univar.files import write_json

RESULTS = Path(__file__).resolve().parent / "results"


def timed(fn: Callable[[], object], repeat: int = 3) -> float:
    """Median wall time of ``repeat`` calls (the median resists a noisy neighbour on a shared CPU)."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def report(name: str, rows: list[dict], extra: dict | None = None) -> None:
    """``rows``: dicts with figure, value, baseline, ratio, target (text) and ok (bool or None); ``extra``:
    more top-level keys for the JSON (e.g. the outputs the docs quote)."""
    RESULTS.mkdir(exist_ok=True)
    payload = {"benchmark": name, "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
               "when": time.strftime("%Y-%m-%dT%H:%M:%S"), "rows": rows, **(extra or {})}
    write_json(RESULTS / f"{name}.json", payload)
    width = max(len(r["figure"]) for r in rows)
    print(f"\n== {name} ==")
    for r in rows:
        verdict = {True: "ok", False: "MISSED", None: ""}[r.get("ok")]
        print(f"  {r['figure']:<{width}}  ratio {r['ratio']:8.3f}   target {r.get('target', '-'):<14} {verdict}")


def parse_overrides(items: list[str]) -> dict:
    """``--set key=value`` items -> recipe (TrainConfig) overrides; values read as JSON, else kept as text."""
    out = {}
    for item in items:
        key, _, raw = item.partition("=")
        try:
            out[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            out[key.strip()] = raw
    return out


def load_details(path: Path, overrides: dict, recipe: dict) -> dict:
    """A benchmark's earlier details, kept only when they were measured with the same ``overrides`` (a
    ``--sources`` rerun merges into them); ``recipe`` and ``overrides`` recorded."""
    details = json.loads(path.read_text()) if path.exists() else {}
    if details.get("overrides", {}) != overrides:  # other settings: earlier sources' scores do not belong
        details = {}
    details.update({"split": "question (fold 0)", "recipe": {**recipe, **overrides}})
    if overrides:
        details["overrides"] = overrides
    return details


def control_model(model: str, overrides: dict, tmp: Path, train: Callable[..., object]) -> str:
    """The model the MT-bench control scores: ``model``, or for a lever (``overrides`` with the shipped model
    asked for) that lever trained by ``train(out, **overrides)`` on all the shipped data, as ``make model``."""
    if not overrides or model != "univar":
        return model
    out = tmp / "all"
    train(out, **overrides)
    return str(out)
