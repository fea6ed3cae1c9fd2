"""Repeated ``univar evaluate value-id`` on the same data: the second run reads every embedding from the
cache. Figure: cold time / warm time for the whole command (target >= 10x)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from common import report  # noqa: E402


def run(env: dict, data: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "univar", "evaluate", "value-id", data, "--encoder", "minilm"],
                   env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    from univar.demo import sample_questions
    from univar.qa import read_qa, write_qa

    with tempfile.TemporaryDirectory() as tmp:
        data = str(write_qa(sample_questions(read_qa("bundled:valuebench"), 400), os.path.join(tmp, "qa.parquet")))
        env = {**os.environ, "UNIVAR_CACHE_DIR": os.path.join(tmp, "cache"), "UNIVAR_PROGRESS": "0"}
        cold = run(env, data)
        warm = min(run(env, data) for _ in range(2))
    report("cache_speedup", [{"figure": "evaluate value-id cold / warm (cache)", "value": warm, "baseline": cold,
                              "ratio": cold / warm, "target": ">= 10", "ok": cold / warm >= 10}])


if __name__ == "__main__":
    main()
