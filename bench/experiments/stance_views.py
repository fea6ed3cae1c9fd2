"""Untrained levers for stance validity: which frozen view of a QA shows the position its answer takes?

For every bundled source with position labels (valuebench, donotanswer, xstest), question fold 0, minilm: the
within-question stance AUC (:class:`univar.evaluate.stance.StanceValidity`) of

- ``qa``: the QA text as every encoder reads it (``Q: .. A: ..``);
- ``answer``: the answer alone (what it says, not what it answers);
- ``first_sentence``, ``first_two_sentences``, ``first_20_words``: the answer's opening, where an answer usually
  says whether it agrees, complies or refuses, before the content that dilutes it;
- ``question_first_sentence``: the question with the answer's first sentence;
- ``centred``: the QA vectors minus the mean of their question's answers (exact topic removal, which no single-QA
  encoder can do: an upper bound for the topic residual), and the same ``centred_whitened`` by the covariance of
  those within-question deviations.

No training, minutes from the embedding cache; docs/model.md ("Validity: what was tried") quotes
bench/results/levers/stance_views.json.

    python bench/experiments/stance_views.py
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("UNIVAR_PROGRESS", "0")

from common import RESULTS  # noqa: E402

from univar.data import STANCE_LABELS  # noqa: E402
from univar.encoders import embed  # noqa: E402
from univar.evaluate import StanceValidity  # noqa: E402
from univar.files import write_json  # noqa: E402
from univar.qa import TEST_FOLD, qa_text, qa_texts, question_folds, read_qa  # noqa: E402
from univar.registry import get_encoder  # noqa: E402
from univar.vectors import unit_rows  # noqa: E402

SCORER = StanceValidity(n_boot=200, seed=0)


def sentences(answer: str, n: int) -> str:
    return " ".join(re.split(r"(?<=[.!?])\s+", answer.strip())[:n])


def centred(x: np.ndarray, questions) -> np.ndarray:
    out = x.copy()
    codes = np.unique(np.asarray(questions, dtype=str), return_inverse=True)[1]
    for code in np.unique(codes):
        rows = codes == code
        out[rows] -= x[rows].mean(0)
    return out


def whitened(x: np.ndarray, eps: float = 1e-3) -> np.ndarray:
    w, u = np.linalg.eigh(x.T @ x / len(x) + eps * np.eye(x.shape[1]))
    return x @ u / np.sqrt(w)


def main() -> None:
    encoder, results = get_encoder("minilm"), {}
    for name in STANCE_LABELS:
        table = read_qa(f"bundled:{name}")
        table = table.iloc[StanceValidity.labelled_rows(table)].reset_index(drop=True)
        table = table[question_folds(table["question"]) == TEST_FOLD].reset_index(drop=True)
        answers = table["answer"].astype(str).tolist()
        views = {"qa": qa_texts(table), "answer": answers,
                 "first_sentence": [sentences(a, 1) for a in answers],
                 "first_two_sentences": [sentences(a, 2) for a in answers],
                 "first_20_words": [" ".join(a.split()[:20]) for a in answers],
                 "question_first_sentence": [qa_text(q, sentences(a, 1)) for q, a in
                                             zip(table["question"], answers)]}
        scores = {}
        for view, texts in views.items():
            vectors = unit_rows(embed(texts, encoder, progress=False))
            scores[view] = SCORER.score(vectors, table, encoder=view).stance_auc.value
            if view == "qa":
                deviations = centred(vectors, table["question"])
                scores["centred"] = SCORER.score(deviations, table).stance_auc.value
                scores["centred_whitened"] = SCORER.score(whitened(deviations), table).stance_auc.value
        results[name] = {"n_qas": len(table), "stance_auc": scores}
        print(name, len(table), " | ".join(f"{k} {v:.3f}" for k, v in scores.items()), flush=True)
    write_json(RESULTS / "levers" / "stance_views.json",
               {"benchmark": "stance_views", "encoder": "minilm", "fold": TEST_FOLD, "sources": results})


if __name__ == "__main__":
    main()
