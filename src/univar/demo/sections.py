"""report.html of the demo: one function per section, each over the :class:`~univar.demo.steps.DemoResult`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from univar.analysis import Explanation
from univar.report import Report, esc, find_model_card, markdown_html, pct

if TYPE_CHECKING:
    from univar.demo.steps import DemoResult


def write_report(result: DemoResult) -> Path:
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
                     "chance": pct(r.chance), f"k-NN acc (k={r.knn.k})": pct(r.knn.acc),
                     "linear acc@1": pct(r.linear.acc_at_1), "linear acc@5": pct(r.linear.acc_at_5),
                     "linear F1": pct(r.linear.f1)})
    rep.table(pd.DataFrame(rows), caption="Accuracy of identifying the LLM from one embedded answer, on "
                                          "questions no encoder was trained on", table_id="value-id")
    for r in results:
        split_words = ("test questions never seen in training (question-disjoint fold 0)" if r.split == "question"
                       else "a random 20% of each LLM's answers (the paper's protocol; test questions were also "
                            "answered in training, by other LLMs)")
        rep.paragraph(f"{r.encoder}, {r.split} split: the linear probe names the right LLM for "
                      f"{pct(r.linear.acc_at_1)} of {r.n_test:,} answers on {split_words}, against "
                      f"{pct(r.chance)} by chance ({r.linear.acc_at_1 / r.chance:.1f}× chance); k-NN with "
                      f"k={r.knn.k} gets {pct(r.knn.acc)}.")
    by = {(r.encoder, r.split): r for r in results}
    if primary != "minilm" and (primary, "question") in by and ("minilm", "question") in by:
        a, b = by[(primary, "question")], by[("minilm", "question")]
        verdict = (f"{primary} is the better of the two" if a.linear.acc_at_1 > b.linear.acc_at_1
                   else f"{primary} is not better than minilm")
        rep.paragraph(f"On unseen questions the value encoder {primary} scores {pct(a.linear.acc_at_1)} against "
                      f"{pct(b.linear.acc_at_1)} for the general sentence encoder minilm: {verdict}.")


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
