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
from univar.analysis import (
    Distances,
    Explanation,
    Validity,
    class_distances,
    explain_pair,
    questionnaire_validity,
    rating_profiles,
)
from univar.commands.compare import write_compare_files
from univar.commands.maps import write_map_files
from univar.commands.tables import results_table
from univar.demo.sections import write_report
from univar.encoders import EmbedStats, Encoder, embed
from univar.errors import UnivarError
from univar.evaluate import StanceResult, StanceValidity, ValueIdentification, ValueIdResult
from univar.evidence import neighbour_accuracy
from univar.files import write_json
from univar.qa import TEST_FOLD, class_names, qa_texts, question_folds, read_qa
from univar.registry import get_encoder
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
    report_path = write_report(result)
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
    return DemoResult(out_dir=out_dir, full=full, table=table, labels=class_names(table), loaded=loaded,
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
    vmap, result.fig, _ = write_map_files(table, result.vectors[primary], result.out_dir, primary, DATASET,
                                             color_by="model")
    knn = next(r for r in result.results if r.encoder == primary and r.split == "question")
    map_summary = result.map_summary = map_fidelity(vmap, table["question"].tolist(), knn.knn.acc)
    console.print(f"map: {vmap.describe()}; on held-out questions {100 * map_summary['map_10nn_held_out']:.1f}% "
                  f"against {100 * map_summary['full_space_knn_held_out']:.1f}% for k-NN in the full space")


def _compare(result: DemoResult) -> None:
    """Distances between the LLMs with bootstrap intervals, and their neighbours (compare's files)."""
    questions = result.table["question"].to_numpy()
    with progress.step(f"class distances with {N_BOOT} bootstrap resamples"):
        result.dist, result.near = write_compare_files(result.vectors[result.primary], result.labels,
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
                validity[(enc.name, metric)] = questionnaire_validity(full, class_names(full), d.matrix(metric),
                                                                      metric=metric)
            except UnivarError as exc:
                console.print(f"no questionnaire check for {enc.name}: {exc}")
    result.profiles = rating_profiles(full, class_names(full))
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
