"""``univar demo``: the main job on bundled data, offline, ending in one shareable ``report.html``.

On a question sample of bundled ValueBench (every LLM's answer to each sampled question, so classes stay
paired) it embeds the QAs with the shipped value encoder, scores value identification against the minilm
baseline, draws the value map, compares the LLMs (distances with bootstrap CIs, neighbours, dendrogram),
checks the distances against ValueBench's questionnaire ratings (Mantel test), explains what separates the
two most distant LLMs, and writes everything beside the report.

Until the shipped model is built the demo runs on minilm alone and says so in the report; once
``univar.model`` ships its weights, the demo picks them up with no change here.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from rich.console import Console

from univar import progress
from univar import report as rp
from univar.analysis import (
    Distances,
    Explanation,
    Validity,
    class_distances,
    explain_pair,
    questionnaire_validity,
    rating_profiles,
)
from univar.encoders import EmbedStats, Encoder, embed
from univar.errors import UnivarError
from univar.evaluate import ValueIdentification, ValueIdResult, results_table
from univar.evidence import neighbour_accuracy
from univar.files import write_json
from univar.qa import TEST_FOLD, qa_texts, question_folds, read_qa
from univar.registry import get_encoder
from univar.report import Report, esc, find_model_card, markdown_html, pct
from univar.stance import StanceResult, StanceValidity
from univar.vectors import unit_rows
from univar.viz import heatmap_png

if TYPE_CHECKING:
    from plotly.graph_objects import Figure

log = logging.getLogger("univar")
DATASET = "bundled:valuebench"
DEMO_QUESTIONS = 400  # of 1,706: ~2,700 QAs; embedding them is most of the demo's time on 2 cores
BASELINE = "minilm"
# Question-disjoint only: the shipped model is trained on bundled data without question fold 0, so the
# random split would score it partly on QAs it was trained on (and it costs another probe per encoder).
SPLITS = ("question",)
N_BOOT = 200


def sample_questions(table: pd.DataFrame, n_questions: int | None, seed: int = 0) -> pd.DataFrame:
    """Keep all answers to ``n_questions`` randomly chosen questions (all of them when None)."""
    questions = table["question"].drop_duplicates().to_numpy()
    if n_questions is None or n_questions >= len(questions):
        return table
    keep = set(np.random.default_rng(seed).choice(questions, n_questions, replace=False))
    return table[table["question"].isin(keep)].reset_index(drop=True)


def primary_encoder(console: Console):
    """The shipped univar encoder, or minilm (with the reason) while it is not built."""
    try:
        return get_encoder("univar"), None
    except UnivarError as exc:
        reason = str(exc)
        console.print(f"[yellow]note:[/yellow] {reason}; the demo uses {BASELINE} as its value encoder")
        return get_encoder(BASELINE), reason


class _Clock:
    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.steps: dict[str, float] = {}
        self._last = self.start

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.steps[name] = round(now - self._last, 2)
        self._last = now

    @property
    def total(self) -> float:
        return round(time.perf_counter() - self.start, 2)


def map_fidelity(vmap, questions: list[str], full_space_knn: float) -> dict:
    """How much of the class structure value identification finds the map shows, on held-out questions.

    A QA of question fold 0 (the value-identification test fold) is named by its 10 nearest QAs of the
    other folds on the map; ``full_space_knn`` is k-NN's accuracy on the same QAs in the full embedding.
    """
    held = question_folds(questions) == TEST_FOLD
    on_map = neighbour_accuracy(vmap.coords, vmap.labels, k=10, query=held, reference=~held)
    return {"basis": vmap.basis, "map_10nn_all": vmap.fidelity, "map_10nn_held_out": on_map,
            "full_space_knn_held_out": full_space_knn, "ratio": on_map / full_space_knn if full_space_knn else None,
            "chance": vmap.chance, "shows_classes": vmap.shows_classes, "held_out_qas": int(held.sum())}

@dataclass
class DemoResult:
    """What :func:`run_demo` computes, filled in step by step; each report section reads it."""

    out_dir: Path
    full: pd.DataFrame  # the whole dataset: questionnaire ratings come from all of it
    table: pd.DataFrame  # the question sample that is embedded
    labels: np.ndarray  # the class (model$lang) of each row of ``table``
    loaded: list[Encoder]  # the first is primary (map, compare); the rest are baselines for value identification
    fallback: str | None = None  # why the shipped univar encoder is not used, when it is not
    vectors: dict[str, np.ndarray] = field(default_factory=dict)  # encoder name -> embeddings of ``table``
    results: list[ValueIdResult] = field(default_factory=list)  # value identification, per split and encoder
    fig: Figure | None = None  # the value map
    map_summary: dict = field(default_factory=dict)  # see :func:`map_fidelity`
    dist: Distances | None = None  # between classes, primary encoder
    near: pd.DataFrame | None = None  # nearest classes
    validity: dict[tuple[str, str], Validity] = field(default_factory=dict)  # (encoder, metric) -> Mantel test
    profiles: pd.DataFrame | None = None  # questionnaire rating profiles (classes x values)
    explanation: Explanation | None = None  # what separates the most distant pair
    stance: dict[str, StanceResult] = field(default_factory=dict)  # encoder -> stance validity, held-out questions
    stance_example: pd.DataFrame | None = None  # one held-out question's answers, with their similarities
    stance_scope: str = "held-out"  # which questions the stance check scored: "held-out" (fold 0) or "all"
    summary: dict = field(default_factory=dict)  # summary.json

    @property
    def primary(self) -> str:
        return self.loaded[0].name


def run_demo(out_dir: Path, per_class: int | None = None, console: Console | None = None,
             encoders: list[str] | None = None) -> dict:
    """Run the demo into ``out_dir`` and return a summary (also written as ``summary.json``).

    ``per_class`` is the number of ValueBench questions sampled (each answered by all 6 LLMs; None:
    ``DEMO_QUESTIONS``); ``encoders`` are the encoders scored on value identification (default: the primary one
    and minilm; the first is the one the map and the comparison use).
    """

    console = console or Console()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    clock = _Clock()
    result = _load(out_dir, per_class or DEMO_QUESTIONS, encoders, console)
    clock.lap("load")
    _embed_all(result, console)
    clock.lap("embed")
    _value_identification(result, console)
    clock.lap("value-id")
    _value_map(result, console)
    clock.lap("map")
    _compare(result)
    clock.lap("compare")
    _questionnaire_validity(result, console)
    clock.lap("mantel")
    _explain(result)
    clock.lap("explain")
    _stance(result, console)
    clock.lap("stance")

    table = result.table
    summary = result.summary = {
        "dataset": DATASET, "n_qas": len(table), "n_questions": int(table["question"].nunique()),
        "classes": result.dist.classes, "encoders": [e.name for e in result.loaded], "primary": result.primary,
        "fallback_reason": result.fallback, "map": result.map_summary, "seconds": clock.steps}
    report_path = _write_report(result)
    clock.lap("report")
    summary["seconds"] = clock.steps
    summary["total_seconds"] = clock.total
    summary["report"] = str(report_path)
    write_json(out_dir / "summary.json", summary)
    console.print(f"demo finished in {clock.total:.0f}s")
    console.print(f"report: {report_path.resolve()}")
    return summary


# --- the demo's steps: each fills in its part of the DemoResult (and writes its files) --------------------

def _load(out_dir: Path, n_questions: int, encoders: list[str] | None, console: Console) -> DemoResult:
    """The question sample of the dataset, and the encoders (the first is primary)."""
    full = read_qa(DATASET)
    table = sample_questions(full, n_questions)
    console.print(f"{DATASET}: {len(table):,} QAs from {table['model'].nunique()} LLMs "
                  f"({table['question'].nunique()} of {full['question'].nunique()} questions)")
    loaded, fallback = _load_encoders(encoders, console)
    return DemoResult(out_dir=out_dir, full=full, table=table, labels=rp.class_names(table), loaded=loaded,
                      fallback=fallback)


def _load_encoders(encoders: list[str] | None, console: Console) -> tuple[list[Encoder], str | None]:
    """The named encoders (those that load), or the primary encoder and minilm; and the fallback reason."""
    fallback = None
    if encoders:
        loaded = []
        for name in encoders:
            try:
                loaded.append(get_encoder(name))
            except UnivarError as exc:
                console.print(f"[yellow]skipping encoder {name}:[/yellow] {exc}")
        if not loaded:
            raise UnivarError("none of the demo's encoders could be loaded")
    else:
        first, fallback = primary_encoder(console)
        loaded = [first] + ([get_encoder(BASELINE)] if first.name != BASELINE else [])
    return loaded, fallback


def _embed_all(result: DemoResult, console: Console) -> None:
    texts = qa_texts(result.table)
    for enc in result.loaded:
        stats = EmbedStats()
        result.vectors[enc.name] = embed(texts, enc, stats=stats)
        console.print(f"embedded with {enc.name}: {stats.embedded:,} new, {stats.cached:,} from cache")


def _value_identification(result: DemoResult, console: Console) -> None:
    """Which LLM wrote this answer: k-NN and a linear probe per encoder (value_id.json)."""

    results = result.results
    for split in SPLITS:
        for enc in result.loaded:
            with progress.step(f"value identification with {enc.name} (k-NN and linear probe)"):
                scorer = ValueIdentification(split=split, seed=0)
                results.append(scorer.score(result.vectors[enc.name], result.table, encoder=enc.name))
    for split in SPLITS:
        console.print(results_table([r for r in results if r.split == split],
                                    title="demo: which LLM wrote this answer?"))
    write_json(result.out_dir / "value_id.json", [r.to_dict() for r in results])


def _value_map(result: DemoResult, console: Console) -> None:
    """The value map of the primary encoder (map.html, map.png, map_coords.csv) and how faithful it is."""
    table, primary = result.table, result.primary
    vmap, result.fig, _ = rp.write_map_files(table, result.vectors[primary], result.out_dir, primary, DATASET,
                                             color_by="model")
    knn = next(r for r in result.results if r.encoder == primary and r.split == "question")
    map_summary = result.map_summary = map_fidelity(vmap, table["question"].tolist(), knn.knn["acc"])
    console.print(f"map: {vmap.describe()}; on held-out questions {100 * map_summary['map_10nn_held_out']:.1f}% "
                  f"against {100 * map_summary['full_space_knn_held_out']:.1f}% for k-NN in the full space")


def _compare(result: DemoResult) -> None:
    """Distances between the LLMs with bootstrap intervals, and their neighbours (compare's files)."""
    questions = result.table["question"].to_numpy()
    with progress.step(f"class distances with {N_BOOT} bootstrap resamples"):
        result.dist, result.near = rp.write_compare_files(result.vectors[result.primary], result.labels,
                                                          result.out_dir, result.primary, DATASET,
                                                          groups=questions, n_boot=N_BOOT)


def _questionnaire_validity(result: DemoResult, console: Console) -> None:
    """Mantel tests per encoder and distance: ratings from the full dataset (no embedding needed)."""
    full, primary, out_dir = result.full, result.primary, result.out_dir
    questions = result.table["question"].to_numpy()
    validity = result.validity
    for enc in result.loaded:
        d = (result.dist if enc.name == primary else
             class_distances(result.vectors[enc.name], result.labels, groups=questions, n_boot=0))
        for metric in ("cosine", "energy"):
            try:
                validity[(enc.name, metric)] = questionnaire_validity(full, rp.class_names(full), d.matrix(metric),
                                                                      metric=metric)
            except UnivarError as exc:
                console.print(f"no questionnaire check for {enc.name}: {exc}")
    result.profiles = rating_profiles(full, rp.class_names(full))
    rating_dist = next(iter(validity.values())).rating_distance if validity else None
    if rating_dist is not None:
        heatmap_png(rating_dist, out_dir / "heatmap_ratings.png",
                    "Questionnaire profile distance (RMS difference of per-value mean ratings, 0-10 scale)",
                    label="rating points")
    write_json(out_dir / "mantel.json", [v.to_dict() | {"encoder": e} for (e, _), v in validity.items()])


def _explain(result: DemoResult) -> None:
    """What separates the most distant pair (explain.json)."""
    cos = result.dist.matrix("cosine")
    i, j = np.unravel_index(np.argmax(cos.to_numpy()), cos.shape)
    with progress.step(f"what separates {cos.index[i]} from {cos.columns[j]}"):
        result.explanation = explain_pair(result.table, result.vectors[result.primary], result.labels,
                                          cos.index[i], cos.columns[j], top=5)
    write_json(result.out_dir / "explain.json", result.explanation.to_dict())


def _stance(result: DemoResult, console: Console) -> None:
    """Does the space see positions? Stance AUC per encoder on the held-out questions (stance.json), and one
    question's agree and disagree answers with their similarity to one agreeing answer. A small sample may hold
    no held-out question with both positions; then every sampled question is scored, and the report says so."""
    table = result.table
    if "stance" not in table.columns:
        return
    scorer = StanceValidity(n_boot=N_BOOT, probe=False)  # the probe's 30 fits per encoder: bench/validity.py
    held = question_folds(table["question"]) == TEST_FOLD
    for scope, rows in (("held-out", held), ("all", np.ones(len(table), dtype=bool))):
        test = table[rows].reset_index(drop=True)
        try:
            result.stance = {enc.name: scorer.score(result.vectors[enc.name][rows], test, encoder=enc.name)
                             for enc in result.loaded}
        except UnivarError as exc:
            console.print(f"no stance check on the {scope} questions: {exc}")
            continue
        result.stance_scope = scope
        break
    else:
        return
    console.print(f"does the space see positions? stance AUC ({result.stance_scope} questions): " + ", ".join(
        f"{name} {r.stance_auc.value:.3f}" for name, r in result.stance.items()))
    result.stance_example = stance_example(test, {n: v[rows] for n, v in result.vectors.items()})
    write_json(result.out_dir / "stance.json", [r.to_dict() | {"questions": result.stance_scope}
                                                for r in result.stance.values()])


def stance_example(table: pd.DataFrame, vectors: dict[str, np.ndarray]) -> pd.DataFrame | None:
    """The answers to one question with both agree and disagree answers (the one with the most answers; ties:
    the first in order), each with its cosine similarity to the first agreeing answer under every encoder."""
    labels = table["stance"].astype("string")
    counts = table.assign(_s=labels).dropna(subset=["_s"]).groupby("question", sort=False)["_s"]
    both = [q for q, g in counts if {"agree", "disagree"} <= set(g)]
    if not both:
        return None
    question = max(both, key=lambda q: int(counts.get_group(q).size))
    rows = np.flatnonzero((table["question"] == question).to_numpy() & labels.notna().to_numpy())
    rows = rows[np.argsort(labels.to_numpy()[rows] != "agree", kind="stable")]  # agree first
    anchor = rows[0]
    out = pd.DataFrame({"question": question, "model": table["model"].to_numpy()[rows],
                        "stance": labels.to_numpy()[rows], "answer": table["answer"].to_numpy()[rows]})
    if "rating" in table.columns:
        out["rating"] = table["rating"].to_numpy()[rows]
    for name, v in vectors.items():
        unit = unit_rows(v)
        out[f"cos {name}"] = unit[rows] @ unit[anchor]
    return out


# --- report.html: one function per section, each over the DemoResult -------------------------------------

def _write_report(result: DemoResult) -> Path:
    """Assemble report.html: each figure inline, each number with a sentence on what it means."""
    summary = result.summary
    rep = Report("UniVaR demo report: the values six LLMs express",
                 f"{summary['n_qas']:,} answers to {summary['n_questions']} ValueBench questions, "
                 f"{len(result.dist.classes)} LLMs, value encoder: {summary['primary']}")
    for section in SECTIONS:
        section(rep, result)
    return rep.write(result.out_dir / "report.html")


def _section_intro(rep: Report, result: DemoResult) -> None:
    summary, primary, n_classes = result.summary, result.primary, len(result.dist.classes)
    rep.heading("What this is")
    rep.paragraph(
        "Each answer an LLM gives to a value-laden question (“Should I ...?”) is embedded as one vector by a "
        "value encoder. An LLM's values are then the cloud of its answers' vectors. This report asks: can one "
        "answer be traced back to the LLM that wrote it, where do the LLMs sit relative to each other, which "
        "values separate them, and do the distances agree with the LLMs' own questionnaire scores?")
    if summary["fallback_reason"]:
        rep.note(f"The shipped univar value encoder is not available here ({summary['fallback_reason']}); this "
                 f"report uses the general sentence encoder {primary} in its place, so it shows the pipeline, "
                 "not UniVaR's value representation.", warn=True)
    rep.paragraph(f"Data: {summary['n_qas']:,} question-answer pairs from bundled ValueBench "
                  f"({summary['n_questions']} questions sampled at random from {result.full['question'].nunique():,}; "
                  f"every sampled question answered by each of the {n_classes} LLMs), all in English. "
                  f"A class is one LLM in one language (written model$lang).")


def _section_value_id(rep: Report, result: DemoResult) -> None:
    results, primary = result.results, result.primary
    rep.heading("Value identification: which LLM wrote this answer?")
    rows = []
    for r in results:
        rows.append({"encoder": r.encoder, "split": r.split, "classes": r.n_classes, "test QAs": r.n_test,
                     "chance": pct(r.chance), f"k-NN acc (k={r.knn['k']})": pct(r.knn["acc"]),
                     "linear acc@1": pct(r.linear["acc@1"]), "linear acc@5": pct(r.linear["acc@5"]),
                     "linear F1": pct(r.linear["f1"])})
    rep.table(pd.DataFrame(rows), caption="Accuracy of identifying the LLM from one embedded answer, on "
                                          "questions no encoder was trained on", table_id="value-id")
    for r in results:
        split_words = ("test questions never seen in training (question-disjoint fold 0)" if r.split == "question"
                       else "a random 20% of each LLM's answers (the paper's protocol; test questions were also "
                            "answered in training, by other LLMs)")
        rep.paragraph(f"{r.encoder}, {r.split} split: the linear probe names the right LLM for "
                      f"{pct(r.linear['acc@1'])} of {r.n_test:,} answers on {split_words}, against "
                      f"{pct(r.chance)} by chance ({r.linear['acc@1'] / r.chance:.1f}× chance); k-NN with "
                      f"k={r.knn['k']} gets {pct(r.knn['acc'])}.")
    by = {(r.encoder, r.split): r for r in results}
    if primary != "minilm" and (primary, "question") in by and ("minilm", "question") in by:
        a, b = by[(primary, "question")], by[("minilm", "question")]
        verdict = (f"{primary} is the better of the two" if a.linear["acc@1"] > b.linear["acc@1"]
                   else f"{primary} is not better than minilm")
        rep.paragraph(f"On unseen questions the value encoder {primary} scores {pct(a.linear['acc@1'])} against "
                      f"{pct(b.linear['acc@1'])} for the general sentence encoder minilm: {verdict}.")


def _section_map(rep: Report, result: DemoResult) -> None:
    primary = result.primary
    rep.heading("Value map")
    if primary == "univar":
        rep.note("The shipped univar model was trained on bundled data except question fold 0, so the map and "
                 "the distances below include questions it saw in training; the value-identification "
                 "scores above and the map's held-out fidelity below are on questions it never saw.")
    m = result.summary["map"]
    rep.paragraph("Each dot is one answer. Its place comes from how much it looks like each LLM's answers, as "
                  "judged by a linear probe over its value embedding that was trained on other questions (5 "
                  "question folds, so no answer places itself), laid out in 2-D by UMAP (seeded). LLMs whose "
                  "answers are easy to tell apart get regions of their own; LLMs that are often mistaken for each "
                  "other sit side by side. The ringed dots are the LLMs' centroids. Hover a dot to read the "
                  "question and the answer; the buttons switch the colouring between model and language; click a "
                  "legend entry to hide an LLM, double-click to show it alone. The same map is in map.html and "
                  "map.png, its coordinates in map_coords.csv.")
    fidelity = (f"How faithful the map is: for an answer to one of the {m['held_out_qas']:,} held-out questions, "
                f"the 10 nearest answers to other questions on the map name its LLM {pct(m['map_10nn_held_out'])} "
                f"of the time, against {pct(m['full_space_knn_held_out'])} for k-NN in the full {primary} space "
                f"and {pct(m['chance'])} by chance.")
    if m["shows_classes"]:
        rep.paragraph(fidelity)
    else:
        rep.note(fidelity + f" {primary} barely separates these LLMs, so the colours on the map are mixed and "
                 "distances on it say little.", warn=True)
    rep.plotly(result.fig, "value-map")


def _section_compare(rep: Report, result: DemoResult) -> None:
    out_dir, dist, near = result.out_dir, result.dist, result.near
    n_classes = len(dist.classes)
    rep.heading("How far apart are the LLMs?")
    rep.image(out_dir / "heatmap.png", "heatmap of cosine distances between classes",
              f"Cosine distance between the mean value vectors of two LLMs, with {int(100 * dist.ci)}% bootstrap "
              f"intervals ({dist.n_boot} resamples of each LLM's answers). 0 means the same average direction.")
    cos = dist.matrix("cosine")
    iu = np.triu_indices(n_classes, 1)
    order = np.argsort(cos.to_numpy()[iu])
    lo_i, hi_i = order[0], order[-1]
    pairs = [(dist.classes[iu[0][k]], dist.classes[iu[1][k]], iu[0][k], iu[1][k]) for k in (lo_i, hi_i)]
    for word, (a, b, i, j) in zip(("closest", "most distant"), pairs):
        rep.paragraph(f"The {word} pair is {a} and {b}: cosine distance {dist.cosine[i, j]:.4f} "
                      f"(95% CI {dist.cosine_lo[i, j]:.4f} to {dist.cosine_hi[i, j]:.4f}), energy distance "
                      f"{dist.energy[i, j]:.4f} (CI {dist.energy_lo[i, j]:.4f} to {dist.energy_hi[i, j]:.4f}).")
    rep.paragraph("The energy distance compares the whole clouds of answers, not only their centres: it is 0 "
                  "when two LLMs' answers are distributed alike and grows with any difference in centre, spread "
                  f"or shape (computed on up to {dist.energy_points} answers per LLM).")
    rep.image(out_dir / "dendrogram.png", "dendrogram of the classes",
              "LLMs joined bottom-up by average cosine distance: LLMs that merge early express similar values.")
    near_tbl = near.rename(columns={"distance": "cosine"})[["class", "rank", "neighbour", "cosine",
                                                           "energy_neighbour", "energy"]]
    rep.table(near_tbl, caption="Each LLM's nearest LLMs by cosine distance (and by energy distance)",
              formats={"cosine": "{:.4f}", "energy": "{:.4f}"}, table_id="neighbours")
    rep.table(dist.long().drop(columns=["n_a", "n_b"]), caption="All pairs (distances.csv)",
              formats={c: "{:.4f}" for c in ("cosine", "cosine_lo", "cosine_hi", "energy", "energy_lo", "energy_hi")},
              table_id="distances")


def _section_validity(rep: Report, result: DemoResult) -> None:
    out_dir, validity, profiles = result.out_dir, result.validity, result.profiles
    rep.heading("Do the distances agree with the questionnaires?")
    rep.paragraph(f"ValueBench also asked each LLM to rate its agreement with every item on a 0-10 scale. "
                  f"Reverse-keyed items are flipped, ratings are averaged per value ({profiles.shape[1]} values "
                  f"rated by every LLM, over all {result.full['question'].nunique():,} questions), and two LLMs' "
                  "questionnaire distance is the root-mean-square difference of their value profiles. The "
                  "Mantel test correlates that matrix with the embedding distances; its p-value is the share of "
                  "all relabelings of the LLMs that correlate at least as well (exact: every order is tried).")
    if (out_dir / "heatmap_ratings.png").exists():
        rep.image(out_dir / "heatmap_ratings.png", "questionnaire profile distances",
                  "Questionnaire profile distance between LLMs (rating points on the 0-10 scale).")
    vrows = []
    for (enc, metric), v in validity.items():
        vrows.append({"encoder": enc, "distance": metric, "Mantel r": v.result.r, "p": v.result.p,
                      "permutations": v.result.permutations, "classes": v.result.n})
    if vrows:
        rep.table(pd.DataFrame(vrows), caption="Mantel test: embedding distances vs questionnaire distances",
                  formats={"Mantel r": "{:.3f}", "p": "{:.4f}"}, table_id="mantel")
        for (enc, metric), v in validity.items():
            r = v.result
            verdict = ("LLMs this encoder puts close together also score alike on the questionnaires"
                       if r.r > 0 and r.p < 0.05 else
                       "the agreement is not distinguishable from chance at the 5% level" if r.r > 0 else
                       "the two do not agree")
            rep.paragraph(f"{enc}, {metric} distance: Mantel r = {r.r:.3f}, p = {r.p:.4f} over "
                          f"{r.permutations:,} orders of {r.n} LLMs: {verdict}. With {r.n} LLMs there are only "
                          f"{r.n * (r.n - 1) // 2} pairs, so the smallest possible p is {1 / r.permutations:.4f}.")


def _section_explain(rep: Report, result: DemoResult) -> None:
    ex = result.explanation
    rep.heading(f"What separates {ex.class_a} from {ex.class_b}?")
    rep.paragraph("For the most distant pair, each value ValueBench measures is scored by how far apart the two "
                  "LLMs' answers to that value's questions sit, compared question by question so that only a "
                  "difference the two show consistently counts (separation: an unbiased estimate of the squared "
                  "distance between their mean value vectors on that value; 0 means no consistent difference; SE: "
                  "its jackknife standard error over questions). Values are ranked by the score, the separation "
                  "minus one SE, so a value asked about in a few questions needs a clearer difference to rank "
                  f"high; {ex.min_qas} or more questions per value were required. The mean keyed ratings (0-10, "
                  "reverse-keyed items flipped: higher means more of the value) show which way each LLM leans. "
                  "Under each value, the question on which the two answers differ most in the LLMs' own ratings "
                  "(in the direction they lean), so the difference is one of stance, not only of wording.")
    rep.table(ex.table(8), caption="Values that separate the pair most, ranked by score (univar explain prints the "
                                   "same table)",
              formats={c: "{:.4f}" for c in ("score", "separation", "SE")}
              | {f"rating {ex.class_a}": "{:.1f}", f"rating {ex.class_b}": "{:.1f}"}, table_id="explain")
    for e in ex.examples:
        _explain_example(rep, ex, e)


def _explain_example(rep: Report, ex: Explanation, e: dict) -> None:
    """One top value: its lean, the question and both answers side by side, and the rating difference."""
    rep.heading(str(e[ex.grouping]), level=3)
    if e.get("lean"):
        rep.paragraph(e["lean"])
    same_q = e["question_a"] == e["question_b"]
    ra = f" (rating {e['rating_a']:.0f}/10)" if _finite(e.get("rating_a")) else ""
    rb = f" (rating {e['rating_b']:.0f}/10)" if _finite(e.get("rating_b")) else ""
    qa = f"<div class='qa'><b>Q:</b> {esc(e['question_a'])}</div>" if same_q else ""
    left = ("" if same_q else f"<b>Q:</b> {esc(e['question_a'])}<br>") + \
           f"<b>{esc(ex.class_a)}</b>{esc(ra)}: {esc(_cut(e['answer_a']))}"
    right = ("" if same_q else f"<b>Q:</b> {esc(e['question_b'])}<br>") + \
            f"<b>{esc(ex.class_b)}</b>{esc(rb)}: {esc(_cut(e['answer_b']))}"
    rep.raw(f"{qa}<div class='pair'><div class='qa'>{left}</div><div class='qa'>{right}</div></div>")
    if _finite(e.get("rating_difference")):
        keyed = (" This item is reverse-keyed: agreeing with it means less of the value."
                 if e.get("reverse_keyed") else "")
        rep.paragraph(f"Rating difference on this question: {e['rating_difference']:+.0f} points "
                      f"({ex.class_a} minus {ex.class_b}).{keyed}", cls="caption")


def _section_stance(rep: Report, result: DemoResult) -> None:
    if not result.stance:
        return
    rep.heading("Does the space see positions?")
    first = next(iter(result.stance.values()))
    where = ("held-out questions (fold 0, never trained on)" if result.stance_scope == "held-out" else
             "sampled questions (this sample holds no held-out question with both positions, so these include "
             "questions the shipped model was trained on)")
    rep.paragraph(
        "Telling LLMs apart is not enough: a value space must also place two answers that take the same position "
        "on a question nearer each other than two that take opposite positions, or its distances measure how "
        "LLMs write rather than what they hold. ValueBench's ratings say whether each answer agrees with its "
        "questionnaire item (rating 7 or more) or disagrees (3 or less). Within each question, the stance AUC is "
        "the chance that a pair of answers taking the same position is more similar than a pair taking opposite "
        f"positions: 0.5 means the position is invisible. On the {first.n_questions} {where} with both positions "
        f"among their answers, {first.n_pairs:,} pairs:")
    rows = [{"encoder": name, "stance AUC": r.stance_auc.value, "95% CI": f"{r.stance_auc.low:.3f} to "
             f"{r.stance_auc.high:.3f}", "AUC, pairs by different LLMs": r.stance_auc_cross_llm.value}
            for name, r in result.stance.items()]
    rep.table(pd.DataFrame(rows), caption="Stance AUC within questions (univar evaluate stance computes the same, "
                                          "with a leave-one-LLM-out probe)",
              formats={"stance AUC": "{:.3f}", "AUC, pairs by different LLMs": "{:.3f}"}, table_id="stance")
    names = list(result.stance)
    if len(names) > 1:
        a, b = result.stance[names[0]], result.stance[names[1]]
        overlap = a.stance_auc.low <= b.stance_auc.high and b.stance_auc.low <= a.stance_auc.high
        better = names[0] if a.stance_auc.value > b.stance_auc.value else names[1]
        verdict = ("their intervals overlap, so neither sees positions clearly better here" if overlap
                   else f"{better} sees positions better")
        rep.paragraph(f"{names[0]} scores {a.stance_auc.value:.3f} against {b.stance_auc.value:.3f} for "
                      f"{names[1]}: {verdict}.")
    ex = result.stance_example
    if ex is not None:
        rep.heading("One question, both positions", level=3)
        rep.raw(f"<div class='qa'><b>Q:</b> {esc(ex['question'].iloc[0])}</div>")
        shown = ex.drop(columns=["question"]).assign(answer=[_cut(a, 240) for a in ex["answer"]])
        rep.table(shown, caption="Each answer's cosine similarity to the first agreeing answer (its own row is 1): "
                                 "a space that sees positions gives the other agreeing answers the higher values",
                  formats={c: "{:.3f}" for c in shown.columns if c.startswith("cos ")}, table_id="stance-example")


def _section_encoder(rep: Report, result: DemoResult) -> None:
    loaded, primary = result.loaded, result.primary
    rep.heading("The value encoder")
    card = find_model_card(loaded[0])
    if card is not None:
        rep.raw(f"<div class='card'>{markdown_html(card.read_text(encoding='utf-8'), shift=2)}</div>")
    else:
        rep.paragraph(f"Encoder {primary} (id {loaded[0].id}, {loaded[0].dim} dimensions). "
                      + ("No model card was found beside its weights." if primary == "univar" else
                         "It is a general-purpose sentence encoder (all-MiniLM-L6-v2), not trained on values; "
                         "it is the baseline the univar encoder is measured against."))


def _section_files(rep: Report, result: DemoResult) -> None:
    out_dir, primary = result.out_dir, result.primary
    rep.heading("Files and timings")
    files = sorted(p.name for p in out_dir.iterdir() if p.is_file() and not p.name.endswith(".tmp"))
    rep.paragraph("Beside this report: " + ", ".join(files + ["report.html", "summary.json"]
                                                      if "report.html" not in files else files) + ".")
    steps = ", ".join(f"{k} {v:.1f}s" for k, v in result.summary["seconds"].items())
    rep.paragraph(f"Time per step on this machine: {steps}.")
    rep.paragraph("Reproduce: univar demo --out DIR; or step by step: univar map bundled:valuebench --encoder "
                  f"{primary} --out DIR, univar compare bundled:valuebench --encoder {primary} --out DIR.")


# the report's sections, in order
SECTIONS = (_section_intro, _section_value_id, _section_map, _section_compare, _section_validity, _section_explain,
            _section_stance, _section_encoder, _section_files)


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and bool(np.isfinite(value))


def _cut(text: str, limit: int = 600) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
