"""A user's first hour, timed: a fresh clone, an empty pip cache and an empty embedding cache, on this machine.

Steps, each a ``make`` target run in a ``git clone`` of this repository's HEAD (``../shared`` linked beside it,
as CI has it): ``make install``, ``make demo`` (empty embedding cache), ``make demo`` again (warm cache),
``make install-dev``, ``make test-fast``, ``make install-elicit`` and ``make test`` (everything installed, so its
wall time is the suite's). Writes bench/results/fresh_clone.json: seconds per step, the ``.venv`` size after each
install profile, the pytest summary counts, the CPU that other processes used while it ran (a figure measured
under load says so in the README), and the headline figure: a fresh clone's ``make test`` (every install plus
the suite) against the 15-minute budget. README's install table is rendered from it (scripts/sync_docs.py).

Not run by ``make bench`` (run_all.py skips it): it takes about half an hour and measures the committed HEAD.

    python bench/fresh_clone.py             # the whole sequence
    python bench/fresh_clone.py --keep DIR  # clone into DIR and leave it there
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))
from common import report  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BUDGET_S = 15 * 60.0  # issue 22: `make test` from a fresh clone with an empty pip cache, 2 cores
STEPS = ("install", "demo", "demo-warm", "install-dev", "test-fast", "install-elicit", "test")
SUMMARY = re.compile(r"=+ (.*?) in ([\d.]+)s")


def du(path: Path) -> int:
    """Bytes on disk under ``path`` (``du -sb``)."""
    return int(subprocess.run(["du", "-sb", str(path)], capture_output=True, text=True, check=True).stdout.split()[0])


def pytest_counts(output: str) -> dict:
    """``{"passed": 472, "skipped": 4, ...}`` from pytest's last summary line."""
    found = SUMMARY.findall(output)
    if not found:
        return {}
    return {kind: int(n) for n, kind in re.findall(r"(\d+) (\w+)", found[-1][0])}


def run_step(step: str, clone: Path, env: dict, log: Path) -> tuple[float, str]:
    target = "demo" if step == "demo-warm" else step
    start = time.perf_counter()
    done = subprocess.run(["make", target], cwd=clone, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    log.write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        sys.stderr.write((done.stdout + done.stderr)[-4000:])
        raise SystemExit(f"make {target} failed with exit code {done.returncode} (log: {log})")
    print(f"make {target}: {wall:.0f} s", flush=True)
    return wall, done.stdout


def busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy since boot (every core; /proc/stat, Linux)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def own_seconds() -> float:
    """CPU seconds used by this bench's finished children and everything they waited for (make, pip, pytest)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def sequence(clone: Path, work: Path) -> dict:
    """Every step in order, in the clone; the timings, sizes, pytest counts and the machine's CPU use.

    A load average cannot tell the bench's own work from another's (``make test`` alone keeps both cores busy),
    so outside load is measured as what it is: the machine's busy CPU time during the run less this bench's
    children's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHONPATH"))}
    env.update(PIP_CACHE_DIR=str(work / "pip-cache"), UNIVAR_CACHE_DIR=str(work / "univar-cache"), UNIVAR_PROGRESS="0")
    times, sizes, counts, load = {}, {}, {}, {"before": os.getloadavg()[0]}
    start, busy, own = time.perf_counter(), busy_seconds(), own_seconds()
    for step in STEPS:
        times[step], out = run_step(step, clone, env, work / f"{step}.log")
        if step.startswith("install"):
            sizes[step] = du(clone / ".venv")
        if step.startswith("test"):
            counts[step] = pytest_counts(out)
    load["after"] = os.getloadavg()[0]
    cpu = {"wall": time.perf_counter() - start, "busy": busy_seconds() - busy, "own": own_seconds() - own}
    return {"times": times, "sizes": sizes, "counts": counts, "load": load, "cpu": cpu}


OUTSIDE_LOAD = 0.25  # cores used by other processes on average, above which a run is said to be under load


def rows_from(m: dict) -> list[dict]:
    t, cpu = m["times"], m["cpu"]
    others = max(0.0, cpu["busy"] - cpu["own"]) / cpu["wall"]
    fresh_test = t["install"] + t["install-dev"] + t["install-elicit"] + t["test"]
    rows = [{"figure": "fresh clone make test (every install + the suite) / 15 min budget", "value": fresh_test,
             "baseline": BUDGET_S, "ratio": fresh_test / BUDGET_S, "target": "< 1", "ok": fresh_test < BUDGET_S}]
    installs = t["install"] + t["install-dev"] + t["install-elicit"]
    rows.append({"figure": "make demo from a fresh clone (make install + make demo): wall seconds",
                 "value": t["install"] + t["demo"], "baseline": 1.0, "ratio": t["install"] + t["demo"], "target": "",
                 "ok": None})
    rows.append({"figure": "every install make test needs (install, install-dev, install-elicit): wall seconds",
                 "value": installs, "baseline": 1.0, "ratio": installs, "target": "", "ok": None})
    for step in STEPS:
        rows.append({"figure": f"make {step}: wall seconds", "value": t[step], "baseline": 1.0, "ratio": t[step],
                     "target": "", "ok": None})
    for step, size in m["sizes"].items():
        rows.append({"figure": f".venv bytes after make {step}", "value": size, "baseline": 1.0, "ratio": size,
                     "target": "", "ok": None})
    for step, counts in m["counts"].items():
        for kind, n in counts.items():
            rows.append({"figure": f"make {step}: {kind}", "value": n, "baseline": 1.0, "ratio": n, "target": "",
                         "ok": None})
    rows.append({"figure": "cores used by other processes during the run (busy CPU less the bench's own / wall)",
                 "value": others, "baseline": 1.0, "ratio": others, "target": "", "ok": None,
                 "under_load": "under load" if others > OUTSIDE_LOAD else "on an otherwise idle machine"})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, default=None, help="clone into this directory and keep it")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="univar-fresh-"))
    work.mkdir(parents=True, exist_ok=True)
    clone = work / "univar"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    if (ROOT.parent / "shared").exists() and not (work / "shared").exists():
        (work / "shared").symlink_to(ROOT.parent / "shared")  # ../shared, as CI has it
    try:
        measured = sequence(clone, work)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
    report("fresh_clone", rows_from(measured), {"commit": head.strip(), **measured})
    return 0


if __name__ == "__main__":
    sys.exit(main())
