"""The terminal tables of evaluation results: one row per encoder, laid out for the console's width.

Laid out at print time (:class:`univar.tables.FitTable`), so an encoder's name is never cut at 80 columns.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.markup import escape

from univar.evaluate.results import StanceResult, ValueIdResult
from univar.tables import NAME, Col, FitTable


def results_table(results: Sequence[ValueIdResult], title: str = "value identification") -> FitTable:
    """A rich table: one row per encoder, accuracies in percent ("-" where a score means nothing, see linear_probe);
    laid out at print time for the console's width (univar.tables), so the encoder's name is never cut."""
    first = results[0]
    # the encoder's name (or model folder) stays whole; at a narrow console acc@10, acc@5, then the F1s go
    table = FitTable(Col("encoder", NAME), Col(f"k-NN acc\n(k={first.knn.k})"), Col("k-NN\nF1", drop=1),
                     Col("linear\nacc@1"), Col("acc@5", drop=2), Col("acc@10", drop=3), Col("linear\nF1", drop=1),
                     title=f"{escape(title)} · split={first.split} · target={first.target} · {first.n_classes} "
                           f"classes (chance {100 * first.chance:.2f}%) · train {first.n_train} / test {first.n_test}")
    for r in results:
        table.add_row(escape(r.encoder), *("-" if v is None else f"{100 * v:.2f}"
                                           for v in (r.knn.acc, r.knn.f1, r.linear.acc_at_1, r.linear.acc_at_5,
                                                     r.linear.acc_at_10, r.linear.f1)))
    return table


def stance_table(results: list[StanceResult], title: str = "stance validity") -> FitTable:
    """A rich table: one row per encoder, each measure with its interval (0.5 / chance: the stance is invisible).

    Laid out for the console's width (univar.tables): the encoder's name stays whole; where four columns do not
    fit, the cross-LLM AUC goes first."""
    first = results[0]
    table = FitTable(Col("encoder", NAME), Col("stance AUC"), Col("cross-LLM AUC", drop=1), Col("probe bal. acc"),
                     title=f"{escape(title)} · {first.n_questions} questions with 2+ labels · {first.n_pairs} pairs · "
                           f"labels {escape(', '.join(first.labels))} · probe chance {first.probe_chance:.3f}",
                     caption=f"\\[low, high]: {int(100 * first.level)}% interval resampling questions; 0.5 (AUC) "
                             "and the probe's chance mean the space does not see the position")

    def cell(v) -> str:
        if v.value is None:
            return "-"
        return f"{v.value:.3f}" + ("" if v.low is None else f"\n[{v.low:.3f}, {v.high:.3f}]")

    for r in results:
        table.add_row(escape(r.encoder), cell(r.stance_auc), cell(r.stance_auc_cross_llm), cell(r.probe_balanced_acc))
    return table
