"""``make bench``: run every benchmark in bench/ and print one table of ratios with their targets."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# helpers, run by the benchmarks that need them; fresh_clone.py (half an hour, the committed HEAD) is run by hand
SKIP = {"run_all.py", "common.py", "llm_client.py", "fresh_clone.py"}


def main() -> int:
    only = set(sys.argv[1:])
    failed = []
    for script in sorted(HERE.glob("*.py")):
        if script.name in SKIP or (only and script.stem not in only):
            continue
        print(f"--- {script.name}", flush=True)
        if subprocess.run([sys.executable, str(script)]).returncode != 0:
            failed.append(script.name)
    print("\n== summary (bench/results/*.json) ==")
    for path in sorted((HERE / "results").glob("*.json")):
        for row in json.loads(path.read_text()).get("rows", []):
            verdict = {True: "ok", False: "MISSED", None: ""}[row.get("ok")]
            print(f"  {path.stem:<16} {row['figure']:<55} {row['ratio']:9.3f}  {row.get('target', ''):<10} {verdict}")
    if failed:
        print("benchmarks that failed to run:", ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
