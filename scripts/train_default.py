"""``make model``: rebuild the shipped default UniVaR model and its model card.

Trains the recipe in ``univar.model.recipe`` (set mode over cached minilm + use-multilingual embeddings of
every bundled value source and local-llms, topic removed, question fold 0 never seen, fold 1 for early
stopping), writes the weights and ``univar.json`` to ``src/univar/model/shipped/``, then scores it against
minilm on fold 0 of each value dataset and writes ``MODEL_CARD.md`` beside the weights with those numbers and
the leave-one-source-out transfer table of ``bench/results/transfer.json`` (``--card-only`` re-scores and
rewrites the card without training). Training also writes ``training_questions.json`` (``univar.seen``: hashes of
the questions trained and validated on, which ``evaluate value-id`` warns about); ``--seen-only`` writes it for
the model in ``--out`` from the recipe's data without training.

    python scripts/train_default.py [--out DIR] [--no-card | --card-only | --seen-only]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from univar.seen import SEEN_FILE, write_seen  # noqa: E402  (light: no torch; training writes the same file)

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "src" / "univar" / "model" / "shipped"
CARD_DATA = ["valuebench", "fulcra", "donotanswer", "xstest", "moralmachine", "local-llms"]


def evaluate(model_dir: Path, datasets: list[str]) -> dict:
    from univar.encoders import embed
    from univar.evaluate import ValueIdentification
    from univar.model.univar import UniVaR
    from univar.qa import qa_texts, read_qa
    from univar.registry import get_encoder

    model, minilm, out = UniVaR.load(model_dir), get_encoder("minilm"), {}
    scorer = ValueIdentification(split="question")  # k=50, as `univar evaluate value-id --split question`
    for name in datasets:
        table = read_qa(f"bundled:{name}")
        for enc_name, vectors in (("minilm", embed(qa_texts(table), minilm, progress=False)),
                                  ("univar", model.encode_qas(table))):
            r = scorer.score(vectors, table, encoder=enc_name)
            out.setdefault(name, {})[enc_name] = {"n_classes": r.n_classes, "knn_acc": r.knn.acc,
                                                  "knn_f1": r.knn.f1, "lin_acc1": r.linear.acc_at_1,
                                                  "lin_acc10": r.linear.acc_at_10}
    return out


CARD = """# UniVaR default value encoder (`--encoder univar`)

A small residual head (`{params:,}` parameters, {size_mb:.1f} MB of safetensors) over frozen
all-MiniLM-L6-v2 and Universal Sentence Encoder multilingual embeddings of `Q: {{question}} A: {{answer}}`
texts, from which what the question alone predicts has been removed (below), trained with the multi-view InfoNCE
objective of UniVaR (arXiv 2404.07900): two random views (sets of 1..{lam} QAs) of one (LLM, language)
class must embed close together, views of other classes apart. Rebuilt by `make model`
(`scripts/train_default.py`); weights are `model.safetensors`, settings `univar.json`.

## Training data
{data}: {n_qas:,} QAs from {n_classes} (LLM, language) classes (answers in German stay German; Portuguese
answers are read in their English translation):
{classes}.
Question fold 0 (`sha1(question) % 5 == 0`, the `--split question` test fold) was never trained on; fold 1
({n_val:,} QAs) was held out for validation and early stopping; {n_train:,} QAs were trained on.
MT-bench (bundled, non-value) was left out on purpose: it is the control.

## Topic removal
For each base encoder, a ridge map `g` (alpha {topic_alpha:g}) predicts a QA's embedding from the embedding of
its question alone (`Q: {{question}} A: .`); the head reads the residual `e(QA) - g(e(Q))`, each encoder's part
L2-normalised. `g` is fitted once, in closed form, on the training QAs (no class labels). It takes away the
topic that makes sentence encoders match questions instead of LLMs, and it is what carries to LLMs never seen.
Each QA vector is `[{keep_base:g} * residual, head]`.

## Transfer to unseen LLMs and sources (leave one source out, `bench/transfer.py`)
{transfer}

## Validity: does the space see the position an answer takes? (leave one source out, `bench/validity.py`)
Within each question, the stance AUC is the chance that two answers with the same human (or rating) label are
more similar than two with different labels (0.5: the position is invisible); the figure is univar's margin over
0.5 against the best baseline's, each source scored by a model trained without it.
{validity}

## Settings
set mode, lambda {lam} (view sizes uniform in 1..{lam}), mean pooling, head hidden width {hidden},
dropout {dropout}; InfoNCE with cosine similarity and a fixed logit scale {scale:g} (the paper's),
same-class negatives {batching_text}; AdamW lr {lr:g}, weight decay {wd:g}, batch {batch} view pairs, seed {seed};
best epoch {best_epoch} of {epochs_run} (early stopping, patience {patience}); {seconds:.0f} s of training
(wall time on {threads} CPU threads, base embeddings from the cache; it depends on the machine's other load).

## Scores
Question fold 0, never seen in training; k-NN k=50, cosine; linear = logistic regression, its L2 strength chosen
on the training QAs of question fold 1.

| data | classes | encoder | k-NN acc | k-NN F1 | linear acc@1 | linear acc@10 |
|---|---|---|---|---|---|---|
{table}

Chance is 1 / classes. `bench/value_id.py` adds every baseline encoder, the cross-dataset
generalisation runs, and the lambda and batching ablations (`bench/results/`).

## Limits
- Only about 25 LLMs (some appear in several sources), mostly US-made, plus one small local model: \
the head has learned what separates these
  LLMs' answers, which is values *and* style; the MT-bench control measures how much of it carries over to
  non-value text. With answers in other languages, embed the English translation (`answer_en`).
- Unseen LLMs are embedded by the same head; how well their vectors separate is measured by the
  generalisation runs in `bench/results/value_id_details.json`, not guaranteed.
- The topic-free residual is kept beside the head (`keep_base` in `univar.json`): a head trained on a few
  dozen LLMs discards directions that separate others, and on held-out sources the head alone scores below
  the residual it reads (docs/model.md).
- The 12 local-llms classes are one small model (SmolLM2-135M) under four system prompts in en, de and pt;
  they add diversity, not strong value signal (their own k-NN scores are low for every encoder).
- MiniLM truncates a QA at 256 word pieces; longer answers are judged by their beginning. MiniLM reads
  English only; the multilingual part reads 16 languages, so answers in other languages are best embedded
  through their English translation (`answer_en`) all the same.
- A value vector describes answers, not the model's internal values; compare classes only with the
  bootstrap spread (`UniVaR.embed_llm`) in view.
"""


def bench_table(name: str) -> str:
    """The README's table of bench/results/<name>.json (``make bench``, rendered by bench/<name>.py), or a note."""
    sys.path.insert(0, str(ROOT / "bench"))
    readme_table = __import__(name).readme_table
    path = ROOT / "bench" / "results" / f"{name}.json"
    if not path.exists():
        return f"Not measured yet: run `python bench/{name}.py`."
    result = json.loads(path.read_text())
    return f"Measured {result['when']} (question fold 0 of each held-out source):\n\n" + readme_table(result["rows"])


def write_card(folder: Path, scores: dict, seconds: float) -> None:
    config = json.loads((folder / "univar.json").read_text())
    t, v = config["training"], config["validation"]
    rows = []
    for name, per in scores.items():
        for enc, s in per.items():
            acc10 = "-" if s["lin_acc10"] is None else f"{100 * s['lin_acc10']:.2f}"  # None: 10 or fewer classes
            rows.append(f"| {name} | {s['n_classes']} | {enc} | {100 * s['knn_acc']:.2f} | {100 * s['knn_f1']:.2f} | "
                        f"{100 * s['lin_acc1']:.2f} | {acc10} |")
    from safetensors.torch import load_file

    params = sum(x.numel() for x in load_file(str(folder / "model.safetensors")).values())
    text = CARD.format(
        params=params, size_mb=(folder / "model.safetensors").stat().st_size / 1e6, lam=config["lambda"],
        data=t["data"], n_qas=t["n_qas"], n_classes=len(t["classes"]),
        classes=", ".join(f"`{c}`" for c in t["classes"]),
        n_val=t["n_val"], n_train=t["n_train"], hidden=t["hidden"], dropout=t["dropout"], scale=t["scale"],
        batching_text={"mask": "masked out of the loss", "class": "kept out by class-aware batches",
                       "none": "not handled (the paper)"}[t["batching"]],
        lr=t["lr"], wd=t["weight_decay"], batch=t["batch_size"], seed=t["seed"], best_epoch=v["best_epoch"],
        epochs_run=len(v["history"]) - 1, patience=t["patience"], seconds=seconds, threads=t["threads"],
        table="\n".join(rows), topic_alpha=t.get("topic_alpha") or 0, keep_base=t.get("keep_base", 0),
        transfer=bench_table("transfer"), validity=bench_table("validity"))
    from univar.files import atomic_write

    atomic_write(folder / "MODEL_CARD.md", text)


def write_recipe_seen(folder: Path) -> Path:
    """Write the seen-questions file of the model in ``folder`` trained by the recipe, without retraining: the
    questions of the recipe's data outside its excluded folds and validation fold (as training splits them) and of
    its validation fold. Refused when those counts are not the ones the model's univar.json records (the data
    changed since it was trained)."""
    import numpy as np

    from univar.model.recipe import DEFAULT_CONFIG, DEFAULT_DATA
    from univar.qa import question_folds, read_many

    training = json.loads((folder / "univar.json").read_text())["training"]
    table = read_many(list(DEFAULT_DATA))
    folds = question_folds(table["question"])
    val_fold = DEFAULT_CONFIG["val_fold"]
    trained = ~np.isin(folds, DEFAULT_CONFIG["exclude_folds"]) & (folds != val_fold)
    validation = folds == val_fold
    counts = (len(table), int(trained.sum()), int(validation.sum()))
    if counts != (training["n_qas"], training["n_train"], training["n_val"]):
        raise SystemExit(f"{folder}: the recipe's data now gives {counts} (QAs, trained, validation), the model "
                         f"recorded {(training['n_qas'], training['n_train'], training['n_val'])}; retrain instead")
    return write_seen(folder, table["question"][trained], table["question"][validation])


def main() -> int:
    parser = argparse.ArgumentParser(description="Rebuild the shipped UniVaR model.")
    parser.add_argument("--out", type=Path, default=SHIPPED)
    parser.add_argument("--no-card", action="store_true", help="train only")
    parser.add_argument("--card-only", action="store_true",
                        help="do not train: re-score the model in --out and rewrite its card (after a change to the "
                             "evaluation), keeping the training time the card records")
    parser.add_argument("--seen-only", action="store_true",
                        help=f"do not train: write {SEEN_FILE} (hashes of the training questions) for the model in "
                             "--out from the recipe's data, checked against the QA counts its univar.json records")
    args = parser.parse_args()
    if args.seen_only:
        print(f"{write_recipe_seen(args.out)}")
        return 0
    if args.card_only:
        old = re.search(r"(\d+) s of training", (args.out / "MODEL_CARD.md").read_text())
        scores = evaluate(args.out, CARD_DATA)
        print(json.dumps(scores, indent=2))
        write_card(args.out, scores, float(old.group(1)) if old else float("nan"))
        return 0

    import torch

    from univar.model.config import TrainConfig
    from univar.model.recipe import DEFAULT_CONFIG, DEFAULT_DATA
    from univar.model.train import train_table
    from univar.qa import read_many

    torch.set_num_threads(2)
    table = read_many(list(DEFAULT_DATA))
    start = time.perf_counter()
    # overwrite: this replaces the shipped model on purpose; training builds the new one beside it (every file
    # it writes) and swaps it in whole, so a kill leaves the old model and its card as they were
    result = train_table(table, TrainConfig(**DEFAULT_CONFIG), args.out, progress=True, report=print, overwrite=True)
    seconds = time.perf_counter() - start
    shutil.rmtree(args.out / "checkpoint", ignore_errors=True)  # the package ships the model, not its training state
    print(f"trained in {seconds:.0f}s; best val k-NN acc {result.best_score:.4f} at epoch {result.best_epoch} "
          f"(base {result.base_score:.4f}) -> {args.out}")
    if not args.no_card:
        scores = evaluate(args.out, CARD_DATA)
        print(json.dumps(scores, indent=2))
        write_card(args.out, scores, seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
