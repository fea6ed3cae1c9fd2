"""Encoders on ``bundled:local-llms`` (SmolLM2-135M in value-steered configurations, made with this
project's own elicitation pipeline), on the question-disjoint split.

1. ``classes``: value identification over every (configuration, language) class;
2. ``steered``: English answers only, target = configuration. The model is the same in every class; only
   the system prompt's stated values (and, for one configuration, the temperature) differ, so separating
   them means reading values (or the sampling noise) rather than a model's style;
3. ``translationese``: language identification (``--target lang``) between native English answers and
   Portuguese answers machine-translated back to English. Lower is better for a value encoder: a high
   score means it keys on translation artefacts (the paper: UniVaR about 8% vs 12-18% for sentence
   encoders, over 25 languages; here 2 languages, chance 50%).

Figures: each encoder's k-NN accuracy as a ratio to minilm's in the same run (univar's is the one with a
target: above 1 for ``steered``, at most 1 for ``translationese``), written to bench/results/local_llms.json.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
os.environ.setdefault("UNIVAR_PROGRESS", "0")
from common import RESULTS, report  # noqa: E402

ENCODERS = ("minilm", "minilm-int8", "tfidf", "use-multilingual", "univar")


def main() -> None:
    from univar.evaluate import ValueIdentification
    from univar.files import write_json
    from univar.qa import read_qa
    from univar.registry import get_encoder

    table = read_qa("bundled:local-llms")
    # fold by the English original, so that a question and its Portuguese translation share a fold
    english = table["question_en"].fillna("").astype(str)
    table = table.assign(question=english.where(english.str.strip() != "", table["question"]))
    tasks = {
        "classes": (table, "class"),
        "steered": (table[table["lang"] == "en"].reset_index(drop=True), "model"),
        "translationese": (table[table["lang"].isin(["en", "pt"])].reset_index(drop=True), "lang"),
    }
    details: dict = {}
    for task, (data, target) in tasks.items():
        for name in ENCODERS:
            try:
                enc = get_encoder(name)
            except Exception as exc:  # an optional encoder that is not installed here
                details.setdefault(task, {})[name] = {"error": str(exc)}
                continue
            r = ValueIdentification(split="question", target=target).evaluate(enc, data)
            details.setdefault(task, {})[name] = {"knn_acc": r.knn.acc, "knn_f1": r.knn.f1,
                                                  "lin_acc1": r.linear.acc_at_1, "n_classes": r.n_classes,
                                                  "chance": r.chance, "n_test": r.n_test}
            print(task, name, details[task][name], flush=True)
    RESULTS.mkdir(exist_ok=True)
    write_json(RESULTS / "local_llms_details.json", details)
    rows = []
    targets = {"steered": (">= 1.0", lambda r: r >= 1.0), "translationese": ("<= 1.0", lambda r: r <= 1.0)}
    for task, per in details.items():
        base = per["minilm"]["knn_acc"]
        for name, s in per.items():
            if "error" in s or name == "minilm":
                continue
            text, check = targets.get(task, ("", None)) if name == "univar" else ("", None)
            ratio = s["knn_acc"] / base
            rows.append({"figure": f"{task}: {name} k-NN acc / minilm (chance {s['chance']:.2f})",
                         "value": s["knn_acc"], "baseline": base, "ratio": ratio, "target": text,
                         "ok": check(ratio) if check else None})
    report("local_llms", rows)


if __name__ == "__main__":
    main()
