"""Repeated ``univar evaluate value-id bundled:valuebench --encoder minilm`` (11,928 QAs, the foundation
issue's check): the second run reads every embedding from the cache. Figure: cold time / warm time for the
whole command, process start included (target >= 10x).

What a warm run still pays: Python imports, reading the table, the cache lookups, and the logistic-regression
probe (a few seconds on 2 cores), none of which a cache can remove; on a small sample (a few hundred
questions) those fixed costs dominate and the ratio is lower (8.8x for 400 questions, measured under load).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from common import report  # noqa: E402

DATA = "bundled:valuebench"


def run(env: dict) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "univar", "evaluate", "value-id", DATA, "--encoder", "minilm"],
                   env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "UNIVAR_CACHE_DIR": os.path.join(tmp, "cache"), "UNIVAR_PROGRESS": "0"}
        cold = run(env)
        warm = min(run(env) for _ in range(2))
    print(f"cold {cold:.1f} s, warm {warm:.1f} s", flush=True)
    report("cache_speedup", [{"figure": "evaluate value-id cold / warm (cache)", "value": warm, "baseline": cold,
                              "ratio": cold / warm, "target": ">= 10", "ok": cold / warm >= 10}])


if __name__ == "__main__":
    main()
