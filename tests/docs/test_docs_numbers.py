"""Numbers from one source: every figure README.md and docs/ quote from a command or a benchmark is
rendered from bench/results/*.json (scripts/sync_docs.py) or checked against it here, and every count the
docs give of a bundled dataset is the count of its parquet file.

- The markers hold what the results hold (``python scripts/sync_docs.py --check`` passes).
- No percentage or decimal stands in README.md or docs/*.md outside a marker, the generated transfer table,
  the figures tests/docs/test_scale_docs.py checks in docs/scale.md, a ``<!-- record -->`` region (a dated, one-off
  measurement that no benchmark repeats, said so in its text), or the short ALLOWED list below.
- The shipped model card (written by ``make model``) scores the model as bench/value_id.py did.
"""

from __future__ import annotations

import functools
import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "bench"))

import sync_docs  # noqa: E402
from transfer import readme_table  # noqa: E402
from validity import readme_table as validity_table  # noqa: E402

RESULTS = ROOT / "bench" / "results"
DOCS = sync_docs.DOCS

# A decimal (0.146, 79.3%, -0.0033) or a whole percentage (17%); not a part of a name or a licence (gpt-3.5,
# Apache-2.0), and never a version or an address (2.13.0, 127.0.0.1), which are taken out first.
NUMBER = re.compile(r"(?<![\w.])(?<![A-Za-z]-)[-+]?\d[\d,]*(?:\.\d+%?|%)")
VERSION = re.compile(r"\d+(?:\.\d+){2,}")
CODE_SPAN = re.compile(r"`[^`\n]*`")
RECORD = re.compile(r"<!-- record [^\n]*?-->.*?<!-- /record -->", re.S)

# Figures that are facts, not measurements, so no benchmark holds them. Each entry: (file, text around the
# figure, why). Keep this short: a measured figure goes under a marker instead.
ALLOWED = [
    # citations and requirements
    ("*", "arXiv 2404.07900", "the paper's arXiv id"),
    ("README.md", "Python >= 3.11", "a requirement"),
    ("docs/elicitation.md", "(the paper: about 8% vs 12-18%", "the UniVaR paper's translationese figures"),
    # protocol constants: the confidence level of univar's intervals; an exact test's smallest p
    ("*", "95% bootstrap", "the confidence level"),
    ("*", "95% intervals", "the confidence level"),
    ("*", "95% percentile", "the confidence level"),
    ("README.md", "Each has a 95% interval", "the confidence level"),
    ("README.md", "(0.5: the position is invisible", "the AUC of a space blind to the position: a definition"),
    ("*", "0.5 = the position", "the AUC of a space blind to the position: a definition"),
    ("docs/model.md", "margin over 0.5 against", "the AUC of a space blind to the position: a definition"),
    ("docs/model.md", "W = 0 / 1 / 1.5 / 3", "the stance-part weights the sweep re-scores (bench/validity.py SWEEP)"),
    ("docs/model.md", "at W = 0 / 1 / 3", "the stance-part weights the sweep re-scores (bench/validity.py SWEEP)"),
    ("docs/report.md", "1/720 = 0.0014", "arithmetic: the smallest p of an exact test over 720 orders"),
    # settings and defaults, as the code sets them
    ("*", "C = 0.003 ... 1", "the probe's grid, univar.evaluate.PROBE_CS (checked below)"),
    ("docs/model.md", "the shipped model uses 1.5", "the recipe's keep_base (checked below)"),
    ("docs/model.md", "`keep_base` 1.5", "the recipe's keep_base (checked below)"),
    ("docs/model.md", "about 0.8 M parameters", "the size of a default set-mode head over minilm"),
    ("docs/elicitation.md", "(0.5 s, 1 s, 2 s", "the retry backoff schedule"),
    ("docs/elicitation.md", "`--temperature` (1.0), `--top-p` (0.95)", "CLI defaults"),
    ("docs/elicitation.md", "Jaccard >= 0.8", "the deduplication threshold"),
    ("docs/reliability.md", "cosine > 0.999", "a test's threshold"),
    # arithmetic on figures tests/docs/test_scale_docs.py checks (recomputed below)
    ("docs/scale.md", "about 0.4 s of one core per step", "2 x 16 views at the tokeniser rate quoted before it"),
]


def allowed(doc: str, line: str, number: str) -> bool:
    return any((f == "*" or f == doc) and text in line and number in text for f, text, _ in ALLOWED)


def strip_spans(text: str, spans: list[tuple[int, int]]) -> str:
    """``text`` with each span blanked (newlines kept, so line numbers stay)."""
    chars = list(text)
    for start, end in spans:
        for i in range(start, end):
            if chars[i] != "\n":
                chars[i] = " "
    return "".join(chars)


def scale_doc_spans(text: str) -> list[tuple[int, int]]:
    """docs/scale.md: the figures tests/docs/test_scale_docs.py checks against bench/results."""
    sys.path.insert(0, str(ROOT / "tests"))
    from test_scale_docs import quoted

    spans = []
    for q in quoted():
        spans += [(m.start(), m.end()) for m in re.finditer(re.escape(q), text)]
    return spans


def unmarked_figures(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    doc = str(path.relative_to(ROOT))
    spans = sync_docs.marked_spans(text) + [m.span() for m in RECORD.finditer(text)]
    transfer = readme_table(json.loads((RESULTS / "transfer.json").read_text())["rows"])
    validity = validity_table(json.loads((RESULTS / "validity.json").read_text())["rows"])
    for table in (transfer, validity):  # generated tables, kept equal to their JSON by their own tests
        spans += [(m.start(), m.end()) for m in re.finditer(re.escape(table), text)]
    if doc == "docs/scale.md":
        spans += scale_doc_spans(text)
    originals = text.splitlines()
    found, fence = [], None
    for number, line in enumerate(strip_spans(text, spans).splitlines(), start=1):
        if line.lstrip().startswith("```"):
            fence = None if fence is not None else line.strip()[3:]
            continue
        if fence in ("bash", "python"):  # commands and code: flags and literals, not results
            continue
        original = originals[number - 1]
        bare = VERSION.sub(" ", CODE_SPAN.sub(" ", line))  # code spans are flags and literals
        for figure in NUMBER.findall(bare):
            if not allowed(doc, original, figure):
                found.append(f"{doc}:{number}: {figure}  ({original.strip()[:100]})")
    return found


def test_every_marked_figure_is_what_the_results_hold():
    stale = []
    for path in DOCS:
        _, notes, errors = sync_docs.sync_text(path.read_text(encoding="utf-8"))
        stale += [f"{path.relative_to(ROOT)}:{n}" for n in notes + errors]
    assert not stale, "run `python scripts/sync_docs.py`:\n" + "\n".join(stale)


@pytest.mark.parametrize("path", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_measured_figure_outside_a_marker(path):
    found = unmarked_figures(path)
    assert not found, ("figures outside a marker: put each under <!-- fig ... --> (scripts/sync_docs.py), or, "
                       "if it is a fact and not a measurement, on ALLOWED here:\n" + "\n".join(found))


def test_every_record_region_says_why():
    for path in DOCS:
        for m in re.finditer(r"<!-- record ([^\n]*?)-->", path.read_text(encoding="utf-8")):
            assert len(m.group(1).split()) >= 3, f"{path.name}: a record region needs a reason: {m.group(0)}"


def test_every_allowed_entry_is_used():
    texts = {str(p.relative_to(ROOT)): " ".join(p.read_text(encoding="utf-8").split()) for p in DOCS}
    for doc, text, _ in ALLOWED:
        assert any(text in t for d, t in texts.items() if doc in ("*", d)), f"unused ALLOWED entry {text!r}"


def test_allowed_settings_are_the_codes():
    from univar.evaluate.probe import PROBE_CS
    from univar.model.recipe import DEFAULT_CONFIG

    assert (min(PROBE_CS), max(PROBE_CS)) == (0.003, 1.0)
    assert DEFAULT_CONFIG["keep_base"] == 1.5


def test_arithmetic_in_the_scale_page():
    sys.path.insert(0, str(ROOT / "tests"))
    from test_scale_docs import row

    per_view_tokens = 20 * row("scale_inputs", "word pieces per QA (valuebench")["value"] * \
        row("scale_inputs", "lambda-20 views")["value"]
    text = " ".join((ROOT / "docs" / "scale.md").read_text(encoding="utf-8").split())
    assert f"At B = 16 that is about {2 * 16 / (per_view_tokens / 8192):.1f} s of one core per step" in text


def test_the_scan_finds_an_unmarked_figure(tmp_path, monkeypatch):
    doc = tmp_path / "docs" / "x.md"
    doc.parent.mkdir()
    doc.write_text("k-NN 79.3% and p = 0.29 and gpt-3.5 under Apache-2.0, torch 2.13.0, `--lr 0.001`\n"
                   "<!-- fig demo.json \"chance (question split)\" pct1 -->16.7%<!-- /fig -->\n"
                   "<!-- record an earlier run -->83%<!-- /record -->\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert [f.split(": ")[1].split()[0] for f in unmarked_figures(doc)] == ["79.3%", "0.29"]


def test_sync_rewrites_a_stale_figure_and_check_fails_on_it():
    chance = sync_docs.lookup("demo.json", "chance (question split)")
    text = 'a <!-- fig demo.json "chance (question split)" pct1 -->83%<!-- /fig --> b'
    new, notes, errors = sync_docs.sync_text(text)
    assert new == f'a <!-- fig demo.json "chance (question split)" pct1 -->{100 * chance:.1f}%<!-- /fig --> b'
    assert len(notes) == 1 and not errors
    assert sync_docs.sync_text(new)[1:] == ([], [])
    _, _, errors = sync_docs.sync_text('<!-- fig demo.json "no such figure" pct1 -->1%<!-- /fig -->')
    assert errors


def test_model_card_scores_are_the_benchmarks():
    """The card (``make model``) and bench/value_id.py score the same model on the same fold."""
    card = (ROOT / "src" / "univar" / "model" / "shipped" / "MODEL_CARD.md").read_text(encoding="utf-8")
    details = json.loads((RESULTS / "value_id_details.json").read_text())["encoders"]
    for data in ("valuebench", "fulcra"):
        for enc in ("minilm", "univar"):
            s = details[data][enc]
            acc10 = "-" if s["lin_acc10"] is None else f"{100 * s['lin_acc10']:.2f}"  # None: 10 or fewer classes
            line = (f"| {data} | {s['n_classes']} | {enc} | {100 * s['knn_acc']:.2f} | {100 * s['knn_f1']:.2f} | "
                    f"{100 * s['lin_acc1']:.2f} | {acc10} |")
            assert line in card, line


# --- bundled datasets: the counts the docs give are the data's --------------------------------------------

@functools.cache
def facts(name: str) -> dict:
    import pandas as pd

    from univar.data import bundled_file

    t = pd.read_parquet(bundled_file(name))
    f = {"rows": len(t), "questions": t["question"].nunique(), "langs": t["lang"].nunique()}
    if "model" in t:
        f |= {"models": t["model"].nunique(), "classes": t.groupby(["model", "lang"]).ngroups,
              "base_models": t["model"].str.split("+").str[0].nunique()}
        f["per_class"] = int(t.groupby(["model", "lang"]).size().max())
    if name == "valuebench":
        f |= {"items": len(t) // f["models"], "inventories": t["questionnaire"].nunique(),
              "relabelled": int(t.duplicated(["question", "answer", "model", "lang"]).sum())}
        assert (t.groupby("model").size() == f["items"]).all()
    if name == "mtbench":
        per = t[t["turn"] == 1].groupby("lang")["question"].nunique()
        f |= {"turn_questions": per.max(), "ru_questions": per["ru"]}
        assert (t.groupby(["lang", "turn"])["question"].nunique().loc[:, 2] == per).all()
    if name == "local-llms":
        f["per_lang"] = t.groupby("lang")["question"].nunique().max()
    return f


# name -> phrases that each place describing the dataset states: its `univar datasets` line, its README.md
# bullet and its row in src/univar/data/README.md (where it has one)
CLAIMS = {
    "valuebench": ["{items:,} items ({questions:,} distinct questions) from {inventories} psychometric inventories",
                   "answered by {models} LLMs"],
    "fulcra": ["{questions:,} safety-relevant prompts answered by {models} LLMs"],
    "donotanswer": ["{questions:,} risky prompts"],
    "xstest": ["{questions:,} safe and unsafe prompts answered by {classes} configurations of {base_models} LLMs"],
    "moralmachine": ["{questions:,} trolley-style dilemmas", "{models} OpenAI LLMs"],
    "mtbench": ["{classes} (LLM, language) classes in {langs} languages"],
    "local-llms": ["{rows:,} QAs"],
    "valuebench-questions": ["{rows:,} ValueBench value questions"],
}
# phrases stated in one place only: (file, dataset, phrase)
MORE_CLAIMS = [
    ("src/univar/data/README.md", "mtbench", "{turn_questions} general questions x 2 turns in each language "
                                             "({ru_questions} in ru)"),
    ("src/univar/data/README.md", "local-llms", "{per_lang} original ValueConsistency questions"),
    ("docs/elicitation.md", "local-llms", "so {questions} questions and {questions} QAs per"),
    ("docs/elicitation.md", "local-llms", "{rows:,} rows, {classes} (configuration, language) classes of {per_class}"),
    ("docs/reliability.md", "valuebench", "under several questionnaires: {relabelled:,} rows"),
    ("docs/report.md", "valuebench", "of its {questions:,} questions"),
]


def places(name: str) -> dict[str, str]:
    from univar.data import BUNDLED

    found = {"univar datasets": BUNDLED[name][1]}
    bullet = [line for line in (ROOT / "README.md").read_text(encoding="utf-8").split("\n  - ")
              if line.startswith(f"`bundled:{name}`")]
    row = [line for line in (ROOT / "src/univar/data/README.md").read_text(encoding="utf-8").splitlines()
           if line.startswith(f"| `bundled:{name}` |")]
    found |= {"README.md": " ".join(bullet[0].split())} if bullet else {}
    found |= {"src/univar/data/README.md": row[0]} if row else {}
    return found


@pytest.mark.parametrize("name", sorted(CLAIMS))
def test_dataset_counts_in_the_docs_are_the_datas(name):
    f = facts(name)
    for place, text in places(name).items():
        for phrase in CLAIMS[name]:
            assert phrase.format(**f) in text, f"{place} should say {phrase.format(**f)!r} of bundled:{name}"


def test_every_bundled_dataset_is_described_with_its_counts():
    from univar.data import BUNDLED

    assert set(BUNDLED) - set(CLAIMS) == {"valueconsistency"}  # a question bank described without counts
    assert not re.search(r"\d", BUNDLED["valueconsistency"][1].replace("en, zh, de, ja", ""))


def test_the_data_readme_table_gives_each_datasets_rows_and_classes():
    rows = [line for line in (ROOT / "src/univar/data/README.md").read_text(encoding="utf-8").splitlines()
            if line.startswith("| `bundled:")]
    assert len(rows) == 7
    for line in rows:
        cells = [c.strip() for c in line.strip("|").split("|")]
        f = facts(cells[0].strip("`").removeprefix("bundled:"))
        assert cells[-2] == f"{f['rows']:,}", line[:60]
        assert cells[-1].split()[0] == str(f["classes"]), line[:60]


@pytest.mark.parametrize("doc,name,phrase", MORE_CLAIMS)
def test_more_dataset_counts(doc, name, phrase):
    text = " ".join((ROOT / doc).read_text(encoding="utf-8").split())
    assert phrase.format(**facts(name)) in text
