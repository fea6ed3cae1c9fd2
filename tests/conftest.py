"""Shared fixtures: a private embedding cache per test session and small real subsets of bundled data."""

from __future__ import annotations

import os

import pandas as pd
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("UNIVAR_PROGRESS", "0")


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    """Every test gets the session's private cache, never the user's ~/.cache/univar."""
    monkeypatch.setenv("UNIVAR_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "univar-cache"))


@pytest.fixture(scope="session")
def valuebench() -> pd.DataFrame:
    from univar.qa import read_qa

    return read_qa("bundled:valuebench")


@pytest.fixture(scope="session")
def small_qa(valuebench) -> pd.DataFrame:
    """All six LLMs' answers to 40 questions: 240 real QAs, quick to embed on 2 cores."""
    questions = sorted(valuebench["question"].unique())[::40][:40]
    return valuebench[valuebench["question"].isin(questions)].reset_index(drop=True)


@pytest.fixture(scope="session")
def minilm():
    from univar.encoders import get_encoder

    return get_encoder("minilm")
