"""Which questions a trained model saw, kept as hashes beside its weights, so that an evaluation can say when it
scores a model on its own training questions.

Scoring the shipped model on ``bundled:valuebench`` with the random split reads 86%, but the model was trained on
about 60% of those questions and chose its epoch on another 20%: a number that looks held out and is not. Training
writes :data:`SEEN_FILE` into every model folder it saves (``univar.model.train``); ``evaluate value-id`` reads
it and counts the test QAs whose question is in it (:func:`count_seen`). The file holds hashes, not questions:
small (16 hex digits a question), and it does not copy a dataset into every model folder.

A question's key is the SHA-1 of ``question.strip().lower()``, its first 16 hex digits: the hash the question
folds are taken from (``univar.qa.question_fold`` is the whole digest mod 5), so a question that changes only in
case or surrounding spaces is the same question here as in every question-disjoint split.

This module sits below ``univar.evaluate`` and ``univar.model`` (it imports neither): training writes the file and
the evaluation reads it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from univar.files import write_json
from univar.qa import question_digest

SEEN_FILE = "training_questions.json"
KEY_DIGITS = 16
FORMAT = "univar-seen-questions/1"


def question_key(question: object) -> str:
    """The stored key of a question: SHA-1 of ``str(question).strip().lower()``, first 16 hex digits."""
    return question_digest(question)[:KEY_DIGITS]


@dataclass(frozen=True)
class SeenQuestions:
    """The question keys a model was trained on (gradient steps, and the topic map where there is one) and those
    it was validated on (early stopping chose its epoch by them): both are not held out for it."""

    trained: frozenset[str]
    validation: frozenset[str]


def write_seen(folder: str | Path, trained: Iterable[object], validation: Iterable[object] = ()) -> Path:
    """Write :data:`SEEN_FILE` into ``folder``: the keys of the ``trained`` and ``validation`` questions, sorted
    (the same questions give the same bytes). A question in both counts as trained."""
    trained_keys = {question_key(q) for q in trained}
    validation_keys = {question_key(q) for q in validation} - trained_keys
    return write_json(Path(folder) / SEEN_FILE, {
        "format": FORMAT,
        "key": f"sha1(question.strip().lower()), first {KEY_DIGITS} hex digits",
        "trained": sorted(trained_keys), "validation": sorted(validation_keys)})


def read_seen(folder: str | Path | None) -> SeenQuestions | None:
    """The questions the model in ``folder`` saw; None where the folder holds no :data:`SEEN_FILE` (not a model
    folder, or a model saved before training wrote it) or one this version cannot read."""
    if folder is None:
        return None
    path = Path(folder) / SEEN_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        return None
    return SeenQuestions(frozenset(data.get("trained", ())), frozenset(data.get("validation", ())))


def count_seen(seen: SeenQuestions, questions: Iterable[object]) -> tuple[int, int]:
    """How many of ``questions`` (one per QA) the model was trained on, and how many more it was validated on."""
    keys = [question_key(q) for q in questions]
    trained = sum(k in seen.trained for k in keys)
    return trained, sum(k in seen.validation for k in keys)
