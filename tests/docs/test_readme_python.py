"""The README's Python section runs as written (with the data and the training made small)."""

from __future__ import annotations

import pytest

import univar


@pytest.fixture(scope="module")
def table(small_qa):
    return small_qa.reset_index(drop=True)


@pytest.mark.slow
def test_readme_python_snippets_run_as_written(table, tmp_path, monkeypatch):
    """Each ```python block of the README, executed in order in one namespace.

    Two things are made small so the suite stays quick, and nothing else is changed: ``univar.read_qa``
    returns the test subset (40 ValueBench questions), and ``univar.train`` runs 1 short epoch.
    """
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Python\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) >= 2 and "univar.train(" in blocks[0]
    full_train = univar.train
    monkeypatch.setattr(univar, "read_qa", lambda source, mapping=None: table)
    monkeypatch.setattr(univar, "train", lambda data, **kw: full_train(
        data, **kw, epochs=1, steps_per_epoch=3, hidden=32, batch_size=16, progress=False))
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102 - our own README
    assert namespace["vectors"].shape == (len(table), namespace["model"].dim)
    assert (tmp_path / "models" / "copy" / "univar.json").is_file()
    assert isinstance(namespace["trained"], univar.UniVaR) and (tmp_path / "models" / "mine").is_dir()
    assert namespace["result"].to_dict()["split"] == "question" and len(namespace["per_llm"]) == 6
