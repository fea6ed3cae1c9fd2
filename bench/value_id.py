"""Value identification of every offline encoder and the shipped UniVaR model (issue 3's targets).

All on the question-disjoint split (fold 0, which the shipped model never saw):

1. every baseline and ``univar`` on bundled ValueBench and FULCRA: k-NN acc / F1, linear acc@1 / @10;
   target: univar k-NN >= 2.0x the best baseline's, linear acc@1 >= best baseline + 5 points (ValueBench);
2. generalisation: a model trained on ValueBench only, tested on FULCRA (other LLMs, other questions), and
   the reverse; target: not below minilm;
3. the non-value control, MT-bench: univar's k-NN gain over minilm must be smaller than on ValueBench;
4. ablations on the shipped recipe: lambda in (1, 5, 20), and same-class negatives masked / class-aware
   batches / not handled (the paper).

Writes bench/results/value_id.json (ratios, for ``make bench``) and bench/results/value_id_details.json
(every score). ``--quick`` skips the ablations and the slow baselines.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("UNIVAR_PROGRESS", "0")

from common import RESULTS, report  # noqa: E402

import numpy as np  # noqa: E402

from univar.encoders import BASELINES, embed, get_encoder  # noqa: E402
from univar.evaluate import evaluate_embeddings  # noqa: E402
from univar.model import TrainConfig, UniVaR, train  # noqa: E402
from univar.model.recipe import DEFAULT_CONFIG, DEFAULT_DATA  # noqa: E402
from univar.qa import class_labels, qa_texts, read_many, read_qa  # noqa: E402


def scores(vectors: np.ndarray, table, name: str) -> dict:
    r = evaluate_embeddings(vectors, class_labels(table).to_numpy(), table["question"].tolist(), encoder=name,
                            split="question")
    return {"knn_acc": r.knn["acc"], "knn_f1": r.knn["f1"], "lin_acc1": r.linear["acc@1"],
            "lin_acc10": r.linear["acc@10"], "n_classes": r.n_classes, "chance": r.chance, "n_test": r.n_test}


def univar_scores(model_dir: Path, table, name: str = "univar") -> dict:
    return scores(UniVaR.load(model_dir).encode_qas(table), table, name)


def train_quiet(data: list[str], out: Path, **overrides) -> dict:
    cfg = TrainConfig(**{**DEFAULT_CONFIG, **overrides})
    start = time.perf_counter()
    result = train(read_many(data), cfg, out, progress=False)
    return {"seconds": round(time.perf_counter() - start, 1), "best_epoch": result.best_epoch,
            "val_knn_acc": result.best_score, "val_base": result.base_score}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="minilm baseline only, no ablations")
    parser.add_argument("--model", default="univar", help="the model to test (default: the shipped one)")
    parser.add_argument("--ablation-epochs", type=int, default=20,
                        help="epoch cap for the lambda / batching ablations (the shipped recipe allows 60)")
    parser.add_argument("--no-ablations", action="store_true", help="skip the lambda / batching ablations")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(min(2, torch.get_num_threads()))
    model_dir = Path(UniVaR.load(args.model).path)
    tables = {name: read_qa(f"bundled:{name}") for name in ("valuebench", "fulcra", "mtbench")}
    details: dict = {"model": str(model_dir), "split": "question", "encoders": {}, "generalisation": {},
                     "control": {}, "lambda": {}, "batching": {}}
    rows: list[dict] = []

    # 1. every encoder on both value datasets
    baselines = ["minilm"] if args.quick else list(BASELINES)
    for ds in ("valuebench", "fulcra"):
        table = tables[ds]
        per = details["encoders"].setdefault(ds, {})
        for name in baselines:
            try:
                enc = get_encoder(name)
            except Exception as exc:  # an optional encoder that is not installed here
                per[name] = {"error": str(exc)}
                continue
            per[name] = scores(embed(qa_texts(table), enc, progress=False), table, name)
            print(ds, name, per[name], flush=True)
        per["univar"] = univar_scores(model_dir, table)
        print(ds, "univar", per["univar"], flush=True)
        ok = {k: v for k, v in per.items() if k != "univar" and "error" not in v}
        best_knn = max(ok, key=lambda k: ok[k]["knn_acc"])
        best_lin = max(ok, key=lambda k: ok[k]["lin_acc1"])
        u = per["univar"]
        rows.append({"figure": f"{ds}: univar k-NN acc / best baseline ({best_knn})", "value": u["knn_acc"],
                     "baseline": ok[best_knn]["knn_acc"], "ratio": u["knn_acc"] / ok[best_knn]["knn_acc"],
                     "target": ">= 2.0" if ds == "valuebench" else "", "ok": (u["knn_acc"] >= 2 * ok[best_knn]["knn_acc"]) if ds == "valuebench" else None})
        rows.append({"figure": f"{ds}: univar linear acc@1 - best baseline ({best_lin}), points",
                     "value": u["lin_acc1"], "baseline": ok[best_lin]["lin_acc1"],
                     "ratio": 100 * (u["lin_acc1"] - ok[best_lin]["lin_acc1"]),
                     "target": ">= 5" if ds == "valuebench" else "", "ok": (u["lin_acc1"] - ok[best_lin]["lin_acc1"] >= 0.05) if ds == "valuebench" else None})

    with tempfile.TemporaryDirectory(prefix="univar-bench-") as tmp:
        tmp = Path(tmp)
        # 2. generalisation across datasets (unseen LLMs and questions)
        for src, dst in (("valuebench", "fulcra"), ("fulcra", "valuebench")):
            out = tmp / f"only-{src}"
            info = train_quiet([f"bundled:{src}"], out)
            u = univar_scores(out, tables[dst])
            m = details["encoders"][dst]["minilm"]
            details["generalisation"][f"{src}->{dst}"] = {"train": info, "univar": u, "minilm": m}
            print("generalisation", src, "->", dst, u, flush=True)
            for metric, label in (("knn_acc", "k-NN acc"), ("lin_acc1", "linear acc@1")):
                rows.append({"figure": f"train {src} only -> test {dst}: {label} / minilm", "value": u[metric],
                             "baseline": m[metric], "ratio": u[metric] / m[metric], "target": ">= 1.0",
                             "ok": u[metric] >= m[metric]})

        # 3. the non-value control
        mt = tables["mtbench"]
        m_mt = scores(embed(qa_texts(mt), get_encoder("minilm"), progress=False), mt, "minilm")
        u_mt = univar_scores(model_dir, mt)
        vb = details["encoders"]["valuebench"]
        gain_value = vb["univar"]["knn_acc"] / vb["minilm"]["knn_acc"]
        gain_control = u_mt["knn_acc"] / m_mt["knn_acc"]
        details["control"] = {"mtbench": {"minilm": m_mt, "univar": u_mt}, "gain_valuebench": gain_value,
                              "gain_mtbench": gain_control}
        print("control", details["control"], flush=True)
        rows.append({"figure": "k-NN gain over minilm: mtbench (control) / valuebench", "value": gain_control,
                     "baseline": gain_value, "ratio": gain_control / gain_value, "target": "< 1.0",
                     "ok": gain_control < gain_value})

        # 4. ablations on the shipped recipe, tested on ValueBench fold 0
        if not (args.quick or args.no_ablations):
            details["ablation_epochs"] = args.ablation_epochs
            vbt = tables["valuebench"]
            for lam in (1, 5, 20):
                out = tmp / f"lam{lam}"
                info = train_quiet(list(DEFAULT_DATA), out, lam=lam, epochs=args.ablation_epochs)
                details["lambda"][str(lam)] = {"train": info, "valuebench": univar_scores(out, vbt)}
                print("lambda", lam, details["lambda"][str(lam)], flush=True)
            for batching in ("mask", "class", "none"):
                out = tmp / f"batching-{batching}"
                info = train_quiet(list(DEFAULT_DATA), out, batching=batching, epochs=args.ablation_epochs)
                details["batching"][batching] = {"train": info, "valuebench": univar_scores(out, vbt)}
                print("batching", batching, details["batching"][batching], flush=True)
            mask_knn = details["batching"]["mask"]["valuebench"]["knn_acc"]
            for batching in ("class", "none"):
                v = details["batching"][batching]["valuebench"]["knn_acc"]
                rows.append({"figure": f"batching {batching} vs mask: k-NN acc ratio", "value": v,
                             "baseline": mask_knn, "ratio": v / mask_knn, "target": "", "ok": None})

    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "value_id_details.json").write_text(json.dumps(details, indent=2) + "\n")
    report("value_id", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
