"""No import cycle: every module imports on its own, in any order, and univar's top-level imports form no circle."""

from __future__ import annotations

import ast
import pkgutil
import random
import subprocess
import sys
from pathlib import Path

import pytest

import univar

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import import_layers  # noqa: E402

SRC = Path(univar.__file__).resolve().parent
MODULES = sorted(m.name for m in pkgutil.walk_packages([str(SRC)], prefix="univar.")
                 if not m.name.endswith("__main__"))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_module_imports_in_a_fresh_interpreter_in_any_order(seed):
    order = MODULES[:]
    random.Random(seed).shuffle(order)
    code = "import importlib\nfor name in %r:\n    importlib.import_module(name)\n" % order
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]


def test_univar_top_level_imports_form_no_circle():
    edges = import_layers.top_level_edges()
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                raise AssertionError("import circle: " + " -> ".join(path[path.index(nxt):] + [nxt]))
            if nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module)


def test_the_architecture_doc_shows_the_layers_of_the_code():
    doc = import_layers.DOC.read_text(encoding="utf-8")
    shown = import_layers.MARKERS.search(doc)
    assert shown and shown.group(0) == shown.group(1) + import_layers.table() + shown.group(2), \
        "docs/architecture.md is stale: python scripts/import_layers.py --write"


def _in_function_univar_imports() -> dict[str, list[str]]:
    """univar module imported inside a function -> where ("file:line"); TYPE_CHECKING blocks are not imports."""
    found: dict[str, list[str]] = {}
    for path in SRC.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for func in ast.walk(tree):
            if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(func):
                targets = []
                if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("univar"):
                    targets = [f"univar.{a.name}" if node.module == "univar" else node.module for a in node.names]
                elif isinstance(node, ast.Import):
                    targets = [a.name for a in node.names if a.name.startswith("univar")]
                for target in targets:
                    where = f"{path.relative_to(SRC.parent)}:{node.lineno}"
                    if where not in found.setdefault(target, []):
                        found[target].append(where)
    return found


@pytest.mark.slow
def test_univar_modules_are_imported_inside_functions_only_where_they_load_torch():
    """univar's own imports sit at the top of each module. The one exception: the command line and
    ``import univar`` reach ``univar.model``, ``univar.registry`` and ``univar.demo`` (which load torch, a
    second or more) only inside the commands that use them, so that ``univar --help``, ``datasets`` or
    ``elicit`` against a server never pay for it. Any other in-function import of a univar module fails here."""
    found = _in_function_univar_imports()
    light = []
    for name in sorted(found):
        code = f"import importlib, sys; importlib.import_module({name!r}); print('torch' in sys.modules)"
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        if done.stdout.split() != ["True"]:
            light.append(name)
    assert not light, "import these at the top of the module: " + "; ".join(f"{m} ({', '.join(found[m])})"
                                                                             for m in light)


@pytest.mark.parametrize("args", [["--help"], ["datasets"], ["elicit", "--help"]])
def test_the_command_line_starts_without_torch(args):
    code = ("import runpy, sys\nsys.argv = ['univar', *%r]\n"
            "try:\n    runpy.run_module('univar', run_name='__main__')\n"
            "except SystemExit as exc:\n    assert not exc.code, exc.code\n"
            "print('torch' in sys.modules, file=sys.stderr)\n" % args)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stderr.strip().splitlines()[-1] == "False", "torch was imported"
