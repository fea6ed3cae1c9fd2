"""``univar demo`` wall time, as a user meets it right after installation: a fresh process and an empty
embedding cache, on this machine's cores. Figure: wall seconds / the 300 s budget (target < 1).

The per-step times the demo records (summary.json) are printed too, so a regression names its step.

It also records what the demo and the docs' example commands print, so that README.md and docs/ quote
measured output rather than numbers typed by hand (``scripts/sync_docs.py`` rewrites them from here):
bench/results/demo.json holds the demo's headline figures (value identification per encoder, chance, the
Mantel test per encoder and distance, sizes, the most distant pair, and the map's fidelity when the demo
reports one) and, under ``examples``, the output of the README / docs/report.md example commands
(``evaluate value-id``, ``compare``, ``map --add``), run exactly as written there, on the user's embedding
cache. After a re-run: ``python scripts/sync_docs.py`` (or ``make docs``).

    python bench/demo_time.py                  # demo (timed) + examples, ~4 minutes on 2 cores
    python bench/demo_time.py --no-examples    # demo only; demo.json keeps the previous examples
    python bench/demo_time.py --examples-only  # examples only; demo_time.json and the demo rows are kept
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from common import RESULTS, report  # noqa: E402

BUDGET_S = 300.0
EXAMPLE = "example: "  # figure prefix of the rows measured by the example commands
COLUMNS = "100"  # terminal width the example outputs are rendered at (rich wraps to it)


def row(figure: str, value, baseline=1.0, target: str = "", ok=None, **extra) -> dict:
    """One result row; counts and coefficients have baseline 1, so ratio is the value itself."""
    value = float(value) if not isinstance(value, (int, np.integer)) else int(value)
    ratio = value / baseline if baseline else float("nan")
    return {"figure": figure, "value": value, "baseline": baseline, "ratio": ratio, "target": target, "ok": ok,
            **extra}


def run_univar(args: list[str], cwd: str, env: dict | None = None) -> str:
    """Run ``univar ARGS`` in ``cwd`` and return its stdout, each line stripped of rich's trailing padding."""
    env = {**os.environ, "UNIVAR_PROGRESS": "0", "COLUMNS": COLUMNS, **(env or {})}
    done = subprocess.run([sys.executable, "-m", "univar", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, check=False)
    if done.returncode != 0:
        sys.stderr.write(done.stdout[-2000:] + done.stderr[-4000:])
        raise SystemExit(f"univar {' '.join(args)} failed with exit code {done.returncode}")
    return "\n".join(line.rstrip() for line in done.stdout.rstrip().splitlines())


# --- the demo ----------------------------------------------------------------------------------------------

def timed_demo(tmp: str, out_name: str = "demo") -> tuple[float, Path]:
    """Wall seconds of ``univar demo`` in a fresh process, on ``tmp``'s embedding cache (empty on the first call)."""
    out = Path(tmp) / out_name
    env = {**os.environ, "UNIVAR_CACHE_DIR": os.path.join(tmp, "cache"), "UNIVAR_PROGRESS": "0"}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "univar", "demo", "--out", str(out)], env=env,
                          capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.stderr.write(done.stdout[-2000:] + done.stderr[-4000:])
        raise SystemExit(f"univar demo failed with exit code {done.returncode}")
    return wall, out


def flat(block: dict, prefix: str = "") -> dict:
    """Nested dict -> {"a/b": number} for its numeric leaves."""
    items = {}
    for key, value in block.items():
        if isinstance(value, dict):
            items.update(flat(value, f"{prefix}{key}/"))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            items[f"{prefix}{key}"] = value
    return items


def demo_rows(out: Path) -> tuple[list[dict], dict | None]:
    """The demo's headline figures from its output folder; also its ``summary["map"]`` block, if any."""
    summary = json.loads((out / "summary.json").read_text())
    value_id = json.loads((out / "value_id.json").read_text())
    mantel = json.loads((out / "mantel.json").read_text()) if (out / "mantel.json").exists() else []
    mantel = mantel if isinstance(mantel, list) else [mantel]
    rows = [row("demo QAs", summary["n_qas"]), row("demo questions (sampled)", summary["n_questions"]),
            row("demo classes (LLMs)", len(summary["classes"]))]
    by = {(r["encoder"], r["split"]): r for r in value_id}
    for (enc, split), r in by.items():
        rows.append(row(f"{enc} k-NN acc ({split} split)", r["knn"]["acc"], r["chance"], "> chance",
                        r["knn"]["acc"] > r["chance"]))
        rows.append(row(f"{enc} linear acc@1 ({split} split)", r["linear"]["acc@1"], r["chance"], "> chance",
                        r["linear"]["acc@1"] > r["chance"]))
    for split in sorted({s for _, s in by}):
        chance = next(r["chance"] for (_, s), r in by.items() if s == split)
        rows.append(row(f"chance ({split} split)", chance))
        primary, base = by.get((summary["primary"], split)), by.get(("minilm", split))
        if primary and base and primary is not base:
            rows.append(row(f"{summary['primary']} k-NN acc / minilm ({split} split)", primary["knn"]["acc"],
                            base["knn"]["acc"], "> 1", primary["knn"]["acc"] > base["knn"]["acc"]))
    for v in mantel:
        what = f"{v['encoder']}, {v['metric']} distance"
        rows.append(row(f"Mantel r ({what})", v["r"], permutations=v["permutations"], n_values=v["n_values"]))
        rows.append(row(f"Mantel p ({what})", v["p"], permutations=v["permutations"]))
    pair = most_distant(out)
    if pair:
        rows.append(row("most distant pair, cosine distance", pair["cosine"], pair=f"{pair['a']} and {pair['b']}"))
    fidelity = summary.get("map")
    if isinstance(fidelity, dict):  # the map's own check, when the demo reports one (older demos do not)
        rows += [row(f"map fidelity: {key}", value) for key, value in flat(fidelity).items()]
    else:
        fidelity = None
    return rows, fidelity


def most_distant(out: Path) -> dict | None:
    path = out / "distances.csv"
    if not path.exists():
        return None
    import pandas as pd

    d = pd.read_csv(path).sort_values("cosine", ascending=False).iloc[0]
    return {"a": d["class_a"], "b": d["class_b"], "cosine": float(d["cosine"])}


# --- the docs' example commands ------------------------------------------------------------------------------

def mystery_files(folder: str, seed: int = 0) -> None:
    """docs/report.md's ``map --add`` example data: vb400.csv, all six LLMs' answers to 400 ValueBench
    questions, and mystery-llm.csv, llama-7b-chat's answers to 200 other questions, relabelled mystery-llm."""
    from univar.qa import read_qa

    table = read_qa("bundled:valuebench")
    questions = np.random.default_rng(seed).choice(table["question"].drop_duplicates().to_numpy(), 600, replace=False)
    cols = ["question", "answer", "model", "lang"]
    table[table["question"].isin(set(questions[:400]))][cols].to_csv(Path(folder) / "vb400.csv", index=False)
    mystery = table[table["question"].isin(set(questions[400:])) & (table["model"] == "llama-7b-chat")][cols]
    mystery.assign(model="mystery-llm").to_csv(Path(folder) / "mystery-llm.csv", index=False)


def example_rows(tmp: str) -> tuple[list[dict], dict]:
    """Run the docs' example commands as written; return their figures and their outputs."""
    import pandas as pd

    rows, outputs = [], {}

    def example(name: str, command: str) -> str:
        start = time.perf_counter()
        text = run_univar(command.split()[1:], cwd=tmp)
        print(f"{command}: {time.perf_counter() - start:.0f}s", flush=True)
        outputs[name] = {"command": command, "output": text}
        return text

    # README, `univar evaluate value-id`
    example("evaluate", "univar evaluate value-id bundled:valuebench --encoder minilm --json r.json")
    r = json.loads((Path(tmp) / "r.json").read_text())
    what = f"{EXAMPLE}evaluate value-id bundled:valuebench --encoder {r['encoder']} ({r['split']} split)"
    rows += [row(f"{what}: k-NN acc", r["knn"]["acc"], r["chance"]),
             row(f"{what}: linear acc@1", r["linear"]["acc@1"], r["chance"]), row(f"{what}: chance", r["chance"])]

    # README and docs/report.md, `univar compare` (every ValueBench question) and its Mantel test
    example("compare", "univar compare bundled:valuebench --encoder univar --out vb-compare")
    mantel = json.loads((Path(tmp) / "vb-compare" / "mantel.json").read_text())
    for v in mantel if isinstance(mantel, list) else [mantel]:
        what = f"{EXAMPLE}compare bundled:valuebench --encoder univar: Mantel"
        metric = v.get("metric", "cosine")
        rows += [row(f"{what} r ({metric} distance)", v["r"], permutations=v["permutations"]),
                 row(f"{what} p ({metric} distance)", v["p"], permutations=v["permutations"])]

    # docs/report.md, `univar explain`: the ranking, the lean sentences and the stance examples
    example("explain", "univar explain bundled:valuebench --encoder univar --a llama-7b-chat "
                       "--b mistral-7b-instruct --top 3")

    # README and docs/report.md, `univar map --add`: where a relabelled known LLM lands
    mystery_files(tmp)
    for enc in ("univar", "minilm"):
        out = "mystery-map" if enc == "univar" else f"mystery-map-{enc}"
        example(f"map_add_{enc}", f"univar map vb400.csv --encoder {enc} --add mystery-llm.csv --out {out}")
        near = pd.read_csv(Path(tmp) / out / "nearest.csv").sort_values("rank")
        what = f"{EXAMPLE}map --add mystery-llm.csv --encoder {enc}: cosine distance to the"
        rows += [row(f"{what} nearest class", near["cosine"].iloc[0], **{"class": near["class"].iloc[0]}),
                 row(f"{what} second nearest class", near["cosine"].iloc[1], **{"class": near["class"].iloc[1]})]
    return rows, outputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-examples", action="store_true", help="skip the docs' example commands")
    parser.add_argument("--examples-only", action="store_true", help="skip the timed demo")
    args = parser.parse_args()
    old = json.loads((RESULTS / "demo.json").read_text()) if (RESULTS / "demo.json").exists() else {}
    old_rows = old.get("rows", [])
    rows = [r for r in old_rows if not r["figure"].startswith(EXAMPLE)]
    examples, fidelity = old.get("examples", {}), old.get("map_fidelity")
    with tempfile.TemporaryDirectory() as tmp:
        if not args.examples_only:
            wall, out = timed_demo(tmp)
            summary = json.loads((out / "summary.json").read_text())
            steps = ", ".join(f"{k} {v:.0f}s" for k, v in summary["seconds"].items())
            print(f"univar demo: {wall:.0f}s wall on {os.cpu_count()} cores, encoder {summary['primary']} "
                  f"({summary['n_qas']} QAs); steps: {steps}")
            warm, _ = timed_demo(tmp, "demo-again")  # the same embedding cache, now full
            print(f"univar demo again, warm cache: {warm:.0f}s wall")
            load = os.getloadavg()[0] / (os.cpu_count() or 1)
            report("demo_time", [
                {"figure": f"univar demo wall time / {BUDGET_S:.0f} s budget (cold cache)", "value": wall,
                 "baseline": BUDGET_S, "ratio": wall / BUDGET_S, "target": "< 1", "ok": wall < BUDGET_S},
                {"figure": f"univar demo wall time, warm cache / {BUDGET_S:.0f} s budget", "value": warm,
                 "baseline": BUDGET_S, "ratio": warm / BUDGET_S, "target": "< 1", "ok": warm < BUDGET_S},
                {"figure": "load average per core at the end", "value": load, "baseline": 1.0, "ratio": load,
                 "target": "", "ok": None, "under_load": "under load" if load > 1 else "on an idle machine"}])
            rows, fidelity = demo_rows(out)
        example_list = [r for r in old_rows if r["figure"].startswith(EXAMPLE)]
        if not args.no_examples:
            work = Path(tmp) / "examples"
            work.mkdir()
            example_list, examples = example_rows(str(work))
    extra = {"examples": examples} | ({"map_fidelity": fidelity} if fidelity else {})
    report("demo", rows + example_list, extra=extra)


if __name__ == "__main__":
    main()
