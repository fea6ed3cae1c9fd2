"""Datasets bundled with univar, addressed as ``bundled:<name>`` wherever a QA file is accepted.

Each one is real LLM output published by another group under MIT, Apache-2.0 or CC-BY-4.0; the licence texts and
attributions are in ``licenses/`` beside the files and summarised in ``README.md``.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from univar.errors import QAError

# name -> (file, one-line description)
BUNDLED: dict[str, tuple[str, str]] = {
    "valuebench": (
        "valuebench.parquet",
        "ValueBench: 1,988 items (1,706 distinct questions) from 36 psychometric inventories, answered by 6 LLMs "
        "(en); MIT, Value4AI",
    ),
    "fulcra": (
        "fulcra.parquet",
        "Value FULCRA: 3,241 safety-relevant prompts answered by 7 LLMs (en); MIT, Microsoft",
    ),
    "donotanswer": (
        "donotanswer.parquet",
        "Do-Not-Answer: 854 risky prompts (of the 939 published) answered by 6 LLMs, refusals kept (en); Apache-2.0, "
        "Libr-AI",
    ),
    "xstest": (
        "xstest.parquet",
        "XSTest: 450 safe and unsafe prompts answered by 5 configurations of 3 LLMs (en); CC-BY-4.0, Röttger et al.",
    ),
    "moralmachine": (
        "moralmachine.parquet",
        "Moral Machine: 737 trolley-style dilemmas continued by 3 OpenAI LLMs (en); MIT, CausalNLP",
    ),
    "mtbench": (
        "mtbench.parquet",
        "Multilingual MT-bench: general, non-value QAs, 114 (LLM, language) classes in 6 languages; Apache-2.0, "
        "shisa-ai",
    ),
    "local-llms": (
        "local_llms.parquet",
        "1,200 QAs of SmolLM2-135M-Instruct in 4 value-steered configurations x en/de/pt (12 classes), made with "
        "univar elicit; Apache-2.0 (model), MIT (questions)",
    ),
    "valuebench-questions": (
        "valuebench_questions.parquet",
        "Question bank (no answers): 1,706 ValueBench value questions with their value and inventory (en); "
        "MIT, Value4AI",
    ),
    "valueconsistency": (
        "valueconsistency.parquet",
        "Question bank (no answers): ValueConsistency questions in en, zh, de, ja with English originals and "
        "paraphrase groups; MIT, Jared Moore",
    ),
}

# name -> what its ``stance`` column holds: a label of the position each answer takes (univar evaluate stance)
STANCE_LABELS: dict[str, str] = {
    "valuebench": "agree (rating >= 7) / disagree (<= 3) with the questionnaire item, from ValueBench's released "
                  "ratings; 4-6 unlabelled",
    "donotanswer": "the human annotators' action: 0_refuse, 1_refute, 2_balanced, 3_disclaimer, 4_uncertain, "
                   "5_follow",
    "xstest": "the human annotators' final label: 1_full_compliance, 2_full_refusal, 3_partial_refusal",
}


def bundled_names() -> list[str]:
    """The names accepted after ``bundled:`` (sorted, for error messages and listings)."""
    return sorted(BUNDLED)


def bundled_file(name: str) -> Path:
    """Path of a bundled dataset; raises QAError for an unknown name."""
    if name not in BUNDLED:
        raise QAError(f"unknown bundled dataset {name!r} (known: {', '.join(bundled_names())})", f"bundled:{name}", 0)
    return Path(str(resources.files(__name__).joinpath(BUNDLED[name][0])))
