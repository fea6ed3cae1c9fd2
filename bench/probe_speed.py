"""Time of ``evaluate value-id`` on 200,000 cached QAs (the rows of bench/memory.py: ValueBench + FULCRA + MT-Bench
repeated, the default ``univar`` encoder's vectors, 127 classes, random split): target under 2 minutes on the
2-core machine. Also the linear probe alone, against the scikit-learn ``LogisticRegressionCV`` probe it replaced
(kept below as ``sklearn_probe``), on 20,000 QAs (and on 200,000 with ``--sklearn-200k``: about 10-13 minutes).

The embeddings come from the cache (~/.cache/univar; the first run embeds the 35,555 distinct QAs, minutes), so the
timed part is what ``univar evaluate value-id`` does after embedding: the split, k-NN and the probe."""

from __future__ import annotations

import os
import sys
import time

import numpy as np
import pandas as pd

sys.path.insert(0, os.path.dirname(__file__))
from common import report  # noqa: E402

BUDGET = 120.0


def sklearn_probe(train, y_train, test, y_test, seed=0, held_out=None, tol=1e-3) -> dict:
    """The probe the torch one replaced: LogisticRegressionCV (lbfgs, tol 1e-3) over the same grid and held-out
    rows; a smaller ``tol`` runs it closer to convergence (bench/experiments/probe_agreement.py). The features are
    the torch probe's (``probe_scaler``: scikit-learn's StandardScaler wherever the training rows outnumber the
    dimensions)."""
    from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
    from sklearn.metrics import f1_score

    from univar.evaluate.probe import PROBE_CS, _probe_held_out, probe_scaler, top_k_accuracy

    y_train = np.asarray(y_train, dtype=object)
    scaler = probe_scaler(train)
    x_train = scaler.transform(train)
    mask = _probe_held_out(y_train, None if held_out is None else np.asarray(held_out, dtype=bool), seed)
    if mask is None:
        probe = LogisticRegression(C=0.1, max_iter=20000 if tol < 1e-3 else 2000, tol=tol, random_state=seed)
        probe.fit(x_train, y_train)
    else:
        folds = [(np.flatnonzero(~mask), np.flatnonzero(mask))]
        probe = LogisticRegressionCV(Cs=list(PROBE_CS), l1_ratios=(0.0,), cv=folds, scoring="accuracy",
                                     max_iter=20000 if tol < 1e-3 else 2000, tol=tol, random_state=seed,
                                     use_legacy_attributes=False)
        probe.fit(x_train, y_train)
    proba = probe.predict_proba(scaler.transform(test))
    out = {f"acc@{k}": top_k_accuracy(proba, probe.classes_, y_test, k) if k == 1 or len(probe.classes_) > k else None
           for k in (1, 5, 10)}
    out["f1"] = float(f1_score(y_test, probe.classes_[proba.argmax(axis=1)], average="weighted", zero_division=0))
    return out


def corpus():
    """The 35,555 bundled QAs of bench/memory.py, their ``univar`` vectors, class labels, questions and table."""
    from univar.encoders import embed
    from univar.qa import class_labels, qa_texts, read_qa
    from univar.registry import get_encoder

    base = pd.concat([read_qa(f"bundled:{n}") for n in ("valuebench", "fulcra", "mtbench")], ignore_index=True)
    vectors = embed(qa_texts(base), get_encoder("univar"), progress=False)
    return vectors, class_labels(base, "class").to_numpy(), base["question"].to_numpy(), base


def probe_inputs(labels, questions, n_rows: int, seed: int = 0):
    """The rows ValueIdentification.score gives the probe: its training QAs (sampled to PROBE_MAX_TRAIN) and test
    QAs; the scikit-learn probe gets the same ones."""
    from univar.evaluate.probe import PROBE_MAX_TRAIN
    from univar.evaluate.splits import split_indices

    train, test = split_indices(labels, questions, "random", 0.2, seed)
    if len(train) > PROBE_MAX_TRAIN:
        train = np.sort(np.random.default_rng(seed).choice(train, PROBE_MAX_TRAIN, replace=False))
    return train, test


def main() -> None:
    import univar.evaluate.identification as ev

    vectors, labels, questions, base = corpus()
    rows, extra = [], {"sizes": {}}
    timings = {}
    for n in (20_000, 200_000):
        pick = np.tile(np.arange(len(labels)), -(-n // len(labels)))[:n]  # memory.py's copies, head(n)
        x = vectors[pick]
        table = base[["model", "lang", "question"]].iloc[pick].reset_index(drop=True)  # labels: class_labels(base)
        spent = []
        real = ev.linear_probe

        def timed(*args, real=real, spent=spent):
            start = time.perf_counter()
            out = real(*args)
            spent.append(time.perf_counter() - start)
            return out

        ev.linear_probe = timed
        try:
            start = time.perf_counter()
            result = ev.ValueIdentification(split="random").score(x, table, encoder="univar")
            total = time.perf_counter() - start
        finally:
            ev.linear_probe = real
        linear = result.linear.to_dict() if hasattr(result.linear, "to_dict") else dict(result.linear)
        timings[n] = {"evaluate_s": total, "probe_s": spent[0], "other_s": total - spent[0]}
        extra["sizes"][str(n)] = {"n_train": result.n_train, "n_test": result.n_test, "probe_rows": min(
            result.n_train, ev.PROBE_MAX_TRAIN), "classes": result.n_classes, "dim": int(x.shape[1]),
            **timings[n], "probe": linear}
        print(f"{n:,} QAs: evaluate {total:.1f} s (probe {spent[0]:.1f} s, split + k-NN {total - spent[0]:.1f} s); "
              f"probe {linear}", flush=True)
    # the scikit-learn probe last: its OpenMP threads stay busy a while after it returns and would slow torch
    for n in (20_000, 200_000) if "--sklearn-200k" in sys.argv else (20_000,):
        pick = np.tile(np.arange(len(labels)), -(-n // len(labels)))[:n]
        x, y, q = vectors[pick], labels[pick], questions[pick]
        train, test = probe_inputs(y, q, n)
        start = time.perf_counter()
        old = sklearn_probe(x[train], y[train], x[test], y[test])
        timings[n]["sklearn_probe_s"] = time.perf_counter() - start
        extra["sizes"][str(n)].update(sklearn_probe_s=timings[n]["sklearn_probe_s"], sklearn_probe=old)
        print(f"{n:,} QAs: sklearn probe {timings[n]['sklearn_probe_s']:.1f} s; probe {old}", flush=True)

    big = timings[200_000]
    rows.append({"figure": "evaluate value-id 200k QAs time (s)", "value": big["evaluate_s"], "baseline": BUDGET,
                 "ratio": big["evaluate_s"] / BUDGET, "target": "< 1", "ok": big["evaluate_s"] < BUDGET})
    rows.append({"figure": "linear probe 200k QAs time / 2 min", "value": big["probe_s"], "baseline": BUDGET,
                 "ratio": big["probe_s"] / BUDGET, "target": "< 1", "ok": big["probe_s"] < BUDGET})
    for n, t in timings.items():
        if "sklearn_probe_s" in t:
            rows.append({"figure": f"linear probe {n // 1000}k QAs: torch / sklearn time", "value": t["probe_s"],
                         "baseline": t["sklearn_probe_s"], "ratio": t["probe_s"] / t["sklearn_probe_s"],
                         "target": "< 1", "ok": t["probe_s"] < t["sklearn_probe_s"]})
    report("probe_speed", rows, extra)


if __name__ == "__main__":
    main()
