"""Validity: does univar's geometry see the *position* an answer takes, on sources it never saw? Leave one out.

For every bundled source with human position labels S (valuebench, donotanswer, xstest; ``univar datasets``):

- train the shipped recipe (``univar.model.recipe``) without S, as bench/transfer.py does (every other value
  source plus local-llms, never question fold 0), and the untrained residual (topic removal, no head) beside it;
- score S's question fold 0 with ``univar evaluate stance`` (:class:`univar.StanceValidity`) for univar,
  minilm, univar's base (minilm+use-multilingual), the untrained residual and tfidf;
- the figure per source is univar's stance-AUC margin over chance against the best baseline's,
  ``(univar AUC - 0.5) / (best baseline AUC - 0.5)``: 1 = as good as the best of the four, and the geometric
  mean over sources is the headline (target 1.5).

The non-value control asks whether the gain is selective: on the MT-bench English classes (general instructions,
never trained on) the k-NN gain over minilm of the shipped model (``--model``) must stay at most half its value
gain (the mean over the held-out sources above, the same fold-0 k-NN as bench/transfer.py), in points and as a
ratio.

``--set key=value`` overrides the recipe (``TrainConfig`` fields, JSON values) and ``--name`` writes the results
under another name, so each lever of docs/model.md ("Validity") is measured by this same script.
Writes bench/results/<name>_details.json (every score) and bench/results/<name>.json (ratios, ``make bench``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("UNIVAR_PROGRESS", "0")

from common import RESULTS, control_model, load_details, parse_overrides, report  # noqa: E402
from transfer import control, geomean, train_without  # noqa: E402
from value_id import scores, train_quiet  # noqa: E402

from univar.data import STANCE_LABELS  # noqa: E402
from univar.encoders import embed  # noqa: E402
from univar.evaluate import (  # noqa: E402
    StanceValidity,  # noqa: E402
    ValueIdentification,
    split_indices,
)
from univar.files import write_json  # noqa: E402
from univar.model.recipe import DEFAULT_CONFIG, DEFAULT_DATA  # noqa: E402
from univar.model.univar import UniVaR  # noqa: E402
from univar.qa import TEST_FOLD, class_labels, qa_texts, question_folds, read_qa  # noqa: E402
from univar.registry import get_encoder  # noqa: E402

SOURCES = tuple(STANCE_LABELS)  # valuebench, donotanswer, xstest
BASELINES = ("minilm", "base", "residual", "tfidf")  # "base": univar's own, DEFAULT_CONFIG["base"]
SCORER = StanceValidity(n_boot=1000, seed=0)
# the stance part's weights re-scored from one trained model (the blocks are unit vectors, so any weight's vectors
# follow from the trained one's): how stance AUC and identification trade as the weight grows
SWEEP = (0.0, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)


def knn_acc(vectors: np.ndarray, table) -> float:
    """k-NN (k=50) accuracy on question fold 0, as value_id.scores gives it, without the probe."""
    labels = class_labels(table).to_numpy()
    train, test = split_indices(labels, table["question"].to_numpy(), "question")
    return ValueIdentification(k=50).score_knn(vectors[train], labels[train], vectors[test], labels[test]).acc


def reweighted(vectors: np.ndarray, model: UniVaR, weight: float) -> np.ndarray:
    """The model's QA vectors with its stance part weighted ``weight`` instead of the trained one."""
    w, width = float(model.config["stance"]["weight"]), model.stance.dim
    norm = np.sqrt(1.0 + w * w)
    part, identity = vectors[:, :width] * norm / w, vectors[:, width:] * norm
    out = np.hstack([weight * part, identity])
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def held_out(source: str, tmp: Path, overrides: dict) -> dict:
    """Train without ``source``, then score its fold-0 questions for univar and every baseline."""
    table = read_qa(f"bundled:{source}")
    univar_dir, residual_dir = tmp / f"without-{source}", tmp / f"residual-without-{source}"
    info = train_without(source, univar_dir, **overrides)
    train_without(source, residual_dir, **{**overrides, "epochs": 0, "keep_base": 0.0, "stance_weight": 0.0})
    model = UniVaR.load(univar_dir)
    vectors = {"univar": model.encode_qas(table), "residual": UniVaR.load(residual_dir).encode_qas(table)}
    base = {**DEFAULT_CONFIG, **overrides}["base"]
    for name, spec in (("minilm", "minilm"), ("base", base), ("tfidf", "tfidf")):
        vectors[name] = embed(qa_texts(table), get_encoder(spec), progress=False)
    fold0 = np.flatnonzero(question_folds(table["question"]) == TEST_FOLD)
    test = table.iloc[fold0].reset_index(drop=True)
    stance = {name: SCORER.score(v[fold0], test, encoder=name).to_dict() for name, v in vectors.items()}
    knn = {name: scores(vectors[name], table, name)["knn_acc"] for name in ("univar", "minilm")}
    out = {"train": info, "base": base, "stance": stance, "knn": knn}
    if getattr(model, "stance", None) is not None:
        quick = StanceValidity(n_boot=0, probe=False)
        out["sweep"] = {}
        for weight in SWEEP:
            v = reweighted(vectors["univar"], model, weight)
            out["sweep"][str(weight)] = {"stance_auc": quick.score(v[fold0], test).stance_auc.value,
                                         "knn_acc": knn_acc(v, table)}
    return out


def rows_from(details: dict) -> list[dict]:
    rows, margins, gains, ratios = [], [], [], []
    for source in SOURCES:
        d = details.get("sources", {}).get(source)
        if d is None:
            continue
        s = d["stance"]
        best = max(BASELINES, key=lambda name: s[name]["stance_auc"])
        univar, top = s["univar"]["stance_auc"], s[best]["stance_auc"]
        margin = (univar - 0.5) / (top - 0.5) if top > 0.5 else float("nan")
        margins.append(margin)
        gains.append(d["knn"]["univar"] - d["knn"]["minilm"])
        ratios.append(d["knn"]["univar"] / d["knn"]["minilm"])
        low, high = s["univar"]["stance_auc_ci"]
        rows.append({
            "figure": f"{source}: univar stance-AUC margin / best baseline's (trained without {source}; fold 0, "
                      f"{s['univar']['n_questions']} questions; univar 95% CI {low:.3f} .. {high:.3f})",
            "value": univar, "baseline": top, "ratio": margin, "target": ">= 1 (not below the best)",
            "ok": bool(univar >= top), "best_baseline": best,
            **{f"auc_{name}": s[name]["stance_auc"] for name in ("univar", *BASELINES)},
            **{f"auc_cross_llm_{name}": s[name]["stance_auc_cross_llm"] for name in ("univar", *BASELINES)},
            **{f"probe_{name}": s[name]["probe_balanced_acc"] for name in ("univar", *BASELINES)},
            "probe_chance": s["univar"]["probe_chance"]})
    if len(margins) < len(SOURCES):
        return rows
    g = geomean(margins) if all(m > 0 for m in margins) else float("nan")
    rows.append({"figure": "geometric mean over labelled sources: univar stance-AUC margin / best baseline's",
                 "value": g, "baseline": 1.0, "ratio": g, "target": ">= 1.5", "ok": bool(g >= 1.5)})
    c = details.get("control")
    if c:
        value_gain, value_ratio = float(np.mean(gains)), geomean(ratios)
        rows.append({"figure": "mtbench-en control: k-NN gain over minilm in points / mean held-out value gain",
                     "value": c["gain"], "baseline": value_gain, "ratio": c["gain"] / value_gain,
                     "target": "<= 0.5", "ok": bool(c["gain"] <= 0.5 * value_gain)})
        rows.append({"figure": "mtbench-en control: (univar / minilm - 1) / (value sources' geometric mean - 1)",
                     "value": c["ratio"], "baseline": value_ratio, "ratio": (c["ratio"] - 1) / (value_ratio - 1),
                     "target": "<= 0.5", "ok": bool(c["ratio"] - 1 <= 0.5 * (value_ratio - 1))})
    return rows


def readme_table(rows: list[dict]) -> str:
    """The README's validity table, rendered from validity.json's rows (a test keeps the two equal)."""
    lines = ["| held-out source | minilm | base | untrained residual | tfidf | univar | margin / best's "
             "| cross-LLM AUC: best / univar | probe bal. acc: best / univar (chance) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        if "best_baseline" not in r:
            continue
        source, best = r["figure"].split(":")[0], r["best_baseline"]
        lines.append(f"| {source} | {r['auc_minilm']:.3f} | {r['auc_base']:.3f} | {r['auc_residual']:.3f} "
                     f"| {r['auc_tfidf']:.3f} | **{r['auc_univar']:.3f}** | {r['ratio']:.2f}x "
                     f"| {r[f'auc_cross_llm_{best}']:.3f} / {r['auc_cross_llm_univar']:.3f} "
                     f"| {r[f'probe_{best}']:.3f} / {r['probe_univar']:.3f} ({r['probe_chance']:.3f}) |")
    for r in rows:
        if "best_baseline" in r:
            continue
        verdict = "" if r.get("ok") is None else (" (ok)" if r["ok"] else " (missed)")
        lines.append(f"| {r['figure']} | | | | | | {r['ratio']:.3f}{verdict} | | |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", default=",".join(SOURCES), help="held-out sources to (re)run")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        help="override a recipe setting, key=value (repeatable)")
    parser.add_argument("--name", default="validity", help="results name (bench/results/<name>.json)")
    parser.add_argument("--model", default="univar", help="model for the MT-bench control (default: shipped)")
    parser.add_argument("--no-control", action="store_true", help="skip the MT-bench control")
    parser.add_argument("--readme", action="store_true", help="print the README table from <name>.json and stop")
    args = parser.parse_args()
    if args.readme:
        print(readme_table(json.loads((RESULTS / f"{args.name}.json").read_text())["rows"]))
        return 0
    import torch

    torch.set_num_threads(min(2, torch.get_num_threads()))
    overrides = parse_overrides(args.overrides)
    path = RESULTS / f"{args.name}_details.json"
    details = load_details(path, overrides, DEFAULT_CONFIG)
    with tempfile.TemporaryDirectory(prefix="univar-validity-") as tmp:
        for source in [s for s in args.sources.split(",") if s]:
            details.setdefault("sources", {})[source] = held_out(source, Path(tmp), overrides)
            print(source, json.dumps({k: v["stance_auc"] for k, v in details["sources"][source]["stance"].items()}),
                  flush=True)
            RESULTS.mkdir(exist_ok=True)
            write_json(path, details)
    if not args.no_control:
        with tempfile.TemporaryDirectory(prefix="univar-validity-") as tmp:
            details["control"] = control(control_model(args.model, overrides, Path(tmp),
                                                       lambda out, **o: train_quiet(list(DEFAULT_DATA), out, **o)))
        write_json(path, details)
    report(args.name, rows_from(details))
    return 0


if __name__ == "__main__":
    sys.exit(main())
