"""univar's modules in layers by their top-level imports: a module imports only from layers below its own.

``python scripts/import_layers.py`` prints the table; ``--write`` puts it into docs/architecture.md between its
``<!-- layers -->`` markers. tests/docs/test_imports.py checks that the graph has no circle and the doc is current.
"""

from __future__ import annotations

import argparse
import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "univar"
DOC = ROOT / "docs" / "architecture.md"
MARKERS = re.compile(r"(<!-- layers -->\n).*?(<!-- /layers -->)", re.DOTALL)


def module_of(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def top_level_edges() -> dict[str, set[str]]:
    """univar module -> the univar modules it imports at module level (not in functions or TYPE_CHECKING)."""
    modules = {module_of(p): p for p in SRC.rglob("*.py")}
    edges: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            targets = []
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("univar"):
                subs = [f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in modules]
                targets = subs or [node.module]  # `from univar.model import io` imports the submodule io
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names if a.name.startswith("univar")]
            # a submodule reaching its own package (`from univar.model import io` inside univar.model.univar) is
            # how Python packages work, not a circle
            for target in targets:  # importing a.b.c runs a/__init__ and a/b/__init__ first
                parts = target.split(".")
                edges[name] |= {".".join(parts[:i]) for i in range(2, len(parts) + 1)}
        edges[name] = {t for t in edges[name] if t in modules and t != name and not name.startswith(t + ".")}
    return edges


def layers(edges: dict[str, set[str]]) -> dict[str, int]:
    """Module -> its layer: 0 imports no univar module, n imports from layers below n only (needs no circle)."""
    level: dict[str, int] = {}

    def visit(module: str) -> int:
        if module not in level:
            level[module] = 1 + max((visit(t) for t in edges[module]), default=-1)
        return level[module]

    for module in sorted(edges):
        visit(module)
    return level


def table() -> str:
    """The layers as a Markdown table, top layer first (a package stands for its ``__init__.py``)."""
    level = layers(top_level_edges())
    rows = ["| layer | modules (`univar.` left out) |", "| --- | --- |"]
    for n in sorted(set(level.values()), reverse=True):
        names = sorted(m.removeprefix("univar.") for m, lv in level.items() if lv == n and m != "univar")
        if names:
            rows.append(f"| {n} | {', '.join(f'`{m}`' for m in names)} |")
    return "\n".join(rows) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"rewrite the table in {DOC.relative_to(ROOT)}")
    args = parser.parse_args()
    if not args.write:
        print(table(), end="")
        return
    text = DOC.read_text(encoding="utf-8")
    DOC.write_text(MARKERS.sub(lambda m: m.group(1) + table() + m.group(2), text), encoding="utf-8")


if __name__ == "__main__":
    main()
