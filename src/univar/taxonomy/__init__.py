"""The value taxonomy: what values exist, what they mean, and where each definition comes from.

Two layers: the 403 value definitions of ValueBench (44 psychometric inventories, MIT, Value4AI; shipped as
``univar/data/valuebench_values.parquet``) and the classic frameworks the UniVaR paper builds its 87 core
values from (Schwartz, World Values Survey, Hofstede, GLOBE, Rokeach; see :mod:`.frameworks`).
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import pandas as pd

from univar.taxonomy.frameworks import FRAMEWORKS

COLUMNS = ["source", "framework", "value", "definition", "citation"]
VALUEBENCH_CITATION = ("Ren, Y. et al. (2024). ValueBench: Towards comprehensively evaluating value orientations and "
                       "understanding of large language models. ACL 2024; data MIT, (c) 2024 Value4AI.")


@lru_cache(maxsize=1)
def _all_values() -> pd.DataFrame:
    path = resources.files("univar.data").joinpath("valuebench_values.parquet")
    vb = pd.read_parquet(str(path))
    # 177 definitions were cut at their first comma in the published CSV; "[...]" says so.
    definition = vb["definition"].str.strip() + vb["truncated"].map({True: " [...]", False: ""})
    vb = pd.DataFrame({"source": vb["questionnaire"], "framework": "valuebench", "value": vb["value"],
                       "definition": definition, "citation": VALUEBENCH_CITATION})
    rows = [{"source": fid, "framework": fid, "value": name, "definition": text, "citation": fw["citation"]}
            for fid, fw in FRAMEWORKS.items() for name, text in fw["values"].items()]
    return pd.concat([pd.DataFrame(rows, columns=COLUMNS), vb[COLUMNS]], ignore_index=True)


def sources() -> list[str]:
    """Framework ids and inventory names accepted by ``--source``."""
    table = _all_values()
    return list(FRAMEWORKS) + ["valuebench"] + sorted(set(table.loc[table["framework"] == "valuebench", "source"]))


def load_values(source: str | None = None) -> pd.DataFrame:
    """Values with ``source, framework, value, definition, citation``; ``source`` filters (case-insensitive)
    by inventory (``PVQ40``), framework (``schwartz``) or ``valuebench`` (all 403)."""
    table = _all_values()
    if source:
        s = source.strip().lower()
        table = table[(table["source"].str.lower() == s) | (table["framework"].str.lower() == s)]
    return table.reset_index(drop=True)
