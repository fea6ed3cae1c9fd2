"""The house rules a maintainer relies on: no module over 600 lines, no compatibility shims, typed, no circle."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "univar"
MAX_LINES = 600


def test_no_module_is_over_600_lines():
    long = {str(p.relative_to(SRC)): n for p in SRC.rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}


def test_no_deprecated_names_are_kept_for_old_callers():
    """A 0.1 package has no users to keep: an old name is renamed, not kept beside the new one with a warning."""
    hits = [str(p.relative_to(SRC)) for p in SRC.rglob("*") if p.is_file() and p.suffix in (".py", ".md", ".json")
            and "deprecated" in p.read_text(encoding="utf-8", errors="ignore").lower()]
    assert hits == []


def test_the_package_says_it_is_typed():
    assert files("univar").joinpath("py.typed").is_file()
    pyproject = (SRC.parents[1] / "pyproject.toml").read_text(encoding="utf-8")
    assert '"py.typed"' in pyproject  # shipped as package data, so an installed univar is typed too
