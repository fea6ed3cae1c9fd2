"""Helpers shared by the benchmarks: timing, and one result format (each figure a ratio to a baseline
measured in the same run), written to bench/results/<name>.json and printed as a table."""

from __future__ import annotations

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
