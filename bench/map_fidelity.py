"""How much of the class structure value identification finds does the value map show?

For each case, the QAs of question fold 0 (value identification's held-out fold) are named by their 10
nearest QAs of the other folds in the map's 2-D coordinates; the ratio is that accuracy over k-NN's (k=50)
on the same QAs in the full embedding. Target: at least half. Cases:

- the demo: the demo's 400-question ValueBench sample, with the shipped model (LLMs it was trained on)
  and with minilm (a sentence encoder with little class signal: its map should be honest, not pretty);
- unseen LLMs: the same sample embedded by the recipe trained without ValueBench (``--unseen``, default
  on; it trains that model, a few minutes on 2 cores);
- the old map: a UMAP of the raw univar embeddings (what ``univar map`` drew before), for comparison;
- ``--add``: llama-7b-chat's answers to 200 questions outside the sample, relabelled, placed into the demo's
  univar map without refitting it: the share of them whose 10 nearest map QAs are mostly llama-7b-chat's.

Writes bench/results/map_fidelity.json.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("UNIVAR_PROGRESS", "0")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
from common import report  # noqa: E402

from univar.demo import DEMO_QUESTIONS, sample_questions  # noqa: E402
from univar.encoders import embed  # noqa: E402
from univar.evaluate import ValueIdentification  # noqa: E402
from univar.evidence import neighbour_accuracy  # noqa: E402
from univar.qa import (  # noqa: E402  # noqa: E402
    TEST_FOLD,
    class_names,  # noqa: E402
    qa_texts,
    question_folds,
    read_qa,
)
from univar.registry import get_encoder  # noqa: E402
from univar.viz import fit_map  # noqa: E402

TARGET = 0.5


def case(name: str, table, vectors: np.ndarray, raw: bool = False) -> tuple[dict, object]:
    """Fidelity of one map: held-out 10-NN on the map against k-NN in the full space (and the map)."""
    labels = class_names(table)
    questions = table["question"].astype(str).tolist()
    held = question_folds(questions) == TEST_FOLD
    full = ValueIdentification(split="question", seed=0).score(vectors, table, encoder=name).knn.acc
    start = time.perf_counter()
    vmap = None
    if raw:  # the map as it was: UMAP (cosine) of the embeddings themselves
        import umap

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            coords = umap.UMAP(n_neighbors=15, min_dist=0.1, metric="cosine", random_state=0,
                               n_epochs=200).fit_transform(vectors)
        basis = "embedding"
    else:
        vmap = fit_map(vectors, labels, seed=0, questions=questions)
        coords, basis = vmap.coords, vmap.basis
    on_map = neighbour_accuracy(coords, labels, k=10, query=held, reference=~held)
    _, counts = np.unique(labels, return_counts=True)
    return {"case": name, "basis": basis, "map_10nn_held_out": on_map, "full_space_knn_held_out": full,
            "map_10nn_all": neighbour_accuracy(coords, labels, k=10), "chance": float(counts.max() / counts.sum()),
            "held_out_qas": int(held.sum()), "seconds": round(time.perf_counter() - start, 1)}, vmap


def placed(vmap, full, sample, encoder, source: str = "llama-7b-chat", n_questions: int = 200) -> dict:
    """Where ``--add`` puts a known LLM under a new name: the share of its QAs in its own region of the map."""
    from sklearn.neighbors import KNeighborsClassifier

    outside = full[~full["question"].isin(set(sample["question"])) & (full["model"] == source)]
    questions = outside["question"].drop_duplicates().sample(n_questions, random_state=0)
    new = outside[outside["question"].isin(set(questions))]
    coords = vmap.transform(embed(qa_texts(new), encoder, progress=False))
    nearest = KNeighborsClassifier(10).fit(vmap.coords, vmap.labels).predict(coords)
    own = f"{source}$en"
    return {"source": own, "new_qas": len(new), "share_in_own_region": float(np.mean(nearest == own)),
            "chance": float(np.mean(vmap.labels == own))}


def unseen_model(folder: Path) -> Path:
    """The shipped recipe trained on every bundled source but ValueBench (as bench/transfer.py does)."""
    from transfer import train_without

    train_without("valuebench", folder)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-unseen", action="store_true", help="skip the unseen-LLM case (no training)")
    args = parser.parse_args()
    full = read_qa("bundled:valuebench")
    table = sample_questions(full, DEMO_QUESTIONS)
    texts = qa_texts(table)
    encoder = get_encoder("univar")
    univar = embed(texts, encoder, progress=False)
    first, vmap = case("demo, univar", table, univar)
    cases = [first]
    cases.append(case("demo, minilm", table, embed(texts, get_encoder("minilm"), progress=False))[0])
    cases.append(case("demo, univar, UMAP of the raw embeddings (the old map)", table, univar, raw=True)[0])
    if not args.no_unseen:
        with tempfile.TemporaryDirectory(prefix="univar-map-") as tmp:
            model = unseen_model(Path(tmp) / "without-valuebench")
            vectors = embed(texts, get_encoder(str(model)), progress=False)
            cases.append(case("unseen LLMs (model trained without ValueBench)", table, vectors)[0])
    add = placed(vmap, full, table, encoder)
    rows = []
    for c in cases:
        ok = c["map_10nn_held_out"] >= TARGET * c["full_space_knn_held_out"]
        rows.append({"figure": f"map 10-NN / full-space k-NN, held-out questions: {c['case']}",
                     "value": c["map_10nn_held_out"], "baseline": c["full_space_knn_held_out"],
                     "ratio": c["map_10nn_held_out"] / c["full_space_knn_held_out"],
                     "target": f">= {TARGET}" if c["basis"] != "embedding" else "for comparison",
                     "ok": ok if c["basis"] != "embedding" else None, "chance": c["chance"],
                     "map_10nn_all": c["map_10nn_all"]})
    rows.append({"figure": f"--add: share of {add['new_qas']} answers of {add['source']} to 200 other questions, "
                           "relabelled, placed in its own region of the demo map (10-NN)",
                 "value": add["share_in_own_region"], "baseline": add["chance"],
                 "ratio": add["share_in_own_region"] / add["chance"], "target": "> 0.5",
                 "ok": add["share_in_own_region"] > 0.5})
    report("map_fidelity", rows, {"cases": cases, "add": add})


if __name__ == "__main__":
    main()
