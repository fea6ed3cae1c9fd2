"""Shared fixtures: a private embedding cache per test session, small real subsets of bundled data, the encoders
and the tiny concat-mode base tests train on, and one demo run shared by the report and browser tests."""

from __future__ import annotations

import io
import os
from pathlib import Path

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
def session_cache(tmp_path_factory):
    """The same private cache as conftest's autouse fixture, usable from session fixtures."""
    path = tmp_path_factory.getbasetemp() / "univar-cache"
    old = os.environ.get("UNIVAR_CACHE_DIR")
    os.environ["UNIVAR_CACHE_DIR"] = str(path)
    yield path
    if old is None:
        os.environ.pop("UNIVAR_CACHE_DIR", None)
    else:
        os.environ["UNIVAR_CACHE_DIR"] = old


@pytest.fixture(scope="session")
def int8_graph(session_cache) -> Path:
    """The int8 MiniLM graph (``univar.quantize``), built once a session in the private cache (about 15 s)."""
    from univar.quantize import int8_minilm_path

    return int8_minilm_path()


@pytest.fixture
def own_cache(int8_graph):
    """``own_cache(path)``: an empty cache at ``path`` for a test that must start from nothing cached, with the
    session's int8 graph linked in, so that each such test does not build the graph again."""
    def make(path: Path) -> Path:
        (path / "models").mkdir(parents=True, exist_ok=True)
        link = path / "models" / int8_graph.name
        if not link.exists():
            link.symlink_to(int8_graph)
        return path

    return make


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
    from univar.registry import get_encoder

    return get_encoder("minilm")


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory) -> Path:
    """A tiny sentence-transformers folder (helpers.tiny_base), for concat-mode training on 2 CPU cores."""
    from helpers.tiny_base import make_tiny_base

    return make_tiny_base(tmp_path_factory.mktemp("tiny-base"))


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory):
    """The demo on 40 ValueBench questions (shared by the report and browser tests)."""
    from rich.console import Console

    from univar.demo import run_demo

    out = tmp_path_factory.mktemp("demo")
    buffer = io.StringIO()
    summary = run_demo(out, per_class=40, console=Console(file=buffer, width=120))
    return out, summary, buffer.getvalue()
