"""Keep the figures that README.md and docs/ quote equal to what the benchmarks and the demo measured.

Why: numbers typed into prose drift from what the commands print (the README once promised a k-NN accuracy
the demo no longer gave, and a Mantel r that its own command no longer printed). So every measured figure
in the docs sits between markers that name where it comes from, and this script rewrites the text between
them from bench/results/*.json. The markers are HTML comments, which markdown renders as nothing:

  <!-- fig FILE KEY FORMAT -->79.3%<!-- /fig -->          one figure, inline (also inside a table cell)

  <!-- figs FILE                                            a template: each {[FILE] KEY FORMAT} is a figure;
  | ValueBench | {encoders/valuebench/minilm/knn_acc pts1} |   the rendered lines follow the comment, then a
  -->                                                        blank line and the closing marker
  | ValueBench | 26.7 |

  <!-- /figs -->

  <!-- output FILE NAME -->                                 the fenced block below is `$ command` and the
  ```                                                       output stored in FILE under examples.NAME
  $ univar ...
  ```

  <!-- record REASON -->45.9 at 8 epochs<!-- /record -->    a past, one-off measurement that no benchmark
                                                           repeats (the text must say so): left as it is

FILE is a file in bench/results/. KEY is a row's ``figure`` (exactly, or the start of exactly one row's
figure; quoted when it has spaces), with ``@FIELD`` for a field other than ``value`` (``@ratio``,
``@baseline``, ``@target``, ``@pair``); or, in a file without that row, a path of keys joined by ``/``
(``encoders/valuebench/univar/knn_acc``). FORMAT is one of FORMATS, with a leading ``+`` to sign it.

    python scripts/sync_docs.py            rewrite what is stale, in place, and list it (``make docs``)
    python scripts/sync_docs.py --check    change nothing; exit 1 listing stale or broken markers

tests/docs/test_docs_numbers.py runs the check, and fails on a percentage or decimal in the docs outside markers.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

FORMATS: dict[str, Callable[[float], str]] = {
    "pct0": lambda v: f"{100 * v:.0f}%", "pct1": lambda v: f"{100 * v:.1f}%", "pct2": lambda v: f"{100 * v:.2f}%",
    "pts1": lambda v: f"{100 * v:.1f}", "pts2": lambda v: f"{100 * v:.2f}",  # a fraction in points, no % sign
    "f1": lambda v: f"{v:.1f}", "f2": lambda v: f"{v:.2f}", "f3": lambda v: f"{v:.3f}", "f4": lambda v: f"{v:.4f}",
    "int": lambda v: f"{round(v):,}",  # 2,394
    "x1": lambda v: f"{v:.1f}x", "x2": lambda v: f"{v:.2f}x",  # a ratio: 2.1x
    "s": lambda v: f"{v:.0f} s",  # seconds
    "mins": lambda v: f"{round(v) // 60} min {round(v) % 60} s",  # seconds as 3 min 54 s
    "gb1": lambda v: f"{v / 1e9:.1f} GB",  # bytes on disk, as du -sh says it
    "gib2": lambda v: f"{v / 2**30:.2f}",  # bytes in GiB
    "text": str,
}

INLINE = re.compile(r"<!-- fig ([^\n]*?) -->([^\n]*?)<!-- /fig -->")
BLOCK = re.compile(r"<!-- figs (\S+)\n(.*?)\n-->\n(.*?)<!-- /figs -->", re.S)
PLACEHOLDER = re.compile(r"\{([^{}\n]+)\}")
OUTPUT = re.compile(r"<!-- output (\S+) (\S+) -->\n(```[^\n]*\n)(.*?)(```)", re.S)


class MarkerError(ValueError):
    pass


_loaded: dict[str, dict] = {}


def load(name: str) -> dict:
    if name not in _loaded:
        path = RESULTS / name
        if not path.exists():
            raise MarkerError(f"no {path.relative_to(ROOT)}")
        _loaded[name] = json.loads(path.read_text(encoding="utf-8"))
    return _loaded[name]


def lookup(name: str, key: str):
    """The value KEY names in bench/results/NAME: a row's field, else a /-path into the JSON."""
    data = load(name)
    figure, _, field = key.rpartition("@") if re.search(r"@[A-Za-z_]\w*$", key) else (key, "", "")
    rows = data.get("rows", [])
    found = [r for r in rows if r["figure"] == figure] or [r for r in rows if r["figure"].startswith(figure)]
    if len(found) > 1:
        raise MarkerError(f"{name}: {figure!r} starts {len(found)} figures; quote more of it")
    if found:
        if (field or "value") not in found[0]:
            raise MarkerError(f"{name}: the row {found[0]['figure']!r} has no field {field!r}")
        return found[0][field or "value"]
    node = data
    for part in key.split("/"):
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            raise MarkerError(f"{name}: no row or path {key!r}")
    return node


def render(spec: str, default_file: str | None = None) -> str:
    """``[FILE] KEY FORMAT`` -> the figure as the docs print it."""
    try:
        parts = shlex.split(spec)
    except ValueError as exc:
        raise MarkerError(f"unreadable marker {spec!r}: {exc}") from None
    if len(parts) == 2 and default_file:
        parts.insert(0, default_file)
    if len(parts) != 3:
        raise MarkerError(f"marker {spec!r}: expected FILE KEY FORMAT")
    name, key, fmt = parts
    sign, fmt = fmt.startswith("+"), fmt.lstrip("+")
    if fmt not in FORMATS:
        raise MarkerError(f"marker {spec!r}: unknown format {fmt!r} (known: {', '.join(FORMATS)})")
    value = lookup(name, key)
    if value is None or (fmt != "text" and not isinstance(value, (int, float))):
        raise MarkerError(f"marker {spec!r}: {value!r} is not a number")
    text = FORMATS[fmt](value)
    return "+" + text if sign and not text.startswith("-") else text


def render_output(name: str, example: str) -> str:
    block = load(name).get("examples", {}).get(example)
    if not block:
        raise MarkerError(f"{name}: no examples/{example}")
    return f"$ {block['command']}\n{block['output']}\n"


def sync_text(text: str) -> tuple[str, list[str], list[str]]:
    """``text`` with every marker's figure rendered from the results; a line per change; a line per error."""
    notes: list[str] = []
    errors: list[str] = []

    def line_of(pos: int) -> int:
        return text.count("\n", 0, pos) + 1

    def rewrite(m: re.Match, produce, old: str, note: str, wrap) -> str:
        """The marker ``m`` with ``produce()`` inside it; unchanged (and an error noted) when that fails."""
        try:
            new = produce()
        except MarkerError as exc:
            errors.append(f"{line_of(m.start())}: error: {exc}")
            return m.group(0)
        if new != old:
            notes.append(f"{line_of(m.start())}: {note(new)}")
        return wrap(new)

    def inline(m: re.Match) -> str:
        return rewrite(m, lambda: render(m.group(1)), m.group(2),
                       lambda new: f"[{m.group(1)}] {m.group(2)!r} -> {new!r}",
                       lambda new: f"<!-- fig {m.group(1)} -->{new}<!-- /fig -->")

    def block(m: re.Match) -> str:
        name, template = m.group(1), m.group(2)
        return rewrite(m, lambda: PLACEHOLDER.sub(lambda p: render(p.group(1), name), template) + "\n\n",
                       m.group(3), lambda new: f"figs from {name} re-rendered",
                       lambda new: f"<!-- figs {name}\n{template}\n-->\n{new}<!-- /figs -->")

    def output(m: re.Match) -> str:
        return rewrite(m, lambda: render_output(m.group(1), m.group(2)), m.group(4),
                       lambda new: f"output {m.group(1)} {m.group(2)} re-rendered",
                       lambda new: f"<!-- output {m.group(1)} {m.group(2)} -->\n{m.group(3)}{new}{m.group(5)}")

    text = BLOCK.sub(block, text)
    text = OUTPUT.sub(output, text)
    return INLINE.sub(inline, text), notes, errors


def marked_spans(text: str) -> list[tuple[int, int]]:
    """Where the markers and the figures they hold are (for the test that finds unmarked figures)."""
    return [m.span() for pattern in (INLINE, BLOCK, OUTPUT) for m in pattern.finditer(text)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Rewrite the figures in README.md and docs/ from bench/results.")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if anything is stale")
    parser.add_argument("files", nargs="*", type=Path, help="markdown files (default: README.md, docs/*.md)")
    args = parser.parse_args(argv)
    stale = broken = False
    for path in args.files or DOCS:
        text = path.read_text(encoding="utf-8")
        new, notes, errors = sync_text(text)
        for note in notes + errors:
            print(f"{os.path.relpath(path)}:{note}")
        stale, broken = stale or bool(notes), broken or bool(errors)
        if not args.check and new != text:
            path.write_text(new, encoding="utf-8")
    if args.check and stale:
        print("stale figures above: run `python scripts/sync_docs.py` (after the benchmark they quote)")
    return 1 if broken or (args.check and stale) else 0


if __name__ == "__main__":
    sys.exit(main())
