"""Is a gap between the torch probe and the old sklearn probe the new probe's error, or the old one's?

For the bundled sets where the card's linear acc@1 moved most when the probe changed, score the same vectors
and the same split three ways: the torch L-BFGS probe (``univar.evaluate.linear_probe``), the old
``LogisticRegressionCV`` at the tolerance it ran with (1e-3), and the same sklearn model run close to
convergence (tol 1e-6). All three fit the same convex objective on the same grid of C and held-out rows, so
the converged sklearn run is the reference. Merges its rows into bench/results/probe_agreement.json.

The set ``valuebench-60`` is the small file of issue 22: the first 20 ValueBench questions answered by each of 3
LLMs, 60 QAs. Its question fold 0 holds 18 of them, so each of the 5 question folds is the test side in turn
(C chosen on the next fold's training QAs) and the scores pool the 60 test QAs. With 48 training QAs against
TF-IDF's 59 dimensions the probe scales by ``univar.evaluate.probe_scaler``; ``torch_per_column`` is the probe
with every column standardised instead, as before that fix.

    python bench/experiments/probe_agreement.py [--sets xstest,local-llms,moralmachine,valuebench]
    python bench/experiments/probe_agreement.py --sets valuebench-60 --encoder tfidf
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("UNIVAR_PROGRESS", "0")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import RESULTS  # noqa: E402
from probe_speed import sklearn_probe  # noqa: E402

import univar.evaluate.probe as ev  # noqa: E402
from univar.encoders import embed  # noqa: E402
from univar.evaluate import ValueIdentification, linear_probe  # noqa: E402
from univar.files import write_json  # noqa: E402
from univar.qa import N_FOLDS, TEST_FOLD, class_labels, qa_texts, question_folds, read_qa  # noqa: E402
from univar.registry import get_encoder  # noqa: E402
from univar.seen import count_seen, read_seen  # noqa: E402


def inputs(name: str, encoder, langs: str) -> tuple:
    """The question split's training and test rows, and the probe's held-out mask, as ValueIdentification.score
    builds them; ``langs`` keeps those languages only ("all": every one)."""
    table = read_qa(f"bundled:{name}")
    if langs != "all":
        table = table[table["lang"].isin(langs.split(","))].reset_index(drop=True)
    vectors = embed(qa_texts(table), encoder, progress=False)
    labels = np.asarray(class_labels(table).to_numpy(), dtype=object)
    train, test = ValueIdentification(split="question")._sides(labels, table["question"])
    held_out = question_folds(table["question"].iloc[train]) == (TEST_FOLD + 1) % N_FOLDS
    return vectors[train], labels[train], vectors[test], labels[test], held_out


SMALL = "valuebench-60"
SMALL_MODELS = ("gpt-4-1106-preview", "llama-7b-chat", "mistral-7b-instruct")


def small_table():
    """The first 20 ValueBench questions that all of ``SMALL_MODELS`` answered, with those answers (60 QAs)."""
    table = read_qa("bundled:valuebench")
    table = table[table["model"].isin(SMALL_MODELS)].drop_duplicates(["question", "model"])
    answered = table.groupby("question")["model"].nunique()
    first = [q for q in table["question"].drop_duplicates() if answered[q] == len(SMALL_MODELS)][:20]
    return table[table["question"].isin(first)].reset_index(drop=True)


def per_column(train):
    """Every column standardised, whatever the rows: the probe's scaling before probe_scaler."""
    from sklearn.preprocessing import StandardScaler

    return StandardScaler().fit(train)


def runs(x, y, xt, yt, held) -> dict:
    """Test acc@1 (percent) and seconds of the torch probe and of sklearn at tol 1e-3 and 1e-6."""
    row = {}
    for key, run in (("torch", lambda: linear_probe(x, y, xt, yt, 0, held)),
                     ("sklearn_tol_1e-3", lambda: sklearn_probe(x, y, xt, yt, 0, held)),
                     ("sklearn_tol_1e-6", lambda: sklearn_probe(x, y, xt, yt, 0, held, tol=1e-6))):
        start = time.perf_counter()
        row[key] = 100 * run()["acc@1"]
        row[key + "_s"] = round(time.perf_counter() - start, 1)
    return row


def small_row(encoder, name: str) -> dict:
    """The pooled scores of ``SMALL`` over its 5 question folds, and the per-column probe's beside them."""
    table = small_table()
    x = embed(qa_texts(table), encoder, progress=False)
    labels = np.asarray(class_labels(table).to_numpy(), dtype=object)
    folds = question_folds(table["question"])
    pooled: dict = {}
    sizes = [int((folds != fold).sum()) for fold in range(N_FOLDS)]
    for fold in range(N_FOLDS):
        tr, te = folds != fold, folds == fold
        held = folds[tr] == (fold + 1) % N_FOLDS
        row = runs(x[tr], labels[tr], x[te], labels[te], held)
        real, ev.probe_scaler = ev.probe_scaler, per_column
        try:
            row["torch_per_column"] = 100 * linear_probe(x[tr], labels[tr], x[te], labels[te], 0, held)["acc@1"]
        finally:
            ev.probe_scaler = real
        for key, value in row.items():  # percent of the fold's QAs -> QAs, and seconds, summed over folds
            pooled[key] = pooled.get(key, 0.0) + (value if key.endswith("_s") else value * te.sum() / 100)
    # a model folder (univar) trained or validated on some of these questions: the row checks agreement, not a
    # held-out score
    seen = read_seen(getattr(encoder, "path", None))
    trained_on = {} if seen is None else dict(zip(("test_qas_trained_on", "test_qas_validated_on"),
                                                  count_seen(seen, table["question"])))
    return {"set": SMALL, "encoder": name, "n_train": sizes, "n_test": len(table), "dim": int(x.shape[1]),
            **trained_on, **{k: round(v, 1) if k.endswith("_s") else 100 * v / len(table) for k, v in pooled.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default="xstest,local-llms,moralmachine,valuebench")
    parser.add_argument("--encoder", default="minilm")
    parser.add_argument("--langs", default="all", help="languages to keep, e.g. en (value_id.py's MT-bench control)")
    args = parser.parse_args()
    encoder, rows = get_encoder(args.encoder), []
    for name in args.sets.split(","):
        if name == SMALL:
            row = small_row(encoder, args.encoder)
        else:
            x, y, xt, yt, held = inputs(name, encoder, args.langs)
            label = name if args.langs == "all" else f"{name} ({args.langs})"
            row = {"set": label, "encoder": args.encoder, "n_train": len(y), "n_test": len(yt), **runs(x, y, xt, yt,
                                                                                                     held)}
        row["torch_minus_converged_sklearn"] = row["torch"] - row["sklearn_tol_1e-6"]
        row["old_minus_converged_sklearn"] = row["sklearn_tol_1e-3"] - row["sklearn_tol_1e-6"]
        rows.append(row)
        print({k: round(v, 2) if isinstance(v, float) else v for k, v in row.items()}, flush=True)
    path = RESULTS / "probe_agreement.json"  # scores of other sets and encoders are kept
    scores = json.loads(path.read_text())["scores"] if path.exists() else {}
    for r in rows:  # scores/<set>/<encoder>: a /-path for the docs' markers
        scores.setdefault(re.sub(r"[^a-z0-9-]+", "-", r["set"].lower()).strip("-"), {})[r["encoder"]] = r
    write_json(path, {"benchmark": "probe_agreement", "scores": scores})


if __name__ == "__main__":
    main()
