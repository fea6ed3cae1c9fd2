"""How far apart are the value distributions of two LLMs (or two languages of one LLM), and why?

- :mod:`univar.analysis.distances`: cosine and energy distances between classes (debiased, with bootstrap
  intervals), nearest classes.
- :mod:`univar.analysis.validity`: the Mantel test of those distances against questionnaire-score profiles.
- :mod:`univar.analysis.explain`: which values separate two classes, with an example question for each.

Every public name is importable from ``univar.analysis`` itself.
"""

from univar.analysis.distances import (
    METRICS,
    Distances,
    class_distances,
    class_index,
    class_means,
    cosine_distances,
    energy_distance,
    nearest_classes,
    nearest_neighbours,
    pairwise_euclidean,
    shares_units,
    subsample_per_class,
)
from univar.analysis.explain import Explanation, explain_pair, question_topics, resolve_class
from univar.analysis.validity import (
    MantelResult,
    Validity,
    keyed_ratings,
    mantel,
    profile_distances,
    questionnaire_validity,
    rating_profiles,
)

__all__ = [
    "METRICS",
    "Distances",
    "Explanation",
    "MantelResult",
    "Validity",
    "class_distances",
    "class_index",
    "class_means",
    "cosine_distances",
    "energy_distance",
    "explain_pair",
    "keyed_ratings",
    "mantel",
    "nearest_classes",
    "nearest_neighbours",
    "pairwise_euclidean",
    "profile_distances",
    "question_topics",
    "questionnaire_validity",
    "rating_profiles",
    "resolve_class",
    "shares_units",
    "subsample_per_class",
]
