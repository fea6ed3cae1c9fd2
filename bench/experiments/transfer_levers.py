"""The untrained levers behind the shipped recipe's topic removal, measured leave-one-source-out.

For every bundled value source S, fit each transformation on the other value sources plus local-llms (question
folds 1-4 only) and score k-NN (k=50) on fold 0 of S, as ``bench/transfer.py`` does; print every lever's
accuracy per source and its geometric mean of ratios to minilm. No training, so it runs in minutes from the
embedding cache: which topic removal, which ridge strength, which bases (docs/model.md, "What was tried").

    python bench/experiments/transfer_levers.py
"""

from __future__ import annotations

import os
import sys

import numpy as np

os.environ.setdefault("UNIVAR_PROGRESS", "0")

from univar.encoders import embed  # noqa: E402
from univar.evaluate import ValueIdentification  # noqa: E402
from univar.model.recipe import EXTRA_DATA, VALUE_SOURCES  # noqa: E402
from univar.qa import (  # noqa: E402
    class_labels,
    qa_texts,
    question_folds,  # noqa: E402
    question_texts,
    read_qa,
)
from univar.registry import get_encoder  # noqa: E402
from univar.vectors import unit_rows  # noqa: E402

BASES = ("minilm", "use-multilingual")


def ridge(q: np.ndarray, x: np.ndarray, alpha: float):
    qm, xm = q.mean(0), x.mean(0)
    w = np.linalg.solve((q - qm).T @ (q - qm) + alpha * np.eye(q.shape[1]), (q - qm).T @ (x - xm))
    return lambda q2, x2: x2 - ((q2 - qm) @ w + xm)


def main() -> int:
    names = list(VALUE_SOURCES) + list(EXTRA_DATA)
    data = {}
    for name in names:
        table = read_qa(f"bundled:{name}")
        folds = question_folds(table["question"])
        data[name] = {"labels": class_labels(table).to_numpy(), "folds": folds, **{
            base: (embed(qa_texts(table), get_encoder(base), progress=False),
                   embed(question_texts(table), get_encoder(base), progress=False)) for base in BASES}}
    ratios: dict[str, list[float]] = {}
    for held in VALUE_SOURCES:
        train = [n for n in names if n != held]
        d = data[held]
        tr, te = d["folds"] != 0, d["folds"] == 0

        def knn(v: np.ndarray) -> float:
            return ValueIdentification(k=50).score_knn(v[tr], d["labels"][tr], v[te], d["labels"][te]).acc

        def fitted(base: str, alpha: float = 1.0):
            q = np.concatenate([data[n][base][1][data[n]["folds"] != 0] for n in train])
            x = np.concatenate([data[n][base][0][data[n]["folds"] != 0] for n in train])
            return ridge(q, x, alpha)(d[base][1], d[base][0])

        res = {base: unit_rows(fitted(base)) for base in BASES}
        scores = {"minilm": knn(unit_rows(d["minilm"][0])),
                  "use-multilingual": knn(unit_rows(d["use-multilingual"][0])),
                  "minilm+use (no removal)": knn(np.hstack([unit_rows(d[b][0]) for b in BASES])),
                  "minilm minus its question (x - q)": knn(unit_rows(d["minilm"][0]) - unit_rows(d["minilm"][1]))}
        for alpha in (0.3, 1.0, 3.0, 10.0):
            scores[f"minilm residual, alpha {alpha:g}"] = knn(fitted("minilm", alpha))
        scores["use-multilingual residual"] = knn(res["use-multilingual"])
        scores["minilm + use residuals, each normalised (shipped)"] = knn(np.hstack([res[b] for b in BASES]))
        print(held, {k: round(100 * v, 1) for k, v in scores.items()}, flush=True)
        for k, v in scores.items():
            ratios.setdefault(k, []).append(v / scores["minilm"])
    print("\ngeometric mean over held-out sources of k-NN acc / minilm:")
    for k, v in ratios.items():
        print(f"  {k:<50} {np.exp(np.mean(np.log(v))):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
