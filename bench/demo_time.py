"""``univar demo`` wall time, as a user meets it right after installation: a fresh process and an empty
embedding cache, on this machine's cores. Figure: wall seconds / the 300 s budget (target < 1).

The per-step times the demo records (summary.json) are printed too, so a regression names its step.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from common import report

BUDGET_S = 300.0


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "demo")
        env = {**os.environ, "UNIVAR_CACHE_DIR": os.path.join(tmp, "cache"), "UNIVAR_PROGRESS": "0"}
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "univar", "demo", "--out", out], env=env,
                              capture_output=True, text=True, check=False)
        wall = time.perf_counter() - start
        if done.returncode != 0:
            sys.stderr.write(done.stdout[-2000:] + done.stderr[-4000:])
            raise SystemExit(f"univar demo failed with exit code {done.returncode}")
        with open(os.path.join(out, "summary.json")) as fh:
            summary = json.load(fh)
    steps = ", ".join(f"{k} {v:.0f}s" for k, v in summary["seconds"].items())
    print(f"univar demo: {wall:.0f}s wall on {os.cpu_count()} cores, encoder {summary['primary']} "
          f"({summary['n_qas']} QAs); steps: {steps}")
    report("demo_time", [{"figure": f"univar demo wall time / {BUDGET_S:.0f} s budget (cold cache)",
                          "value": wall, "baseline": BUDGET_S, "ratio": wall / BUDGET_S, "target": "< 1",
                          "ok": wall < BUDGET_S}])


if __name__ == "__main__":
    main()
