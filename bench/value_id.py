"""Value identification of every offline encoder and the shipped UniVaR model (the in-distribution targets).

All on the question-disjoint split (fold 0, which the shipped model never saw):

1. ``encoders``: every baseline and ``univar`` on bundled ValueBench and FULCRA: k-NN acc / F1, linear
   acc@1 / @10; target: univar k-NN >= 2.0x the best baseline's and linear acc@1 >= the best baseline + 5
   points (ValueBench);
2. ``generalisation``: the shipped recipe trained on ValueBench only, tested on FULCRA (other LLMs, other
   questions), and the reverse; target: not below minilm. Also with bundled local-llms added to training
   (12 more classes, none of them in the test set);
3. ``control``: MT-bench (non-value QAs; English classes by default, as minilm reads English): univar's k-NN
   gain over minilm must be smaller than on ValueBench;
4. ``ablations``: the shipped recipe with lambda in (1, 5, 20), and with same-class negatives masked /
   kept out by class-aware batches / not handled (the paper), tested on ValueBench fold 0.

Parts can be run one at a time (``--parts control``); every run merges its scores into
bench/results/value_id_details.json and rewrites bench/results/value_id.json (ratios, for ``make bench``).
Training runs in parts 2 and 4 are capped at ``--epochs`` (default: the shipped recipe's).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("UNIVAR_PROGRESS", "0")

from common import RESULTS, report  # noqa: E402

from univar.encoders import BASELINES, embed  # noqa: E402
from univar.evaluate import ValueIdentification, paired_difference, split_indices  # noqa: E402
from univar.files import write_json  # noqa: E402
from univar.model.config import TrainConfig  # noqa: E402
from univar.model.recipe import DEFAULT_CONFIG, DEFAULT_DATA  # noqa: E402
from univar.model.train import train_table  # noqa: E402
from univar.model.univar import UniVaR  # noqa: E402
from univar.qa import class_labels, qa_texts, read_many, read_qa  # noqa: E402
from univar.registry import get_encoder  # noqa: E402

PARTS = ("encoders", "generalisation", "control", "ablations")
DETAILS = RESULTS / "value_id_details.json"
SCORER = ValueIdentification(split="question")  # k=50: `univar evaluate value-id --split question`


def scores(vectors, table, name: str) -> dict:
    r = SCORER.score(vectors, table, encoder=name)
    return {"knn_acc": r.knn.acc, "knn_f1": r.knn.f1, "lin_acc1": r.linear.acc_at_1,
            "lin_acc10": r.linear.acc_at_10, "n_classes": r.n_classes, "chance": r.chance, "n_test": r.n_test}


def univar_scores(model_dir: Path, table) -> dict:
    return scores(UniVaR.load(model_dir).encode_qas(table), table, "univar")


def baseline_scores(name: str, table) -> dict:
    try:
        enc = get_encoder(name)
    except Exception as exc:  # an optional encoder that is not installed here
        return {"error": str(exc)}
    return scores(embed(qa_texts(table), enc, progress=False), table, name)


def knn_difference(vectors_a, vectors_b, table) -> dict:
    """k-NN accuracy of A minus B on the same test QAs, with a 95% interval resampling test questions."""
    labels, questions = class_labels(table).to_numpy(), table["question"].to_numpy()
    train_rows, test_rows = split_indices(labels, questions, "question")
    correct = [SCORER.score_knn(v[train_rows], labels[train_rows], v[test_rows], labels[test_rows]).correct
               for v in (np.asarray(vectors_a), np.asarray(vectors_b))]
    return paired_difference(correct[0], correct[1], questions[test_rows])


def train_quiet(data: list[str], out: Path, **overrides) -> dict:
    cfg = TrainConfig(**{**DEFAULT_CONFIG, **overrides})
    start = time.perf_counter()
    result = train_table(read_many(data), cfg, out, progress=False)
    return {"seconds": round(time.perf_counter() - start, 1), "epochs": cfg.epochs, "best_epoch": result.best_epoch,
            "val_knn_acc": result.best_score, "val_base": result.base_score, **overrides}


def rows_from(details: dict) -> list[dict]:
    rows = []
    for ds, per in details.get("encoders", {}).items():
        ok = {k: v for k, v in per.items() if k != "univar" and "error" not in v}
        if "univar" not in per or not ok:
            continue
        u = per["univar"]
        best_knn = max(ok, key=lambda k: ok[k]["knn_acc"])
        best_lin = max(ok, key=lambda k: ok[k]["lin_acc1"])
        target = ds == "valuebench"
        rows.append({"figure": f"{ds}: univar k-NN acc / best baseline ({best_knn})", "value": u["knn_acc"],
                     "baseline": ok[best_knn]["knn_acc"], "ratio": u["knn_acc"] / ok[best_knn]["knn_acc"],
                     "target": ">= 2.0" if target else "",
                     "ok": (u["knn_acc"] >= 2 * ok[best_knn]["knn_acc"]) if target else None})
        rows.append({"figure": f"{ds}: univar k-NN acc / minilm", "value": u["knn_acc"],
                     "baseline": per["minilm"]["knn_acc"], "ratio": u["knn_acc"] / per["minilm"]["knn_acc"],
                     "target": "", "ok": None})
        rows.append({"figure": f"{ds}: univar linear acc@1 - best baseline ({best_lin}), points",
                     "value": u["lin_acc1"], "baseline": ok[best_lin]["lin_acc1"],
                     "ratio": 100 * (u["lin_acc1"] - ok[best_lin]["lin_acc1"]), "target": ">= 5" if target else "",
                     "ok": (u["lin_acc1"] - ok[best_lin]["lin_acc1"] >= 0.05) if target else None})
    for run, g in details.get("generalisation", {}).items():
        for metric, label in (("knn_acc", "k-NN acc"), ("lin_acc1", "linear acc@1")):
            src, dst = run.split("->")
            rows.append({"figure": f"train {src} -> test {dst}: {label} / minilm",
                         "value": g["univar"][metric], "baseline": g["minilm"][metric],
                         "ratio": g["univar"][metric] / g["minilm"][metric], "target": ">= 1.0",
                         "ok": g["univar"][metric] >= g["minilm"][metric]})
        d = g.get("knn_minus_minilm")
        if d:  # is the difference beyond the noise of the test questions?
            rows.append({"figure": f"train {src} -> test {dst}: k-NN acc univar - minilm, points "
                                   f"(95% CI {100 * d['ci_low']:+.1f} .. {100 * d['ci_high']:+.1f})",
                         "value": d["diff"], "baseline": 0.0, "ratio": 100 * d["diff"], "target": "", "ok": None})
    c = details.get("control")
    if c:
        rows.append({"figure": "k-NN gain over minilm (ratio): mtbench control / valuebench",
                     "value": c["gain_mtbench"], "baseline": c["gain_valuebench"],
                     "ratio": c["gain_mtbench"] / c["gain_valuebench"],
                     "target": "< 1.0", "ok": c["gain_mtbench"] < c["gain_valuebench"]})
    ref = details.get("encoders", {}).get("valuebench", {}).get("univar")
    for kind in ("lambda", "batching"):
        for key, a in details.get(kind, {}).items():
            rows.append({"figure": f"ablation {kind}={key}: valuebench k-NN acc / shipped",
                         "value": a["valuebench"]["knn_acc"],
                         "baseline": ref["knn_acc"] if ref else None,
                         "ratio": a["valuebench"]["knn_acc"] / ref["knn_acc"] if ref else float("nan"),
                         "target": "", "ok": None})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma list of {', '.join(PARTS)}")
    parser.add_argument("--encoders", default=",".join(BASELINES), help="baselines for part 1")
    parser.add_argument("--model", default="univar", help="the model to test (default: the shipped one)")
    parser.add_argument("--control-langs", default="en", help="MT-bench languages for the control (or all)")
    parser.add_argument("--epochs", type=int, default=DEFAULT_CONFIG["epochs"],
                        help="epoch cap of the training runs in parts 2 and 4 (early stopping may end sooner)")
    args = parser.parse_args()
    parts = [p for p in args.parts.split(",") if p]
    import torch

    torch.set_num_threads(min(2, torch.get_num_threads()))
    model_dir = Path(UniVaR.load(args.model).path)
    tables = {name: read_qa(f"bundled:{name}") for name in ("valuebench", "fulcra", "mtbench")}
    details = json.loads(DETAILS.read_text()) if DETAILS.exists() else {}
    details.update({"model": str(model_dir.name), "split": "question (fold 0)"})

    def save() -> None:
        RESULTS.mkdir(exist_ok=True)
        write_json(DETAILS, details)

    if "encoders" in parts:
        for ds in ("valuebench", "fulcra"):
            per = details.setdefault("encoders", {}).setdefault(ds, {})
            for name in [e for e in args.encoders.split(",") if e]:
                per[name] = baseline_scores(name, tables[ds])
                print(ds, name, per[name], flush=True)
                save()
            per["univar"] = univar_scores(model_dir, tables[ds])
            print(ds, "univar", per["univar"], flush=True)
            save()

    with tempfile.TemporaryDirectory(prefix="univar-bench-") as tmp:
        tmp = Path(tmp)
        if "generalisation" in parts:
            # the check (one dataset's LLMs only), then the same with the 12 SmolLM2 classes added:
            # more diverse training classes are the lever for unseen LLMs
            for src, dst in (("valuebench", "fulcra"), ("fulcra", "valuebench"),
                             ("valuebench+local-llms", "fulcra"), ("fulcra+local-llms", "valuebench")):
                out = tmp / f"only-{src}"
                info = train_quiet([f"bundled:{d}" for d in src.split("+")], out, epochs=args.epochs)
                minilm = (details.get("encoders", {}).get(dst, {}).get("minilm")
                          or baseline_scores("minilm", tables[dst]))
                u_vectors = UniVaR.load(out).encode_qas(tables[dst])
                m_vectors = embed(qa_texts(tables[dst]), get_encoder("minilm"), progress=False)
                details.setdefault("generalisation", {})[f"{src}->{dst}"] = {
                    "train": info, "univar": scores(u_vectors, tables[dst], "univar"), "minilm": minilm,
                    "knn_minus_minilm": knn_difference(u_vectors, m_vectors, tables[dst])}
                print("generalisation", src, "->", dst, details["generalisation"][f"{src}->{dst}"], flush=True)
                save()

        if "control" in parts:
            mt = tables["mtbench"]
            if args.control_langs != "all":  # minilm (the shipped base) reads English only
                mt = mt[mt["lang"].isin(args.control_langs.split(","))].reset_index(drop=True)
            vb = details.get("encoders", {}).get("valuebench") or {
                "minilm": baseline_scores("minilm", tables["valuebench"]),
                "univar": univar_scores(model_dir, tables["valuebench"])}
            m_mt, u_mt = baseline_scores("minilm", mt), univar_scores(model_dir, mt)
            details["control"] = {"mtbench": {"minilm": m_mt, "univar": u_mt}, "langs": args.control_langs,
                                  "gain_valuebench": vb["univar"]["knn_acc"] / vb["minilm"]["knn_acc"],
                                  "gain_mtbench": u_mt["knn_acc"] / m_mt["knn_acc"]}
            print("control", details["control"], flush=True)
            save()

        if "ablations" in parts:
            vbt = tables["valuebench"]
            details["ablation_epochs"] = args.epochs
            for kind, values in (("lambda", (1, 5, 20)), ("batching", ("mask", "class", "none"))):
                for value in values:
                    out = tmp / f"{kind}-{value}"
                    key = "lam" if kind == "lambda" else "batching"
                    info = train_quiet(list(DEFAULT_DATA), out, epochs=args.epochs, **{key: value})
                    details.setdefault(kind, {})[str(value)] = {"train": info, "valuebench": univar_scores(out, vbt)}
                    print(kind, value, details[kind][str(value)], flush=True)
                    save()

    save()
    report("value_id", rows_from(details))
    return 0


if __name__ == "__main__":
    sys.exit(main())
