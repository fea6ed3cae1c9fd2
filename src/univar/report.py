"""One self-contained HTML report (the demo's); the files `map` and `compare` write are theirs (univar.commands).

A report is shared by e-mail or opened years later from an archive, so it must not depend on anything
outside itself: PNGs are inlined as data URIs, the interactive map carries plotly.js inline, and there is
no font, script or style sheet fetched from the network. Every number comes with a sentence that says
what it means, because the readers are not all machine-learning people.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
from pathlib import Path

import numpy as np
import pandas as pd

from univar.files import atomic_write

CARD_NAMES = ("MODEL_CARD.md", "model_card.md", "MODEL-CARD.md", "card.md", "README.md")

STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;max-width:1180px;
margin:0 auto;padding:24px 32px 64px;color:#1d2330;line-height:1.5}
h1{font-size:1.8em;margin-bottom:.2em}h2{margin-top:2em;border-bottom:1px solid #dde2ea;padding-bottom:.2em}
h3{margin-top:1.4em}.sub{color:#5b6475;margin-top:0}
table{border-collapse:collapse;margin:.8em 0 .4em;font-size:.92em}
th,td{border:1px solid #d5dae3;padding:4px 9px;text-align:right;vertical-align:top}
th{background:#f1f4f8}td.text,th.text{text-align:left}tr:nth-child(even) td{background:#fafbfd}
figure{margin:1em 0}figure img{max-width:100%;border:1px solid #e3e7ee}\
figcaption,.caption{color:#5b6475;font-size:.9em}
.note{background:#f6f8fb;border-left:4px solid #8aa4d6;padding:8px 14px;margin:1em 0}
.warn{background:#fff7e6;border-left:4px solid #e0a526;padding:8px 14px;margin:1em 0}
.qa{border:1px solid #e3e7ee;border-radius:6px;padding:8px 12px;margin:.4em 0;background:#fcfcfe}
.qa b{color:#34405a}.pair{display:grid;grid-template-columns:1fr 1fr;gap:12px}
nav ul{columns:2}code{background:#f1f4f8;padding:1px 4px;border-radius:3px}
.card{border:1px solid #dde2ea;padding:4px 18px;border-radius:6px;background:#fdfdfe;overflow-wrap:break-word}
.card table{display:block;max-width:100%;overflow-x:auto}
.card h3{font-size:1.25em;margin-top:.8em}.card h4{font-size:1.05em}
"""


def esc(text: object) -> str:
    """Any value as text safe inside HTML elements and quoted attributes."""
    return html.escape(str(text), quote=True)


def pct(x: float | None, digits: int = 1) -> str:
    """A share as a percentage; None (a score that cannot be computed on the data, e.g. acc@10 of 6 classes): -."""
    return "-" if x is None else f"{100 * x:.{digits}f}%"


class Report:
    """An HTML document built section by section; ``write`` produces one file with everything inline."""

    def __init__(self, title: str, subtitle: str = ""):
        self.title, self.subtitle = title, subtitle
        self.parts: list[str] = []
        self.toc: list[tuple[str, str]] = []
        self._plotly_inlined = False

    def heading(self, text: str, level: int = 2) -> str:
        anchor = "s" + str(len(self.toc) + 1)
        if level == 2:
            self.toc.append((anchor, text))
        self.parts.append(f'<h{level} id="{anchor}">{esc(text)}</h{level}>')
        return anchor

    def paragraph(self, text: str, cls: str | None = None, raw: bool = False) -> None:
        body = text if raw else esc(text)
        self.parts.append(f'<p class="{cls}">{body}</p>' if cls else f"<p>{body}</p>")

    def note(self, text: str, warn: bool = False, raw: bool = False) -> None:
        body = text if raw else esc(text)
        self.parts.append(f'<div class="{"warn" if warn else "note"}">{body}</div>')

    def raw(self, markup: str) -> None:
        self.parts.append(markup)

    def table(self, frame: pd.DataFrame, caption: str | None = None, formats: dict[str, str] | None = None,
              table_id: str | None = None) -> None:
        """A DataFrame as an HTML table; text columns left-aligned, numbers formatted per column."""
        formats = formats or {}
        head = "".join(f'<th class="{"text" if not _numeric(frame[c]) else ""}">{esc(c)}</th>' for c in frame.columns)
        rows = []
        for _, row in frame.iterrows():
            cells = []
            for c in frame.columns:
                v = row[c]
                if _numeric(frame[c]) and isinstance(v, (int, float, np.integer, np.floating)):
                    text = formats.get(c, "{:.3f}" if isinstance(v, (float, np.floating)) else "{}").format(v)
                    cells.append(f"<td>{esc(text)}</td>")
                else:
                    cells.append(f'<td class="text">{esc(v)}</td>')
            rows.append("<tr>" + "".join(cells) + "</tr>")
        ident = f' id="{esc(table_id)}"' if table_id else ""
        cap = f"<caption class=\"caption\">{esc(caption)}</caption>" if caption else ""
        self.parts.append(f"<table{ident}>{cap}<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>")

    def image(self, path: str | Path, alt: str, caption: str | None = None) -> None:
        """A PNG inlined as a data URI (the report stays one file)."""
        data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
        cap = f"<figcaption>{esc(caption)}</figcaption>" if caption else ""
        self.parts.append(f'<figure><img alt="{esc(alt)}" src="data:image/png;base64,{data}">{cap}</figure>')

    def plotly(self, fig, div_id: str) -> None:
        """An interactive plotly figure; plotly.js is inlined once, before the first figure."""
        markup = fig.to_html(full_html=False, include_plotlyjs=not self._plotly_inlined, div_id=div_id,
                             config={"displaylogo": False, "responsive": True})
        self._plotly_inlined = True
        self.parts.append(f'<div class="plot">{markup}</div>')

    def render(self) -> str:
        stamp = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        toc = "".join(f'<li><a href="#{a}">{esc(t)}</a></li>' for a, t in self.toc)
        sub = f'<p class="sub">{esc(self.subtitle)}</p>' if self.subtitle else ""
        return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
                "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
                f"<title>{esc(self.title)}</title>"
                f"<style>{STYLE}</style></head><body><h1>{esc(self.title)}</h1>{sub}"
                f"<p class=\"sub\">Written by univar on {stamp}. This file is self-contained: it works offline.</p>"
                f"<nav><ul>{toc}</ul></nav>{''.join(self.parts)}</body></html>\n")

    def write(self, path: str | Path) -> Path:
        return atomic_write(path, self.render())


def _numeric(column: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)


def markdown_html(text: str, shift: int = 0) -> str:
    """Markdown (a model card) to HTML with markdown-it (installed with rich); raw HTML in it is escaped.

    ``shift`` demotes headings (1: ``#`` becomes ``<h2>``; at most ``<h6>``), so a document embedded under a
    report section does not outrank the report's own headings.
    """
    try:
        from markdown_it import MarkdownIt
    except ImportError:  # pragma: no cover - rich always brings markdown-it
        return f"<pre>{esc(text)}</pre>"
    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    tokens = md.parse(text)
    for token in tokens:
        if token.type in ("heading_open", "heading_close"):
            token.tag = f"h{min(int(token.tag[1]) + shift, 6)}"
    return md.renderer.render(tokens, md.options, {})


def find_model_card(encoder) -> Path | None:
    """The model card beside a univar model's weights, if the encoder has a model directory with one."""
    candidates = []
    for attr in ("path", "model"):
        obj = getattr(encoder, attr, None)
        if isinstance(obj, Path):
            candidates.append(obj)
        elif obj is not None and isinstance(getattr(obj, "path", None), Path):
            candidates.append(obj.path)
    for folder in candidates:
        for name in CARD_NAMES:
            if (folder / name).is_file():
                return folder / name
    return None
