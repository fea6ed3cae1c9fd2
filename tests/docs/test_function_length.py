"""Short orchestration: no function of the package runs over 60 lines unless a comment right above it says why."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import univar

SRC = Path(univar.__file__).resolve().parent
LIMIT = 60
REASON = re.compile(r"#.*\b(longer than|over) 60 lines\b", re.IGNORECASE)


def _long_functions(paths: list[Path]) -> list[tuple[str, int, int, bool]]:
    """(file:name, first line, length, has a reason comment) of every function over LIMIT lines."""
    found = []
    for path in paths:
        lines = path.read_text(encoding="utf-8").splitlines()
        for node in ast.walk(ast.parse("\n".join(lines))):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            length = node.end_lineno - node.lineno + 1
            if length > LIMIT:
                above = lines[max(first - 4, 0):first - 1]  # the comment block just above (and its decorators)
                found.append((f"{path.name}:{node.name}", node.lineno, length,
                              any(REASON.search(line) for line in above)))
    return found


def test_long_functions_say_why():
    found = _long_functions(sorted(SRC.rglob("*.py")))
    unexplained = [f"{name} (line {line}, {length} lines)" for name, line, length, ok in found if not ok]
    assert not unexplained, "split these, or say above them why they are over 60 lines: " + "; ".join(unexplained)


def test_the_check_flags_a_long_function_without_a_reason(tmp_path):
    body = "".join(f"    x{i} = {i}\n" for i in range(LIMIT))
    (tmp_path / "bare.py").write_text(f"def short():\n    pass\n\n\n@decorator\ndef long():\n{body}")
    (tmp_path / "why.py").write_text(f"# Over 60 lines on purpose: one table.\n@decorator\ndef long():\n{body}")
    found = {name: ok for name, _, _, ok in _long_functions(sorted(tmp_path.glob("*.py")))}
    assert found == {"bare.py:long": False, "why.py:long": True}
