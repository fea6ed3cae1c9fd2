"""Rebuild the bundled datasets in src/univar/data/ from ../shared/data.

The real answers (MIT / Apache-2.0 / CC-BY-4.0). Run once by a maintainer; the Parquet files are committed so
that a clone works offline.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared" / "data"
OUT = ROOT / "src" / "univar" / "data"
# value sources bundled as they are published in ../shared/data (Parquet), with their licence's short name
NEW_SOURCES = {"donotanswer": "Apache-2.0", "xstest": "CC-BY-4.0", "moralmachine": "MIT"}
# Do-Not-Answer's human action codes (Wang et al. 2023, Table 2), named like XSTest's labels so a reader of the
# `stance` column needs no code book
DNA_ACTIONS = {0: "0_refuse", 1: "1_refute", 2: "2_balanced", 3: "3_disclaimer", 4: "4_uncertain", 5: "5_follow"}
# ValueBench ratings say how far an answer agrees with its questionnaire item (0-10, 5 neutral); the position is
# clear only away from the middle, so 4..6 carry no stance (the validity bench's "rating >= 7 vs <= 3")
AGREE_FROM, DISAGREE_TO = 7, 3


def valuebench_stance(rating: pd.Series) -> pd.Series:
    """``agree`` (rating >= 7), ``disagree`` (<= 3), missing in between and where there is no rating."""
    stance = pd.Series(pd.NA, index=rating.index, dtype="string")
    stance[rating >= AGREE_FROM] = "agree"
    stance[rating <= DISAGREE_TO] = "disagree"
    return stance


def with_labels(name: str, table: pd.DataFrame) -> pd.DataFrame:
    """The answers with their human labels (``labels.parquet``, row for row) and a ``stance`` column."""
    path = SHARED / name / "labels.parquet"
    if not path.exists():
        return table
    labels = pd.read_parquet(path)
    if len(labels) != len(table) or not (labels["qid"].to_numpy() == table["qid"].to_numpy()).all() \
            or not (labels["model"].to_numpy() == table["model"].to_numpy()).all():
        raise SystemExit(f"{path}: rows do not match {name}/answers.parquet by (qid, model)")
    extra = labels.drop(columns=["qid", "model"])
    table = pd.concat([table, extra], axis=1)
    if name == "donotanswer":
        table["stance"] = table["action"].map(DNA_ACTIONS).astype("string")
    else:  # xstest: the final label of its two annotators
        table["stance"] = table["label"].astype("string")
    return table


def main() -> None:
    (OUT / "licenses").mkdir(parents=True, exist_ok=True)
    vb = pd.read_csv(SHARED / "valuebench" / "answers.csv", dtype=str, keep_default_na=False)
    vb["rating"] = pd.to_numeric(vb["rating"], errors="coerce")
    vb["agreement"] = pd.to_numeric(vb["agreement"], errors="coerce")
    vb.insert(0, "source", "valuebench")
    vb["stance"] = valuebench_stance(vb["rating"])
    vb.to_parquet(OUT / "valuebench.parquet", index=False, compression="zstd")
    fu = pd.read_csv(SHARED / "fulcra" / "answers.csv", dtype=str, keep_default_na=False)
    fu.to_parquet(OUT / "fulcra.parquet", index=False, compression="zstd")
    mt = pd.read_parquet(SHARED / "mtbench-multilingual" / "answers.parquet")
    mt.insert(0, "source", "mtbench")
    mt.to_parquet(OUT / "mtbench.parquet", index=False, compression="zstd")
    for name, licence in NEW_SOURCES.items():  # already cleaned upstream (see ../shared/data/README.md)
        table = with_labels(name, pd.read_parquet(SHARED / name / "answers.parquet"))
        table.to_parquet(OUT / f"{name}.parquet", index=False, compression="zstd")
        shutil.copy(SHARED / name / "LICENSE", OUT / "licenses" / f"{name}-{licence}.txt")
    shutil.copy(SHARED / "valuebench" / "LICENSE", OUT / "licenses" / "valuebench-MIT.txt")
    shutil.copy(SHARED / "fulcra" / "LICENSE", OUT / "licenses" / "fulcra-MIT.txt")
    shutil.copy(SHARED / "mtbench-multilingual" / "LICENSE", OUT / "licenses" / "mtbench-Apache-2.0.txt")
    for name in ("valuebench", "fulcra", "mtbench", *NEW_SOURCES):
        print(name, len(pd.read_parquet(OUT / f"{name}.parquet")), "rows")


if __name__ == "__main__":
    main()
