"""Rich tables that keep the names a user types whole, on any terminal width (80 columns included).

rich fits a table that is too wide by shrinking its columns, and a word that no longer fits is cut with an
ellipsis: an 80-column terminal showed ``bundled:valuebench…`` (a name the user has to type) and headers cut
to ``separa…``. A :class:`FitTable` is laid out when it is printed, at the width it is given: a name or
number column is never wrapped or cut, a text column wraps at spaces only, and where the columns still do
not fit, the least important ones are left out (the caption says which) rather than anything being cut.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

NAME, NUMBER, TEXT = "name", "number", "text"


@dataclass(frozen=True)
class Col:
    """One column: its header (``\\n`` breaks a long header where it reads well) and how it may be laid out.

    ``kind``: ``name`` (something a user types: one line, never cut) and ``number`` (one line) keep each
    cell on its lines; ``text`` wraps at spaces (a word longer than the column folds: nothing is cut).
    ``drop``: 0 is always shown; when the table does not fit, the columns with the highest ``drop`` are left
    out first (together: the pair A, B goes as one). ``min_width``: a text column narrower than this is not
    worth showing, so columns are left out instead.
    """

    header: str
    kind: str = NUMBER
    drop: int = 0
    justify: str | None = None  # default: numbers to the right, names and text to the left
    min_width: int = 20


def _plain(cell: object) -> str:
    """What a cell shows: rich reads a str cell as markup (``\\[`` shows ``[``)."""
    if isinstance(cell, Text):
        return cell.plain
    return Text.from_markup(str(cell)).plain


def _widths(col: Col, cells: list[str]) -> tuple[int, int]:
    """(need, full): the narrowest width that cuts nothing in the column, and the width of its longest line."""
    lines = [line for text in [col.header, *cells] for line in text.splitlines()] or [""]
    full = max(cell_len(line) for line in lines)
    if col.kind != TEXT:
        return full, full
    # a text column's header words stay whole; a word in its cells longer than the column folds (rare: a URL)
    word = max((cell_len(w) for w in col.header.split()), default=0)
    return min(full, max(word, col.min_width)), full


class FitTable:
    """A rich table laid out at print time for the console's width (see the module docstring)."""

    def __init__(self, *columns: Col, title: str | None = None, caption: str | None = None, **options):
        self.columns, self.title, self.caption, self.options = list(columns), title, caption, options
        self.rows: list[list[str]] = []

    def add_row(self, *cells: str) -> None:
        if len(cells) != len(self.columns):
            raise ValueError(f"{len(cells)} cells for {len(self.columns)} columns")
        self.rows.append(list(cells))

    def _extra(self, n: int) -> int:
        """The width a table of ``n`` columns takes beyond its cells: padding and borders."""
        probe = Table(**self.options)
        _, right, _, left = probe.padding
        return n * (left + right) + ((2 if probe.show_edge else 0) + n - 1 if probe.box else 0)

    def shown(self, width: int) -> list[int]:
        """The columns shown at ``width``: all, less the most droppable ones while the rest do not fit."""
        keep = list(range(len(self.columns)))
        need = [_widths(c, [_plain(r[i]) for r in self.rows])[0] for i, c in enumerate(self.columns)]
        while sum(need[i] for i in keep) + self._extra(len(keep)) > width:
            highest = max((self.columns[i].drop for i in keep), default=0)
            if highest == 0:
                break
            keep = [i for i in keep if self.columns[i].drop != highest]  # a pair (A and B) leaves together
        return keep

    def layout(self, width: int) -> Table:
        """The rich table for ``width``: name and number columns at full width, text columns share the rest."""
        keep = self.shown(width)
        sizes = [_widths(self.columns[i], [_plain(r[i]) for r in self.rows]) for i in keep]
        spare = width - sum(need for need, _ in sizes) - self._extra(len(keep))
        fits = spare >= 0
        alloc = [need for need, _ in sizes]
        while fits and spare > 0 and any(alloc[k] < full for k, (_, full) in enumerate(sizes)):
            k = max(range(len(sizes)), key=lambda k: sizes[k][1] - alloc[k])  # the most cut-down text column
            alloc[k] += 1
            spare -= 1
        left_out = [self.columns[i].header.replace("\n", " ") for i in range(len(self.columns)) if i not in keep]
        caption = self.caption
        if left_out:
            caption = ((caption + "\n") if caption else "") + f"left out at this width: {', '.join(left_out)} " \
                f"(a wider terminal shows {'it' if len(left_out) == 1 else 'them'})"
        table = Table(title=self.title, caption=caption, **self.options)
        for k, i in enumerate(keep):
            col = self.columns[i]
            justify = col.justify or ("right" if col.kind == NUMBER else "left")
            if fits:  # fixed widths that add up to at most ``width``: rich has nothing to shrink
                table.add_column(col.header, justify=justify, width=alloc[k], no_wrap=col.kind != TEXT,
                                 overflow="fold")
            else:  # even the kept columns do not fit: fold (every character kept) rather than cut
                table.add_column(col.header, justify=justify, overflow="fold")
        for row in self.rows:
            table.add_row(*(row[i] for i in keep))
        return table

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield self.layout(options.max_width)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement.get(console, options, self.layout(options.max_width))
