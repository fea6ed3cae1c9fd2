"""Peak memory of ``univar embed`` and ``univar evaluate value-id`` on 200,000 QAs (bundled data repeated,
each copy with its own ``qid``): target under 3 GB. Figure: peak RSS / 3 GB (lower is better, < 1 passes).
Both use the default encoder (``univar``: the shipped model, 1,792 numbers per QA over the minilm and
USE-multilingual bases). The baseline is the same commands on 1/10 of the rows, to show how memory grows with the
corpus.

Where the 200k peaks went (issue 22; /proc/self/status sampled every 5 ms, glibc's mallinfo2 beside it): embed held its
memory-mapped ``.npy`` result resident (1.43 GB: a mapped file's pages count in RSS; it is now written through the
file, ``encoders.embed._NpyWriter``) and MiniLM's varying batch shapes grew glibc's heap by 0.5 GB over the run (now
trimmed after each chunk, ``encoders.embed.release_freed_memory``, which also hands back what pyarrow kept from reading
the table). evaluate peaked in the linear probe: StandardScaler's float64 copies of the 50k probe rows, then the
scaled, rotated and held-out copies (now built a chunk at a time and in place, the same numbers to the bit:
tests/test_memory_evaluate.py). What remains is the 200k x 1,792 float32 matrix (1.43 GB) and one 50k x 1,792
matrix for the probe."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

import pandas as pd

sys.path.insert(0, os.path.dirname(__file__))
from common import RESULTS, report  # noqa: E402

LIMIT = 3 * 1024**3
MEASURE = "import resource, runpy, sys; sys.argv = ['univar', *sys.argv[1:]]\n" \
          "try:\n    runpy.run_module('univar', run_name='__main__')\nexcept SystemExit:\n    pass\n" \
          "print('PEAK', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, file=sys.stderr)"


def peak(args: list[str], env: dict) -> int:
    proc = subprocess.run([sys.executable, "-c", MEASURE, *args], env=env, capture_output=True, text=True)
    lines = [line for line in proc.stderr.splitlines() if line.startswith("PEAK")]
    if proc.returncode != 0 or not lines:
        raise SystemExit(proc.stderr[-2000:])
    return int(lines[-1].split()[1])


def main() -> None:
    from univar.qa import read_qa

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--evaluate-only", action="store_true",
                        help="re-measure the evaluate rows with the default embedding cache (warm, as evaluate's is "
                             "after embed) and keep the embed rows of the last full run")
    args = parser.parse_args()
    base = pd.concat([read_qa(f"bundled:{n}")[["question", "answer", "model", "lang"]]
                      for n in ("valuebench", "fulcra", "mtbench")])
    kept = {r["figure"]: r for r in json.loads((RESULTS / "memory.json").read_text())["rows"]} \
        if args.evaluate_only else {}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "UNIVAR_PROGRESS": "0"}
        if not args.evaluate_only:  # a cold cache: embed measures the encoders' own memory
            env["UNIVAR_CACHE_DIR"] = os.path.join(tmp, "cache")
        for n in (20_000, 200_000):
            copies = -(-n // len(base))
            big = pd.concat([base.assign(qid=[f"{c}-{i}" for i in range(len(base))]) for c in range(copies)]).head(n)
            path = os.path.join(tmp, f"qa{n}.parquet")
            big.to_parquet(path, index=False)
            embed_figure = f"embed peak RSS / 3 GB ({n:,} QAs)"
            if args.evaluate_only:
                rows.append(kept[embed_figure])
            else:
                embed_peak = peak(["embed", path, "--encoder", "univar", "--out", os.path.join(tmp, "e.npy")], env)
                rows.append({"figure": embed_figure, "value": embed_peak, "baseline": LIMIT,
                             "ratio": embed_peak / LIMIT, "target": "< 1", "ok": embed_peak < LIMIT})
            eval_peak = peak(["evaluate", "value-id", path, "--encoder", "univar"], env)
            rows.append({"figure": f"evaluate peak RSS / 3 GB ({n:,} QAs)", "value": eval_peak, "baseline": LIMIT,
                         "ratio": eval_peak / LIMIT, "target": "< 1", "ok": eval_peak < LIMIT})
    report("memory", rows)


if __name__ == "__main__":
    main()
