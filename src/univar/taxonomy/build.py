"""Rebuild the taxonomy and question-bank files in ``univar/data`` from ../shared/data (MIT sources).

Run by a maintainer (``python -m univar.taxonomy.build [SHARED_DATA_DIR]``); the Parquet files are committed
so that a clone works offline. Keeps the licences beside the data.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path

import pandas as pd

DATA = Path(__file__).resolve().parents[1] / "data"
LANG = {"english": "en", "chinese": "zh", "german": "de", "japanese": "ja"}


def _id(prefix: str, text: str) -> str:
    return f"{prefix}-{hashlib.sha1(text.encode('utf-8')).hexdigest()[:10]}"


def build_values(shared: Path) -> pd.DataFrame:
    """ValueBench's value definitions -> ``valuebench_values.parquet``, definitions the CSV cut short marked."""
    table = pd.read_csv(shared / "valuebench" / "value_definitions.csv", dtype=str, keep_default_na=False)
    table = table.apply(lambda c: c.str.strip())
    # The published CSV lost the text after an escaped comma ("...actions\"): keep what is there, mark it.
    table["truncated"] = table["definition"].str.endswith("\\")
    table["definition"] = table["definition"].str.rstrip("\\").str.strip()
    table.to_parquet(DATA / "valuebench_values.parquet", index=False, compression="zstd")
    return table


def build_valuebench_questions(shared: Path) -> pd.DataFrame:
    """ValueBench's questionnaire items, one row per distinct question -> ``valuebench_questions.parquet``."""
    answers = pd.read_csv(shared / "valuebench" / "answers.csv", dtype=str, keep_default_na=False)
    first = answers.drop_duplicates("question")[["questionnaire", "item", "value", "agreement", "question"]]
    first = first.assign(qid=[_id("vb", q) for q in first["question"]], lang="en", question_en=first["question"],
                         source="valuebench")
    cols = ["qid", "question", "lang", "question_en", "value", "questionnaire", "item", "agreement", "source"]
    first = first[cols].reset_index(drop=True)
    first.to_parquet(DATA / "valuebench_questions.parquet", index=False, compression="zstd")
    return first


def build_valueconsistency(shared: Path) -> pd.DataFrame:
    """ValueConsistency's topic questions and PVQ items, with English versions -> ``valueconsistency.parquet``."""
    folder = shared / "valueconsistency"
    rows = []
    for path in sorted(folder.glob("*controversial_*.jsonl")):
        kind, language, country = path.stem.split("_")
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            r = json.loads(line)
            lang = LANG[language]
            rows.append({"question": r["question"], "lang": lang,
                         "question_en": (r["original_english"]
                                         if not r["rephrase"] or lang == "en" and r["question"] == r["original"]
                                         else None),
                         "original": r["original"], "original_en": r["original_english"],
                         "group": _id("vc", f"{lang}|{country}|{r['original']}"), "rephrase": bool(r["rephrase"]),
                         "topic": r["topic"], "topic_en": r["topic_english"], "controversial": kind == "controversial",
                         "country": country, "options": json.dumps(r["options"], ensure_ascii=False),
                         "value": None, "source": f"valueconsistency/{path.stem}"})
    english_pvq = [json.loads(x) for x in (folder / "pvq_english.jsonl").read_text(encoding="utf-8").splitlines()
                   if x.strip()]
    for language in ("english", "chinese", "german"):
        items = [json.loads(x) for x in (folder / f"pvq_{language}.jsonl").read_text(encoding="utf-8").splitlines()
                 if x.strip()]
        for i, r in enumerate(items):
            en = english_pvq[i]["question"].strip() if i < len(english_pvq) else None
            rows.append({"question": r["question"].strip(), "lang": LANG[language], "question_en": en,
                         "original": r["question"].strip(), "original_en": en, "group": _id("vc", f"pvq|{i}"),
                         "rephrase": False, "topic": r.get("statement"), "topic_en": english_pvq[i].get("statement"),
                         "controversial": None, "country": None,
                         "options": json.dumps(r.get("options"), ensure_ascii=False), "value": r.get("schwartz_value"),
                         "source": f"valueconsistency/pvq_{language}"})
    table = pd.DataFrame(rows)
    # English questions are their own English version.
    en = table["lang"] == "en"
    table.loc[en, "question_en"] = table.loc[en, "question"]
    table = table.drop_duplicates(subset=["lang", "question", "source"]).reset_index(drop=True)
    table.insert(0, "qid", [_id("vc", f"{s}|{q}") for s, q in zip(table["source"], table["question"])])
    table = table.drop_duplicates("qid").reset_index(drop=True)
    table.to_parquet(DATA / "valueconsistency.parquet", index=False, compression="zstd")
    return table


def main() -> None:
    """Rebuild every data file from SHARED_DATA_DIR (first argument) and copy the licence beside them."""
    shared = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[4] / "shared" / "data"
    (DATA / "licenses").mkdir(exist_ok=True)
    shutil.copy(shared / "valueconsistency" / "LICENSE.md", DATA / "licenses" / "valueconsistency-MIT.txt")
    print("values", len(build_values(shared)))
    print("valuebench-questions", len(build_valuebench_questions(shared)))
    print("valueconsistency", len(build_valueconsistency(shared)))


if __name__ == "__main__":
    main()
