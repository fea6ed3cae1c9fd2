"""Paraphrases of questions, so that an answer reflects the question's values, not its exact wording.

The paper paraphrased each kept question 4 times. Two ways here: ask a chat backend (``paraphrase``), or
round-trip through other languages with a translator (``back_translate``: en -> pt -> en with Bergamot,
for example). Outputs are cleaned and deduplicated against the original and each other; each paraphrase
gets ``group`` = the original's qid and ``rephrase`` = True.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from univar.llm import ChatBackend, SamplingParams
from univar.taxonomy.generate import _qid, dedup, parse_questions

PARAPHRASE_TEMPLATE = ("Rewrite the following question in {n} different ways. Keep its meaning and keep it a "
                       "question. Write one per line, numbered, and nothing else.\n\nQuestion: {question}")


def _rows(table: pd.DataFrame, produced: dict[str, list[str]], how: str) -> pd.DataFrame:
    base = table.copy()
    if "group" not in base.columns:
        base["group"] = base["qid"]
    base["rephrase"] = base.get("rephrase", False)
    extra = []
    for rec in table.to_dict(orient="records"):
        for i, q in enumerate(produced.get(rec["qid"], []), start=1):
            new = dict(rec)
            new.update({"qid": _qid("para", f"{rec['qid']}|{q}"), "question": q, "question_en": q,
                        "group": rec.get("group") or rec["qid"], "rephrase": True, "paraphrase_of": rec["qid"],
                        "paraphrase_method": how})
            extra.append(new)
    return pd.concat([base, pd.DataFrame(extra)], ignore_index=True)


def paraphrase(table: pd.DataFrame, backend: ChatBackend, n: int = 4, seed: int = 0,
               template: str = PARAPHRASE_TEMPLATE) -> pd.DataFrame:
    """Add up to ``n`` LLM paraphrases per English question."""
    params = SamplingParams(temperature=0.8, top_p=0.95, top_k=50, max_tokens=64 * n + 32, seed=seed)
    produced = {}
    for rec in table.itertuples(index=False):
        reply = backend.chat([{"role": "user", "content": template.format(n=n, question=rec.question)}], params).text
        produced[rec.qid] = dedup(parse_questions(reply), against=[rec.question])[:n]
    return _rows(table, produced, f"llm:{backend.spec}")


def back_translate(table: pd.DataFrame, translator, pivots: Sequence[str]) -> pd.DataFrame:
    """One paraphrase per pivot language: English -> pivot -> English (kept when it differs)."""
    produced: dict[str, list[str]] = {q: [] for q in table["qid"]}
    questions = table["question"].tolist()
    for pivot in pivots:
        translator.check("en", pivot)
        there = translator.translate(questions, "en", pivot)
        back = translator.translate(there, pivot, "en")
        for qid, original, b in zip(table["qid"], questions, back):
            if dedup([b.strip()], threshold=1.01, against=[original, *produced[qid]]):
                produced[qid].append(b.strip())
    return _rows(table, produced, f"back-translation:{translator.name}:{','.join(pivots)}")
