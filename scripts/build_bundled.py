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


def main() -> None:
    (OUT / "licenses").mkdir(parents=True, exist_ok=True)
    vb = pd.read_csv(SHARED / "valuebench" / "answers.csv", dtype=str, keep_default_na=False)
    vb["rating"] = pd.to_numeric(vb["rating"], errors="coerce")
    vb["agreement"] = pd.to_numeric(vb["agreement"], errors="coerce")
    vb.insert(0, "source", "valuebench")
    vb.to_parquet(OUT / "valuebench.parquet", index=False, compression="zstd")
    fu = pd.read_csv(SHARED / "fulcra" / "answers.csv", dtype=str, keep_default_na=False)
    fu.to_parquet(OUT / "fulcra.parquet", index=False, compression="zstd")
    mt = pd.read_parquet(SHARED / "mtbench-multilingual" / "answers.parquet")
    mt.insert(0, "source", "mtbench")
    mt.to_parquet(OUT / "mtbench.parquet", index=False, compression="zstd")
    for name, licence in NEW_SOURCES.items():  # already cleaned upstream (see ../shared/data/README.md)
        table = pd.read_parquet(SHARED / name / "answers.parquet")
        table.to_parquet(OUT / f"{name}.parquet", index=False, compression="zstd")
        shutil.copy(SHARED / name / "LICENSE", OUT / "licenses" / f"{name}-{licence}.txt")
    shutil.copy(SHARED / "valuebench" / "LICENSE", OUT / "licenses" / "valuebench-MIT.txt")
    shutil.copy(SHARED / "fulcra" / "LICENSE", OUT / "licenses" / "fulcra-MIT.txt")
    shutil.copy(SHARED / "mtbench-multilingual" / "LICENSE", OUT / "licenses" / "mtbench-Apache-2.0.txt")
    for name in ("valuebench", "fulcra", "mtbench", *NEW_SOURCES):
        print(name, len(pd.read_parquet(OUT / f"{name}.parquet")), "rows")


if __name__ == "__main__":
    main()
