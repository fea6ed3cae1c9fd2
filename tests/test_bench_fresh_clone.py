"""bench/fresh_clone.py's arithmetic, on a made-up measurement: the headline figure is every install plus the
suite, and pytest's summary line becomes counts (the README's install table is rendered from these rows)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import fresh_clone  # noqa: E402


def measured(test_seconds: float) -> dict:
    times = {"install": 100.0, "demo": 80.0, "demo-warm": 20.0, "install-dev": 10.0, "test-fast": 150.0,
             "install-elicit": 5.0, "test": test_seconds}
    return {"times": times, "sizes": {"install": 2_400_000_000}, "counts": {"test": {"passed": 7, "skipped": 2}},
            "load": {"before": 0.5, "after": 3.0}, "cpu": {"wall": 1000.0, "busy": 1900.0, "own": 1800.0}}


def by_figure(rows: list[dict]) -> dict:
    return {r["figure"]: r for r in rows}


def test_the_headline_is_every_install_plus_the_suite_against_15_minutes():
    rows = by_figure(fresh_clone.rows_from(measured(600.0)))
    head = rows["fresh clone make test (every install + the suite) / 15 min budget"]
    assert head["value"] == 715.0 and head["ok"] is True and head["ratio"] == 715.0 / 900.0
    assert not by_figure(fresh_clone.rows_from(measured(800.0)))[head["figure"]]["ok"]  # 915 s is over
    assert rows["make demo from a fresh clone (make install + make demo): wall seconds"]["value"] == 180.0
    assert rows["every install make test needs (install, install-dev, install-elicit): wall seconds"]["value"] == 115.0
    assert rows["make test: passed"]["value"] == 7 and rows["make test: skipped"]["value"] == 2
    others = rows["cores used by other processes during the run (busy CPU less the bench's own / wall)"]
    assert others["value"] == 0.1 and others["under_load"] == "on an otherwise idle machine"  # load 3.0 is its own


def test_cpu_used_by_other_processes_is_said_as_load():
    m = measured(600.0)
    m["cpu"] = {"wall": 1000.0, "busy": 1900.0, "own": 1200.0}  # 0.7 of a core was someone else's
    rows = by_figure(fresh_clone.rows_from(m))
    assert rows["cores used by other processes during the run (busy CPU less the bench's own / wall)"][
        "under_load"] == "under load"


def test_the_machine_counters_move_with_work():
    busy, own = fresh_clone.busy_seconds(), fresh_clone.own_seconds()
    fresh_clone.subprocess.run([sys.executable, "-c", "sum(i * i for i in range(3_000_000))"], check=True)
    assert fresh_clone.own_seconds() > own and fresh_clone.busy_seconds() > busy


def test_pytest_counts_read_the_last_summary_line():
    out = ("== 3 passed in 1.0s ==\n...\n"
           "===== 540 passed, 2 skipped, 31 deselected, 11 warnings in 685.86s (0:11:25) =====")
    assert fresh_clone.pytest_counts(out) == {"passed": 540, "skipped": 2, "deselected": 31, "warnings": 11}
    assert fresh_clone.pytest_counts("no summary") == {}
