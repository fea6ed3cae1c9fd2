"""The map / compare / explain commands end to end, the report builder, and the demo report.

Real minilm embeddings of real bundled ValueBench answers (40 questions x 6 LLMs), through the CLI's
``main`` so exit codes and the ``error:`` contract are checked too.
"""

from __future__ import annotations

import html
import json
import re

import numpy as np
import pandas as pd
import pytest

from univar.cli import main
from univar.qa import write_qa
from univar.report import Report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def qa_files(tmp_path_factory, valuebench, small_qa):
    folder = tmp_path_factory.mktemp("qa")
    small = write_qa(small_qa, folder / "small.csv")
    held = valuebench[~valuebench["question"].isin(set(small_qa["question"])) &
                      (valuebench["model"] == "llama-7b-chat")].sample(30, random_state=1).copy()
    held["model"] = "newcomer"
    new = write_qa(held, folder / "new.jsonl")
    return small, new


@pytest.mark.slow
def test_map_command_with_add_lists_nearest_classes(tmp_path, qa_files, capsys, monkeypatch):
    small, new = qa_files
    monkeypatch.setenv("UNIVAR_PROGRESS", "1")  # stderr is not a terminal here: plain progress lines
    rc = main(["map", str(small), "--encoder", "minilm", "--out", str(tmp_path), "--add", str(new)])
    assert rc == 0
    captured = capsys.readouterr()
    printed = captured.out
    # every long step says when it starts and ends: no silent minutes after the embedding bar
    for step in ("class evidence for", "UMAP layout of"):
        assert re.search(step + r".*\.\.\.", captured.err) and re.search(step + r".*: done in", captured.err), \
            captured.err
    assert "nearest classes of new newcomer$en" in printed
    assert (tmp_path / "map.png").read_bytes().startswith(PNG_MAGIC)
    assert "Plotly.newPlot" in (tmp_path / "map.html").read_text(encoding="utf-8")
    nearest = pd.read_csv(tmp_path / "nearest.csv")
    assert nearest["class"].iloc[0] == "llama-7b-chat$en"  # the held-out LLM is recognised
    # the table printed lists the same first class
    first_row = next(line for line in printed.splitlines() if re.search(r"\b1\b.*\$en", line))
    assert "llama-7b-chat$en" in first_row


def test_compare_command_writes_distances_heatmap_dendrogram_and_mantel(tmp_path, qa_files, capsys):
    small, _ = qa_files
    rc = main(["compare", str(small), "--encoder", "minilm", "--out", str(tmp_path), "--bootstrap", "50"])
    assert rc == 0
    printed = capsys.readouterr().out
    for name in ("heatmap.png", "dendrogram.png", "heatmap_energy.png"):
        assert (tmp_path / name).read_bytes().startswith(PNG_MAGIC)
    distances = pd.read_csv(tmp_path / "distances.csv")
    assert len(distances) == 15
    assert list(distances.columns[:4]) == ["class_a", "class_b", "n_a", "n_b"]
    assert ((distances["cosine_lo"] <= distances["cosine"]) & (distances["cosine"] <= distances["cosine_hi"])).all()
    mantel = json.loads((tmp_path / "mantel.json").read_text())
    assert mantel["n_classes"] == 6 and mantel["exact"] and mantel["permutations"] == 720
    assert -1 <= mantel["r"] <= 1 and 1 / 720 <= mantel["p"] <= 1
    assert "Mantel" in printed and "nearest classes" in printed


def test_explain_command_names_values_and_examples(tmp_path, qa_files, capsys):
    small, _ = qa_files
    out_json = tmp_path / "explain.json"
    rc = main(["explain", str(small), "--encoder", "minilm", "--a", "gpt-4-1106-preview", "--b",
               "llama-7b-chat$en", "--top", "3", "--json", str(out_json)])
    assert rc == 0
    data = json.loads(out_json.read_text())
    assert data["class_a"] == "gpt-4-1106-preview$en" and data["grouping"] == "value"
    assert len(data["examples"]) == min(3, len(data["values"]))
    ex = data["examples"][0]
    assert ex["question_a"] and ex["answer_a"] and ex["answer_b"]
    printed = capsys.readouterr().out
    flat = " ".join(printed.split())
    assert "gpt-4-1106-preview$en" in flat and "SE" in flat and "ranked by score = separation - SE" in flat
    # the printed ranking is the JSON's, highest score first
    shown = [f"{v['score']:.4f}" for v in data["values"][:3]]
    table_part = printed.split("\n\n")[0]
    assert [table_part.index(f" {x} ") for x in shown] == sorted(table_part.index(f" {x} ") for x in shown)
    scores = [v["score"] for v in data["values"]]
    assert scores == sorted(scores, reverse=True)


@pytest.mark.parametrize("argv, message", [
    (["map", "{small}", "--encoder", "minilm", "--color", "size", "--out", "{out}"], "--color must be model or lang"),
    (["explain", "{small}", "--encoder", "minilm", "--a", "gpt-4-1106-preview", "--b", "nobody"], "unknown class"),
    (["compare", "{single}", "--encoder", "minilm", "--out", "{out}"], "at least 2 classes"),
    (["map", "{small}", "--encoder", "no-such-encoder", "--out", "{out}"], "unknown encoder"),
])
def test_bad_input_is_one_error_line_and_exit_2(tmp_path, qa_files, small_qa, capsys, argv, message):
    small, _ = qa_files
    single = write_qa(small_qa[small_qa["model"] == "llama-7b-chat"], tmp_path / "single.csv")
    rc = main([a.format(small=small, single=single, out=tmp_path / "out") for a in argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert err[-1].startswith("error: ") and message in err[-1]


def test_report_escapes_text_and_inlines_everything(tmp_path):
    import plotly.graph_objects as go

    from univar.viz import heatmap_png

    rep = Report("A <b>title</b>")
    rep.heading("Section & more")
    rep.paragraph("an answer with <script>alert(1)</script>")
    rep.table(pd.DataFrame({"class": ["x<y"], "score": [0.123456]}), caption="c", formats={"score": "{:.2f}"})
    png = heatmap_png(pd.DataFrame([[0, 1], [1, 0]], index=list("ab"), columns=list("ab"), dtype=float),
                      tmp_path / "h.png", "t")
    rep.image(png, "heatmap")
    rep.plotly(go.Figure(go.Scatter(x=[1], y=[2])), "one")
    rep.plotly(go.Figure(go.Scatter(x=[3], y=[4])), "two")
    page = rep.write(tmp_path / "r.html").read_text(encoding="utf-8")
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "x&lt;y" in page and ">0.12<" in page
    assert "data:image/png;base64," in page
    assert page.count("plotly.js v") <= 2 and len(page) > 3_000_000  # plotly.js inlined once (its banner)
    assert 'id="one"' in page and 'id="two"' in page
    # nothing is fetched: no external script, style sheet or image (plotly.js itself holds link strings)
    assert not re.search(r"<(script|img|iframe)[^>]+src=\"?https?:", page)
    assert not re.search(r"<link[^>]+href=\"?https?:", page)


@pytest.mark.slow
def test_demo_writes_a_self_contained_report(demo_dir):
    out, summary, printed = demo_dir
    report = out / "report.html"
    assert str(report.resolve()) in printed.replace("\n", "")
    page = report.read_text(encoding="utf-8")
    for name in ("map.png", "map.html", "heatmap.png", "dendrogram.png", "distances.csv", "value_id.json",
                 "mantel.json", "explain.json", "summary.json"):
        assert (out / name).exists(), name
    # the map, the heatmap and the value-identification table are in the one file
    assert 'id="value-map"' in page and 'id="value-id"' in page and 'id="mantel"' in page
    assert page.count("data:image/png;base64,") >= 3
    assert not re.search(r"<script[^>]+src=", page)
    value_id = json.loads((out / "value_id.json").read_text())
    encoders = {r["encoder"] for r in value_id}
    assert "minilm" in encoders and {r["split"] for r in value_id} == {"question"}
    for r in value_id:
        assert r["n_classes"] == 6 and 0 <= r["linear"]["acc@1"] <= 1
        # every score is explained in a sentence of the report
        assert f"{100 * r['linear']['acc@1']:.1f}%" in page
    mantel = json.loads((out / "mantel.json").read_text())
    assert any(m["encoder"] == summary["primary"] and m["metric"] == "cosine" for m in mantel)
    for m in mantel:
        assert f"r = {m['r']:.3f}" in page
    if summary["fallback_reason"]:
        assert "not available here" in page
    # the encoder comparison names the encoder it judges
    if not summary["fallback_reason"]:
        assert "univar is the better of the two" in page or "univar is not better than minilm" in page
    # the map shows what value identification finds, and says how faithfully
    m = summary["map"]
    assert m["basis"] == "class evidence" and f"{100 * m['map_10nn_held_out']:.1f}%" in page
    if not summary["fallback_reason"]:
        assert m["map_10nn_held_out"] >= 0.5 * m["full_space_knn_held_out"] and m["shows_classes"]
    coords = pd.read_csv(out / "map_coords.csv")
    assert {"class", "x", "y", "question_fold"} <= set(coords.columns) and len(coords) == summary["n_qas"]
    # the explanation table is ranked by the score it shows, as explain.json is
    explain = json.loads((out / "explain.json").read_text())
    table = page.split('id="explain"')[1].split("</table>")[0]
    cells = re.findall(r"<tr><td class=\"text\">([^<]*)</td><td>([-0-9.]+)</td>", table)
    assert [c[0] for c in cells] == [html.escape(v["value"]) for v in explain["values"][: len(cells)]]
    assert [float(c[1]) for c in cells] == sorted((float(c[1]) for c in cells), reverse=True)
    # the model card's headings sit below the report's sections
    assert "<h1>" not in page.split("</h1>", 1)[1]


def test_model_card_is_found_beside_the_weights_and_rendered_safely(tmp_path):
    from types import SimpleNamespace

    from univar.report import find_model_card, markdown_html

    (tmp_path / "MODEL_CARD.md").write_text("# Card\n\n| split | acc |\n|---|---|\n| question | 0.5 |\n\n"
                                            "<script>x</script>\n")
    encoder = SimpleNamespace(name="univar", model=SimpleNamespace(path=tmp_path))  # as a UniVaR model holds it
    card = find_model_card(encoder)
    assert card == tmp_path / "MODEL_CARD.md"
    rendered = markdown_html(card.read_text())
    assert "<h1>Card</h1>" in rendered and "<table>" in rendered and "<script>" not in rendered
    assert find_model_card(SimpleNamespace(name="minilm")) is None


@pytest.mark.slow
def test_demo_report_says_whether_the_space_sees_positions(demo_dir):
    out, summary, _ = demo_dir
    page = (out / "report.html").read_text(encoding="utf-8")
    stance = json.loads((out / "stance.json").read_text())
    assert "Does the space see positions?" in page and 'id="stance"' in page
    assert {r["encoder"] for r in stance} == set(summary["encoders"])
    for r in stance:  # every AUC is in the report, with its interval, on held-out questions only
        assert f"{r['stance_auc']:.3f}" in page and r["stance_auc_ci"][0] <= r["stance_auc"] <= r["stance_auc_ci"][1]
        assert 0 < r["n_questions"] <= summary["n_questions"]
        assert r["questions"] in ("held-out", "all")
    example = page.split('id="stance-example"')[1].split("</table>")[0]
    assert "agree" in example and "disagree" in example and ">1.000<" in example  # the anchor's own row


def test_stance_example_puts_agreeing_answers_first_with_their_similarities():
    from univar.demo import stance_example

    table = pd.DataFrame({"question": ["q"] * 4 + ["r"] * 2, "answer": list("abcdef"), "model": list("wxyzwx"),
                          "stance": ["disagree", "agree", "agree", "disagree", "agree", "disagree"]})
    vectors = np.array([[0, 1], [1, 0], [1, 0.1], [0.1, 1], [1, 1], [1, -1]], dtype=float)
    ex = stance_example(table, {"e": vectors})
    assert ex["question"].unique().tolist() == ["q"]  # the question with the most answers
    assert ex["stance"].tolist() == ["agree", "agree", "disagree", "disagree"]
    assert ex["cos e"].iloc[0] == pytest.approx(1.0) and ex["cos e"].iloc[1] > 0.99 > 0.2 > ex["cos e"].iloc[2]
    assert stance_example(table.assign(stance="agree"), {"e": vectors}) is None


def test_model_card_headings_are_whole_and_its_tables_keep_words_whole():
    """The card in the report: a heading that ran on into the next line showed half a sentence as the heading
    and the rest as a paragraph ("## Scores (question fold 0, ... regression," / "its L2 strength ..."); and
    ``overflow-wrap:anywhere`` let the browser narrow a table column below its longest word, so the transfer
    table's header wrapped "minilm" as "minil m". Checked on the shipped card and on the template that writes it."""
    from pathlib import Path

    from univar.report import STYLE, markdown_html

    root = Path(__file__).resolve().parents[1]
    card = (root / "src" / "univar" / "model" / "shipped" / "MODEL_CARD.md").read_text(encoding="utf-8")
    template = (root / "scripts" / "train_default.py").read_text(encoding="utf-8").split('CARD = """', 1)[1]
    for text in (card, template.split('"""', 1)[0]):
        headings = re.findall(r"^#+ (.*)$", text, flags=re.MULTILINE)
        assert "Scores" in headings
        for heading in headings:  # a whole phrase: brackets closed, not ending mid-list
            assert heading.count("(") == heading.count(")") and not heading.endswith((",", ";")), heading
    rendered = markdown_html(card, shift=2)
    assert "<h4>Scores</h4>" in rendered and "<th>minilm</th>" in rendered
    # no rule lets a word break anywhere; a card table wider than the page scrolls instead of squeezing its words
    assert "anywhere" not in STYLE and "break-all" not in STYLE
    assert re.search(r"\.card table\{[^}]*overflow-x:auto", STYLE)
