"""One self-contained HTML report, and the files that `map` and `compare` write.

A report is shared by e-mail or opened years later from an archive, so it must not depend on anything
outside itself: PNGs are inlined as data URIs, the interactive map carries plotly.js inline, and there is
no font, script or style sheet fetched from the network. Every number comes with a sentence that says
what it means, because the readers are not all machine-learning people.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from univar.analysis import class_distances, nearest_classes, nearest_neighbours
from univar.files import atomic_write
from univar.qa import class_labels, question_folds
from univar.viz import dendrogram_png, fit_map, heatmap_png, map_figure, map_png, write_map_html

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


# --- the files behind `univar map` and `univar compare` ------------------------------------------------

def class_names(table: pd.DataFrame) -> np.ndarray:
    """Each QA's (LLM, language) class label, as an object array for the map's colours and legend."""
    return class_labels(table).to_numpy(dtype=object)


def map_title(table: pd.DataFrame, encoder_name: str, source: str) -> str:
    """The value map's heading: where the QAs come from, the encoder, and how many QAs and classes."""
    n_classes = len(set(class_names(table).tolist()))
    return f"Value map · {source} · encoder {encoder_name} · {len(table):,} QAs · {n_classes} classes"


def write_map_files(table: pd.DataFrame, vectors: np.ndarray, out_dir: str | Path, encoder_name: str,
                    source: str, *, seed: int = 0, color_by: str | None = None,
                    new_table: pd.DataFrame | None = None, new_vectors: np.ndarray | None = None):
    """Fit the map and write ``map.png``, ``map.html`` and ``map_coords.csv`` (and place NEW QAs when given).

    ``map_coords.csv`` has one row per QA: ``class, x, y``, then ``question_fold`` (0 is the folds' held-out
    fold of value identification; new QAs: -1) and ``question``, so anyone can check the map's fidelity.
    Returns ``(value_map, figure, nearest)``; ``nearest`` lists each new class's nearest existing classes
    (None without NEW).
    """
    out_dir = Path(out_dir)
    labels = class_names(table)
    if color_by is None:  # colour by what varies: language when there are several, else model
        color_by = "lang" if table["lang"].nunique() > 1 and table["model"].nunique() == 1 else "model"
    questions = table["question"].astype(str).to_numpy(dtype=object)
    vmap = fit_map(vectors, labels, seed=seed, questions=questions)
    title = map_title(table, encoder_name, source)
    new_coords = nearest = None
    new_labels = None
    if new_table is not None and new_vectors is not None:
        new_coords = vmap.transform(new_vectors)
        new_labels = class_names(new_table)
        frames = []
        for name in sorted(set(new_labels.tolist())):
            mask = new_labels == name
            near = nearest_classes(new_vectors[mask], vectors, labels, k=5, groups=table["question"].to_numpy(),
                                   new_groups=new_table["question"].to_numpy()[mask])
            near.insert(0, "new", name)
            frames.append(near)
        nearest = pd.concat(frames, ignore_index=True)
        nearest.to_csv(out_dir / "nearest.csv", index=False)
        title += f" · + {len(new_table):,} new QAs projected"
    subtitle = vmap.describe()
    map_png(vmap, out_dir / "map.png", title, color_by=color_by, new_coords=new_coords, new_labels=new_labels,
            subtitle=subtitle)
    fig = map_figure(vmap, table, title, color_by=color_by, new_coords=new_coords, new_table=new_table,
                     subtitle=subtitle)
    write_map_html(fig, out_dir / "map.html", title=title)
    coords = pd.DataFrame({"class": labels, "x": vmap.coords[:, 0], "y": vmap.coords[:, 1],
                           "question_fold": question_folds(questions), "question": questions})
    if new_coords is not None:
        coords = pd.concat([coords, pd.DataFrame({"class": [f"new: {c}" for c in new_labels],
                                                   "x": new_coords[:, 0], "y": new_coords[:, 1],
                                                   "question_fold": -1,
                                                   "question": new_table["question"].astype(str).to_numpy()})],
                           ignore_index=True)
    coords.to_csv(out_dir / "map_coords.csv", index=False)
    return vmap, fig, nearest


def write_compare_files(vectors: np.ndarray, labels: Sequence[str], out_dir: str | Path, encoder_name: str,
                        source: str, *, groups: Sequence[str] | None = None, n_boot: int = 200, seed: int = 0,
                        neighbours: int = 3):
    """Class distances with CIs -> ``distances.csv``, ``neighbours.csv``, ``heatmap.png`` (cosine),
    ``heatmap_energy.png`` and ``dendrogram.png``. Returns ``(distances, neighbours_frame)``.

    ``groups`` are the questions of the QAs: shared questions make them the bootstrap's units."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    dist = class_distances(vectors, labels, groups=groups, n_boot=n_boot, seed=seed)
    dist.long().to_csv(out_dir / "distances.csv", index=False, float_format="%.6f")
    cos = dist.matrix("cosine")
    k = min(neighbours, len(dist.classes) - 1)
    near = nearest_neighbours(cos, k)
    energy_near = nearest_neighbours(dist.matrix("energy"), k)
    near["energy_neighbour"] = energy_near["neighbour"].to_numpy()
    near["energy"] = energy_near["distance"].to_numpy()
    near.to_csv(out_dir / "neighbours.csv", index=False, float_format="%.6f")
    ci = round(100 * dist.ci)
    heatmap_png(cos, out_dir / "heatmap.png",
                f"Cosine distance between class mean value vectors · {encoder_name} · {source}"
                + (f"\n(cells: estimate [{ci}% bootstrap CI])" if len(cos) <= 8 and dist.n_boot else ""),
                label="1 - cosine(mean, mean)",
                lo=pd.DataFrame(dist.cosine_lo) if dist.n_boot else None,
                hi=pd.DataFrame(dist.cosine_hi) if dist.n_boot else None)
    heatmap_png(dist.matrix("energy"), out_dir / "heatmap_energy.png",
                f"Energy distance between class QA distributions · {encoder_name} · {source}",
                label="energy distance")
    dendrogram_png(cos, out_dir / "dendrogram.png",
                   f"Classes clustered by value distance (average linkage, cosine) · {encoder_name}",
                   label="1 - cosine(mean, mean)")
    return dist, near
