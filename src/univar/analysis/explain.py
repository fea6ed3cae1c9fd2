"""What separates two classes: the values (or question topics) on which two LLMs' answers differ most.

Per value, the separation is an unbiased estimate of the squared distance between the two classes' mean
value vectors on that value's questions, compared question by question when both classes answered the same
questions; values are ranked by the separation minus its jackknife standard error, and each top value comes
with an example question answered by both sides (see :func:`explain_pair`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from univar.analysis.distances import _unit
from univar.analysis.validity import keyed_ratings
from univar.errors import UnivarError
from univar.qa import split_class


def resolve_class(name: str, classes: Sequence[str]) -> str:
    """Accept ``model$lang`` or a model name that has a single language in the data."""
    if name in classes:
        return name
    matches = [c for c in classes if split_class(c)[0] == name]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise UnivarError(f"{name!r} has several languages; name one of {', '.join(matches)}")
    shown = ", ".join(list(classes)[:12]) + (" ..." if len(classes) > 12 else "")
    raise UnivarError(f"unknown class {name!r} (classes: {shown})")


def question_topics(vectors: np.ndarray, questions: Sequence[str], seed: int = 0,
                    n_topics: int | None = None) -> np.ndarray:
    """Stand-in for a missing ``value`` column: cluster questions by their mean QA embedding.

    Each topic is named after the words that mark its questions (top TF-IDF terms), so a reader can
    tell what it is about.
    """
    from sklearn.cluster import KMeans
    from sklearn.feature_extraction.text import TfidfVectorizer

    questions = np.asarray(questions, dtype=object)
    uniq, inverse = np.unique(questions, return_inverse=True)
    sums = np.zeros((len(uniq), vectors.shape[1]))
    np.add.at(sums, inverse, vectors)
    q_vec = _unit(sums)
    k = n_topics or int(np.clip(round(math.sqrt(len(uniq) / 2)), 2, 30))
    k = min(k, len(uniq))
    if k < 2:
        return np.array(["all questions"] * len(questions), dtype=object)
    topic = KMeans(k, n_init=4, random_state=seed).fit_predict(q_vec)
    names = []
    try:
        tfidf = TfidfVectorizer(stop_words="english", max_features=5000, min_df=1)
        m = tfidf.fit_transform(uniq.tolist())
        vocab = np.array(tfidf.get_feature_names_out())
        for t in range(k):
            score = np.asarray(m[topic == t].mean(0)).ravel()
            names.append(f"topic {t + 1}: " + ", ".join(vocab[np.argsort(-score)[:3]]))
    except ValueError:  # only stop words
        names = [f"topic {t + 1}" for t in range(k)]
    return np.array([names[t] for t in topic[inverse]], dtype=object)


def _shift(va: np.ndarray, vb: np.ndarray, paired: bool) -> float:
    """Unbiased estimate of the squared distance between two classes' mean (unit) vectors on one value.

    Paired (both classes answered the same questions, row i with row i): the mean over question pairs
    q != q' of (a_q - b_q) . (a_q' - b_q'), so what each question is about cancels and only a difference
    that the two LLMs show consistently counts. Unpaired: |mean a - mean b|^2 with the i = j terms left out
    of the within-class parts. Both are zero in expectation when the classes do not differ, whatever the
    number of questions, so values with few questions do not rank high by noise.
    """
    a, b = _unit(np.asarray(va, dtype=np.float64)), _unit(np.asarray(vb, dtype=np.float64))
    if paired:
        d = a - b
        s = d.sum(0)
        n = len(d)
        return float((s @ s - (d * d).sum()) / (n * (n - 1)))
    sa, sb = a.sum(0), b.sum(0)
    na, nb = len(a), len(b)
    within_a = (sa @ sa - (a * a).sum()) / (na * (na - 1))
    within_b = (sb @ sb - (b * b).sum()) / (nb * (nb - 1))
    return float(within_a + within_b - 2 * (sa @ sb) / (na * nb))


def _jackknife_se(stat, n: int) -> float:
    """Delete-one jackknife standard error of ``stat(keep_mask)`` over ``n`` units (nan below 3 units)."""
    if n < 3:
        return float("nan")
    values = []
    for i in range(n):
        keep = np.ones(n, dtype=bool)
        keep[i] = False
        values.append(stat(keep))
    values = np.asarray(values)
    return float(np.sqrt((n - 1) / n * ((values - values.mean()) ** 2).sum()))


def _shift_with_se(va: np.ndarray, vb: np.ndarray, paired: bool) -> tuple[float, float]:
    """``_shift`` and its jackknife standard error (questions left out in turn; unpaired: each side's QAs)."""
    est = _shift(va, vb, paired)
    if paired:
        return est, _jackknife_se(lambda k: _shift(va[k], vb[k], True), len(va))
    se_a = _jackknife_se(lambda k: _shift(va[k], vb, False), len(va))
    se_b = _jackknife_se(lambda k: _shift(va, vb[k], False), len(vb))
    return est, float(np.sqrt(se_a ** 2 + se_b ** 2))


@dataclass
class Explanation:
    """What separates two classes: one row per value, ranked by ``score``, and an example per top value.

    ``values`` columns: the value (or topic), ``score`` (separation minus one standard error: the ranking
    key), ``separation``, ``se``, ``paired_questions``, ``n_a``, ``n_b``, ``lean`` (a sentence on which way
    each class leans: from the ratings when there are any, else saying there are none); with ratings also
    ``rating_a``, ``rating_b`` (mean keyed ratings). ``lower`` is ``score`` under its earlier name.
    """

    class_a: str
    class_b: str
    grouping: str  # "value" or "topic"
    values: pd.DataFrame  # one row per value, highest score first
    examples: list[dict]  # per top value: the question and both answers
    min_qas: int = 5  # QAs per side a value needed to be scored
    # where the data has stance labels: the questions both answered, those they take different positions on
    # first (see :func:`stance_questions`); None without labels
    questions: pd.DataFrame | None = None

    def to_dict(self) -> dict:
        out = {"class_a": self.class_a, "class_b": self.class_b, "grouping": self.grouping, "min_qas": self.min_qas,
               "ranked_by": "score = separation - se", "values": self.values.to_dict(orient="records"),
               "examples": self.examples}
        if self.questions is not None:
            out["questions"] = self.questions.to_dict(orient="records")
        return out

    def table(self, top: int | None = None) -> pd.DataFrame:
        """The ranking as shown by ``univar explain`` and the report: one source, so the two cannot differ."""
        cols = [self.grouping, "score", "separation", "se", "n_a", "n_b"]
        if "rating_a" in self.values.columns:
            cols += ["rating_a", "rating_b"]
        frame = self.values[cols] if top is None else self.values[cols].head(top)
        return frame.rename(columns={"se": "SE", "n_a": f"QAs {self.class_a}", "n_b": f"QAs {self.class_b}",
                                     "rating_a": f"rating {self.class_a}", "rating_b": f"rating {self.class_b}"})


def _lean(value: str, a: str, b: str, rating_a: float, rating_b: float, threshold: float = 1.0) -> str:
    """Which way each class leans on a value, from its mean keyed rating (0-10; higher: more of the value).

    Gaps under ``threshold`` points read as alike: single ratings move by a point or two between
    paraphrases of one item, so a smaller gap in a mean over a handful of items says little.
    """
    if not (np.isfinite(rating_a) and np.isfinite(rating_b)):
        return f"No ratings on {value} from both {a} and {b}."
    gap = rating_a - rating_b
    if abs(gap) < threshold:
        return (f"{a} and {b} rate {value} alike ({rating_a:.1f} and {rating_b:.1f} of 10): they differ in how "
                f"they answer, not in how much they endorse it.")
    more, less = (a, b) if gap > 0 else (b, a)
    hi, lo = max(rating_a, rating_b), min(rating_a, rating_b)
    return (f"{more} leans towards {value} ({hi:.1f} of 10) and {less} away from it ({lo:.1f}); "
            f"a gap of {abs(gap):.1f} points.")


def _paired_example(pa: np.ndarray, pb: np.ndarray, vectors: np.ndarray, keyed: np.ndarray | None,
                    lean: float) -> tuple[int, int]:
    """The question whose two answers differ as the two classes differ on the value, not only in wording.

    With ratings: the largest gap in keyed rating in the direction of the classes' mean lean (a stance
    difference the reader can check), ties broken by the embedding. Without: the pair whose difference
    vector goes furthest along the classes' mean difference on the value.
    """
    d = _unit(vectors[pa]) - _unit(vectors[pb])
    direction = d.mean(0)
    along = d @ (direction / max(float(np.linalg.norm(direction)), 1e-12))
    if keyed is not None:
        gap = keyed[pa] - keyed[pb]
        gap = np.where(np.isfinite(gap), gap, 0.0) * (1.0 if lean >= 0 else -1.0)
        k = int(np.lexsort((-along, -gap))[0])
    else:
        k = int(np.argmax(along))
    return int(pa[k]), int(pb[k])


def explain_pair(table: pd.DataFrame, vectors: np.ndarray, labels: Sequence[str], class_a: str, class_b: str,
                 top: int = 5, min_qas: int = 5, seed: int = 0) -> Explanation:
    """Which values separate two classes most, with an example question answered by each side.

    Per value, the separation is an unbiased estimate of the squared distance between the two classes'
    mean value vectors on that value's questions (see ``_shift``): paired by question when both classes
    answered the same questions, so it measures a difference the two LLMs show consistently, not what the
    questions are about. Values are ranked by ``score``, the estimate minus its jackknife standard error,
    so a value seen on a handful of questions needs a clearer difference to rank first. The example under
    a value is the question on which the two answers differ in stance (rating) the way the classes differ,
    see :func:`_paired_example`; without shared questions, each side's most typical QA on that value.
    """
    labels = np.asarray(labels, dtype=object)
    classes = sorted(set(labels.tolist()))
    a, b = resolve_class(class_a, classes), resolve_class(class_b, classes)
    if a == b:
        raise UnivarError("explain needs two different classes")
    if "value" in table.columns and table["value"].notna().any():
        groups = table["value"].fillna("").astype(str).to_numpy(dtype=object)
        grouping = "value"
    else:
        groups = question_topics(vectors, table["question"].tolist(), seed=seed)
        grouping = "topic"
    has_rating = "rating" in table.columns and pd.to_numeric(table["rating"], errors="coerce").notna().any()
    keyed = keyed_ratings(table).to_numpy(dtype=np.float64) if has_rating else None
    in_a, in_b = labels == a, labels == b
    questions = table["question"].to_numpy(dtype=object)

    # small samples: rather a ranking on fewer QAs per value (said in min_qas) than none
    for used in sorted({min_qas, min(min_qas, 3), 2}, reverse=True):
        rows = _score_values(grouping, groups, (a, in_a), (b, in_b), questions, vectors, keyed, used)
        if rows:
            break
    if not rows:
        raise UnivarError(f"no {grouping} has 2 or more QAs from both {a} and {b}")
    ranked = pd.DataFrame(rows).sort_values(["score", "separation"], ascending=False,
                                            kind="stable").reset_index(drop=True)
    examples = [_example(ranked.iloc[i], grouping, groups, in_a, in_b, questions, vectors, table, keyed)
                for i in range(min(top, len(ranked)))]
    return Explanation(class_a=a, class_b=b, grouping=grouping, values=ranked, examples=examples, min_qas=used,
                       questions=stance_questions(table, vectors, in_a, in_b))


def stance_questions(table: pd.DataFrame, vectors: np.ndarray, in_a: np.ndarray,
                     in_b: np.ndarray) -> pd.DataFrame | None:
    """The questions both classes answered with a stance label, ranked by how differently they answer them.

    First the questions on which their labels differ (a position the reader can check), then, with ratings, by
    the gap in rating, then by the cosine distance between the two answers (the embedding's view). None when the
    table has no stance labels for both sides.
    """
    if "stance" not in table.columns:
        return None
    stance = table["stance"].astype("string").to_numpy(dtype=object)
    labelled = ~pd.isna(stance)
    questions = table["question"].to_numpy(dtype=object)
    pa, pb = _pairs(np.flatnonzero(in_a & labelled), np.flatnonzero(in_b & labelled), questions)
    if not pa:
        return None
    pa, pb = np.array(pa), np.array(pb)
    out = pd.DataFrame({"question": questions[pa], "stance_a": stance[pa], "stance_b": stance[pb]})
    out["differ"] = out["stance_a"] != out["stance_b"]
    keys = ["differ"]
    if "rating" in table.columns:
        rating = pd.to_numeric(table["rating"], errors="coerce").to_numpy(dtype=np.float64)
        out["rating_gap"] = np.abs(rating[pa] - rating[pb])
        keys.append("rating_gap")
    out["distance"] = 1.0 - np.einsum("ij,ij->i", _unit(vectors[pa]), _unit(vectors[pb]))
    keys.append("distance")
    return out.sort_values(keys, ascending=False, kind="stable", na_position="last").reset_index(drop=True)


def _score_values(grouping: str, groups: np.ndarray, side_a: tuple[str, np.ndarray], side_b: tuple[str, np.ndarray],
                  questions: np.ndarray, vectors: np.ndarray, keyed: np.ndarray | None, threshold: int) -> list[dict]:
    """One row per value with ``threshold`` or more QAs on each side: separation, SE, score, ratings and lean."""
    (a, in_a), (b, in_b) = side_a, side_b
    rows = []
    for value in sorted(set(groups[in_a | in_b].tolist())):
        if not str(value).strip():
            continue
        ra = np.flatnonzero(in_a & (groups == value))
        rb = np.flatnonzero(in_b & (groups == value))
        if len(ra) < threshold or len(rb) < threshold:
            continue
        pa, pb = _pairs(ra, rb, questions)
        paired = len(pa) >= threshold
        if paired:
            sep, se = _shift_with_se(vectors[pa], vectors[pb], True)
        else:
            sep, se = _shift_with_se(vectors[ra], vectors[rb], False)
        lower = sep - se if np.isfinite(se) else sep
        row = {grouping: value, "score": lower, "separation": sep, "se": se, "lower": lower,
               "paired_questions": len(pa) if paired else 0, "n_a": len(ra), "n_b": len(rb)}
        if keyed is not None:
            row["rating_a"] = float(np.nanmean(keyed[ra])) if np.isfinite(keyed[ra]).any() else float("nan")
            row["rating_b"] = float(np.nanmean(keyed[rb])) if np.isfinite(keyed[rb]).any() else float("nan")
            row["lean"] = _lean(str(value), a, b, row["rating_a"], row["rating_b"])
        else:
            row["lean"] = (f"The data has no ratings, so which way {a} and {b} lean on {value} shows only in "
                           "their answers (the example below).")
        rows.append(row)
    return rows


def _pairs(ra: np.ndarray, rb: np.ndarray, questions: np.ndarray) -> tuple[list[int], list[int]]:
    """Rows of the two classes that answer the same question (the first answer of each, per question)."""
    first_b: dict = {}
    for i in rb:
        first_b.setdefault(questions[i], i)
    seen: set = set()
    pa, pb = [], []
    for i in ra:
        q = questions[i]
        if q in first_b and q not in seen:
            seen.add(q)
            pa.append(int(i))
            pb.append(int(first_b[q]))
    return pa, pb


def _example(row: pd.Series, grouping: str, groups: np.ndarray, in_a: np.ndarray, in_b: np.ndarray,
             questions: np.ndarray, vectors: np.ndarray, table: pd.DataFrame, keyed: np.ndarray | None) -> dict:
    """The example QA pair shown under one value, with both ratings and their difference when rated."""
    value = row[grouping]
    ra = np.flatnonzero(in_a & (groups == value))
    rb = np.flatnonzero(in_b & (groups == value))
    pa, pb = _pairs(ra, rb, questions)
    if pa:
        lean = float(row.get("rating_a", 0.0) - row.get("rating_b", 0.0)) if keyed is not None else 0.0
        ia, ib = _paired_example(np.array(pa), np.array(pb), vectors, keyed, 0.0 if not np.isfinite(lean) else lean)
    else:
        ma, mb = _unit(vectors[ra].mean(0)), _unit(vectors[rb].mean(0))
        ia = int(ra[np.argmax(_unit(vectors[ra]) @ (ma - mb))])
        ib = int(rb[np.argmax(_unit(vectors[rb]) @ (mb - ma))])
    answers = table["answer"].to_numpy(dtype=object)
    example = {grouping: value, "paired": bool(pa),
               "question_a": str(questions[ia]), "answer_a": str(answers[ia]),
               "question_b": str(questions[ib]), "answer_b": str(answers[ib])}
    if keyed is not None:  # as the LLM gave it (not keyed), next to its own answer; the gap on the value's scale
        raw = pd.to_numeric(table["rating"], errors="coerce").to_numpy(dtype=np.float64)
        example["rating_a"], example["rating_b"] = float(raw[ia]), float(raw[ib])
        example["rating_difference"] = float(raw[ia] - raw[ib])
        if "agreement" in table.columns:  # agreeing with a reverse-keyed item means less of the value
            agreement = pd.to_numeric(table["agreement"], errors="coerce").to_numpy()
            example["reverse_keyed"] = bool(agreement[ia] < 0)
    if "lean" in row:
        example["lean"] = str(row["lean"])
    return example
