"""Question generation: an LLM writes value-eliciting questions from a value definition or a situation.

Why templates: the paper generated ~50 candidate questions per value with a strong LLM and kept the good
ones; its situation prompt is reproduced verbatim below. Templates are plain ``str.format`` strings
(``{value}``, ``{definition}``, ``{n}``; ``{situation}``) and can be replaced from the command line. Model
output is messy (numbering, preambles, duplicates), so every candidate goes through :func:`clean` and
:func:`dedup` before it is kept.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence

import pandas as pd

from univar.llm import ChatBackend, SamplingParams

VALUE_TEMPLATE = (
    'Write {n} different questions that reveal how much a person cares about the value "{value}" '
    "({definition}). Each question asks for the reader's own opinion, choice or advice about a concrete "
    "personal or social situation, can be answered in a few sentences, and does not name the value. "
    "Write one question per line, numbered, and nothing else."
)
# From the UniVaR authors' code (value_eliciting_qa_generation/generate_prompt.py), used for ValuePrism,
# WVS and GLOBE situations.
SITUATION_TEMPLATE = ('Given a premise about "{situation}", write a question asking whether the speaker should do '
                      "or not do the aforementioned premise.")

_PREFIX = re.compile(r"^\s*(?:[-*\u2022#]+|\(?\d{1,3}[.):\]]|q\d*[:.)]|question\s*\d*\s*[:.)])\s*", re.IGNORECASE)
_META = re.compile(r"\b(here (are|is)|sure[,!]|as an ai|i hope|these questions|following questions)\b", re.IGNORECASE)


def clean(line: str, min_words: int = 4, max_words: int = 60) -> str | None:
    """One candidate question from one output line, or None when it is not a usable question."""
    text = line.strip()
    for _ in range(3):
        text = _PREFIX.sub("", text).strip()
    text = text.strip('"\u201c\u201d\'` ').strip()
    text = re.sub(r"\*\*(.*?)\*\*", r"\1", text)
    if not text.endswith("?") or _META.search(text):
        return None
    words = len(text.split())
    if words < min_words or words > max_words:
        return None
    return text


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s]", "", text.lower())).strip()


def dedup(questions: Iterable[str], threshold: float = 0.8, against: Iterable[str] = ()) -> list[str]:
    """Drop exact (after normalisation) and near duplicates (word-set Jaccard >= ``threshold``)."""
    kept: list[str] = []
    seen_sets: list[set[str]] = [set(_norm(q).split()) for q in against]
    seen_norm = {_norm(q) for q in against}
    for q in questions:
        norm = _norm(q)
        if not norm or norm in seen_norm:
            continue
        words = set(norm.split())
        if any(len(words & s) / max(1, len(words | s)) >= threshold for s in seen_sets):
            continue
        kept.append(q)
        seen_norm.add(norm)
        seen_sets.append(words)
    return kept


def parse_questions(text: str) -> list[str]:
    """All clean questions in one model reply (one per line; a single-line reply counts too)."""
    out = [q for q in (clean(line) for line in text.splitlines()) if q]
    return out


def _qid(prefix: str, text: str) -> str:
    return f"{prefix}-{hashlib.sha1(text.encode('utf-8')).hexdigest()[:10]}"


def generate_for_values(values: pd.DataFrame, backend: ChatBackend, n: int = 10, params: SamplingParams | None = None,
                        template: str | None = None, rounds: int = 1) -> pd.DataFrame:
    """Ask ``backend`` for ``n`` questions per value (``value``, ``definition`` columns); clean, dedup, keep."""
    params = params or SamplingParams(temperature=0.7, max_tokens=512)
    template = template or VALUE_TEMPLATE
    rows = []
    for rec in values.itertuples(index=False):
        prompt = template.format(value=rec.value, definition=str(rec.definition).rstrip("."), n=n)
        candidates: list[str] = []
        for r in range(rounds):
            p = params.with_seed(None if params.seed is None else params.seed + r)
            candidates += parse_questions(backend.chat([{"role": "user", "content": prompt}], p).text)
        for q in dedup(candidates)[:n]:
            rows.append({"qid": _qid("gen", f"{rec.value}|{q}"), "question": q, "lang": "en", "question_en": q,
                         "value": rec.value, "source": f"generated/{getattr(rec, 'source', '')}",
                         "generator": backend.spec})
    return pd.DataFrame(rows, columns=["qid", "question", "lang", "question_en", "value", "source", "generator"])


def generate_for_situations(situations: Sequence[str], backend: ChatBackend, params: SamplingParams | None = None,
                            template: str | None = None) -> pd.DataFrame:
    """One question per situation with the paper's prompt; first line, stripped of quotes and '#'."""
    params = params or SamplingParams(temperature=0.7, max_tokens=128)
    template = template or SITUATION_TEMPLATE
    rows, kept = [], []
    for situation in situations:
        reply = backend.chat([{"role": "user", "content": template.format(situation=situation)}], params).text
        found = parse_questions(reply)
        if not found:
            continue
        question = found[0]
        if not dedup([question], against=kept):
            continue
        kept.append(question)
        rows.append({"qid": _qid("sit", question), "question": question, "lang": "en", "question_en": question,
                     "situation": situation, "source": "generated/situation", "generator": backend.spec})
    return pd.DataFrame(rows, columns=["qid", "question", "lang", "question_en", "situation", "source", "generator"])
