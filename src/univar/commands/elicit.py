"""Elicitation commands: elicit, translate, values list, questions list / generate / paraphrase."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape

from univar import elicit as E
from univar.commands import LogOpt, app, err, flag, out
from univar.elicit import load_questions
from univar.errors import UnivarError
from univar.llm import SamplingParams, get_backend
from univar.progress import event, log_to
from univar.qa import SUFFIXES, read_qa, write_qa
from univar.tables import NAME, TEXT, Col, FitTable
from univar.taxonomy import load_values, sources
from univar.taxonomy.bank import bank_summary, load_bank
from univar.taxonomy.generate import generate_for_situations, generate_for_values
from univar.taxonomy.paraphrase import back_translate as bt
from univar.taxonomy.paraphrase import paraphrase
from univar.translate import get_translator, norm_lang, translate_table

values_app = typer.Typer(no_args_is_help=True, help="Browse the value taxonomy (ValueBench + classic frameworks).")
questions_app = typer.Typer(no_args_is_help=True,
        help="Question banks; generate and paraphrase value-eliciting questions.")
app.add_typer(values_app, name="values")
app.add_typer(questions_app, name="questions")

ModelOpt = Annotated[list[str], typer.Option("--model", "-m",
        help="provider/model (openai/<m>, llamacpp/<file.gguf>, hf/<folder-or-gguf>, smollm2); LABEL=provider/model "
             "sets the rows' model name. Repeat for several.", show_default=False)]
BaseUrlOpt = Annotated[Optional[str], typer.Option("--base-url",
        help="OpenAI-compatible endpoint (default $OPENAI_BASE_URL, else api.openai.com).")]
ApiKeyOpt = Annotated[Optional[str], typer.Option("--api-key",
        help="API key (prefer $OPENAI_API_KEY: a flag is visible in the process list). Never written anywhere.")]
TimeoutOpt = Annotated[float, typer.Option("--timeout", help="Seconds allowed per request (each try).")]
RetriesOpt = Annotated[int, typer.Option("--retries",
        help="Retries per request on 429, 5xx, timeouts and broken replies (exponential backoff).")]


def _langs(values: list[str]) -> list[str]:
    langs = [norm_lang(v) for item in values for v in item.split(",") if v.strip()]
    if not langs:
        raise UnivarError("--lang needs at least one language code")
    return list(dict.fromkeys(langs))


def _backends(models: list[str], **opts):
    backends = [get_backend(m, **opts) for m in models]
    names = [b.name for b in backends]
    if len(set(names)) != len(names):
        raise UnivarError(f"two --model values have the same label ({', '.join(names)}): "
                          "name them LABEL=provider/model")
    return backends


@app.command()
def elicit(
    questions: Annotated[str, typer.Option("--questions", "-q",
            help="bundled:<name>, or a .txt / CSV / JSONL / Parquet file with a 'question' column.",
            show_default=False)],
    model: ModelOpt,
    lang: Annotated[list[str], typer.Option("--lang", "-l",
            help="Language codes (repeat or comma-separate): en, zh, de, ja, pt, ...", show_default=False)],
    out_dir: Annotated[Path, typer.Option("--out", "-o",
            help="Output directory: qa.jsonl (append-only), failures.jsonl, qa.parquet when complete.",
            show_default=False)],
    limit: Annotated[Optional[int], typer.Option("--limit",
            help="Ask only the first N questions per language.")] = None,
    translator: Annotated[str, typer.Option("--translator", "-t",
            help="Translate questions in and answers back to English: none, bergamot, llm/<provider/model>, "
                 "seq2seq/<folder>.")] = "none",
    system: Annotated[Optional[str], typer.Option("--system",
            help="System prompt (e.g. a stated value orientation).")] = None,
    temperature: Annotated[float, typer.Option(help="Sampling temperature.")] = 1.0,
    top_p: Annotated[float, typer.Option("--top-p", help="Nucleus sampling (paper: 0.95).")] = 0.95,
    top_k: Annotated[int, typer.Option("--top-k", help="Top-k sampling (paper: 50; 0 = off).")] = 50,
    max_tokens: Annotated[int, typer.Option("--max-tokens", help="New tokens per answer (paper: 128).")] = 128,
    seed: Annotated[int, typer.Option(help="Run seed; each row gets a seed derived from it (recorded).")] = 0,
    concurrency: Annotated[int, typer.Option("--concurrency", "-c", help="Requests in flight at once.")] = 4,
    retries: RetriesOpt = 5,
    timeout: TimeoutOpt = 120.0,
    base_url: BaseUrlOpt = None,
    api_key: ApiKeyOpt = None,
    log: LogOpt = None,
) -> None:
    """Ask questions x languages x models; resumable (re-run the same command after any interruption)."""
    if limit is not None and limit < 1:
        raise UnivarError("--limit must be at least 1")
    if concurrency < 1:
        raise UnivarError("--concurrency must be at least 1")
    langs = _langs(lang)
    table = E.load_questions(questions)
    opts = dict(base_url=base_url, api_key=api_key, timeout=timeout, retries=retries, concurrency=concurrency)
    tr = get_translator(translator, **opts)
    _check_translator(tr, langs, table)
    backends = _backends(model, **opts)
    tasks = E.plan(table, langs, backends, limit, can_translate=tr.name != "none")
    params = SamplingParams(temperature=temperature, top_p=top_p, top_k=top_k or None, max_tokens=max_tokens,
                            seed=seed)
    try:
        with log_to(log):
            summary = E.run(tasks, out_dir, params, system=system, translator=tr, concurrency=concurrency)
            event("elicit_end", total=summary.total, done_before=summary.done_before, collected=summary.collected,
                  failed=summary.failed, retries=summary.retries, seconds=round(summary.seconds, 3),
                  complete=summary.complete)
    finally:
        for b in backends:
            b.close()
    _report(summary, out_dir)


def _check_translator(tr, langs: list[str], table) -> None:
    """Fail now if questions must be translated into a language ``tr`` lacks; note answers it cannot bring back."""
    for code in langs:
        if code != "en" and tr.name != "none":
            if not (table["lang"] == code).any():
                tr.check("en", code)  # the questions must be translated: a hard requirement
            if not tr.supports(code, "en"):
                err.print(f"note: {tr.name} cannot translate {code} -> en; answers in {code} keep answer_en empty")


def _report(summary, out_dir: Path) -> None:
    """The run's summary on stderr; exit status 1 while QAs are still missing."""
    err.print(f"{summary.total} QAs: {summary.done_before} already done, {summary.collected} collected now, "
              f"{summary.failed} failed; {summary.retries} retries; "
              f"{summary.collected / summary.seconds if summary.seconds else 0:.2f} QA/s -> {out_dir / E.QA_FILE}")
    if summary.failed:
        err.print("[bold red]failures[/]: " + ", ".join(f"{n} x {r}" for r, n in summary.failures.most_common()))
        for line in summary.failure_examples:
            err.print(f"  {line}", markup=False, highlight=False)
    if summary.complete:
        err.print(f"complete -> {summary.parquet}")
    else:
        missing = summary.total - summary.done_before - summary.collected
        err.print(f"{missing} QAs still missing (recorded in {out_dir / E.FAILURES_FILE}); "
                  "re-run the same command to retry them")
        raise SystemExit(1)  # click swallows typer.Exit codes in non-standalone mode


@app.command()
def translate(
    data: Annotated[str, typer.Argument(help="QA file (CSV, JSONL, Parquet) or bundled:<name>.", show_default=False)],
    backend: Annotated[str, typer.Option("--backend", "-b",
            help="none, bergamot, llm/<provider/model>, seq2seq/<folder> (may hold {src} and {tgt}).",
            show_default=False)],
    out_file: Annotated[Path, typer.Option("--out", "-o",
            help="Output .csv / .jsonl / .parquet with question_en and answer_en filled.", show_default=False)],
    base_url: BaseUrlOpt = None,
    api_key: ApiKeyOpt = None,
    timeout: TimeoutOpt = 120.0,
    retries: RetriesOpt = 5,
) -> None:
    """Translate the questions and answers of non-English rows into English (question_en, answer_en)."""
    if SUFFIXES.get(out_file.suffix.lower()) is None:
        raise UnivarError(f"--out must end in .csv, .jsonl or .parquet, got {out_file.name}")
    table = read_qa(data)
    tr = get_translator(backend, base_url=base_url, api_key=api_key, timeout=timeout, retries=retries)
    result = translate_table(table, tr)
    write_qa(result, out_file)  # atomic: a failed run leaves the earlier file
    err.print(f"{len(result)} rows, {int((result['lang'] != 'en').sum())} translated with {tr.name} -> {out_file}")


@values_app.command("list")
def values_list(
    source: Annotated[Optional[str], typer.Option("--source", "-s",
            help="An inventory (e.g. PVQ40, SVS, VSM13) or framework (schwartz, wvs, hofstede, globe, rokeach); "
                 "case-insensitive.")] = None,
    as_json: Annotated[bool, flag("--json", help="Print JSON lines instead of a table.")] = False,
) -> None:
    """List values with their definitions and sources."""
    table = load_values(source)
    if table.empty:
        raise UnivarError(f"no values from source {source!r} (known: {', '.join(sources())})")
    if as_json:
        for rec in table.to_dict(orient="records"):
            out.print(json.dumps(rec, ensure_ascii=False), markup=False, highlight=False, soft_wrap=True)
        return
    # the names --source and --value take stay whole; at 80 columns the framework (implied by the source) goes
    view = FitTable(Col("source", NAME), Col("framework", NAME, drop=2), Col("value", NAME),
                    Col("definition", TEXT, drop=1))
    for rec in table.itertuples(index=False):
        view.add_row(*(escape(str(v)) for v in (rec.source, rec.framework, rec.value, rec.definition)))
    out.print(view)
    err.print(f"{len(table)} values")


@questions_app.command("list")
def questions_list(
    bank: Annotated[Optional[str], typer.Argument(
            help="A bank (valuebench-questions, valueconsistency) to print its questions; "
                 "none: list the banks.")] = None,
    lang: Annotated[Optional[str], typer.Option("--lang", "-l", help="Only questions in this language.")] = None,
    limit: Annotated[int, typer.Option("--limit", help="Print at most N questions.")] = 20,
) -> None:
    """List the bundled question banks, or the questions of one."""
    if bank is None:
        # the bank's full name is what `univar questions list` and `--questions` take: never cut
        view = FitTable(Col("name", NAME), Col("questions"), Col("languages", justify="left", drop=2),
                        Col("description", TEXT, drop=1))
        for name, n, langs, desc in bank_summary():
            view.add_row(escape(f"bundled:{name}"), str(n), langs.replace(", ", "\n"), escape(desc))
        out.print(view)
        return
    table = load_bank(bank)
    if lang:
        table = table[table["lang"] == lang]
    for rec in table.head(limit).itertuples(index=False):
        out.print(f"{rec.qid}\t{rec.lang}\t{rec.question}", markup=False, highlight=False, soft_wrap=True)
    err.print(f"{len(table)} questions in {bank}" + (f" ({lang})" if lang else ""))


@questions_app.command("generate")
def questions_generate(
    model: Annotated[str, typer.Option("--model", "-m",
            help="Chat backend that writes the questions (provider/model).", show_default=False)],
    out_file: Annotated[Path, typer.Option("--out", "-o",
            help="Output questions file (.csv / .jsonl / .parquet).", show_default=False)],
    value: Annotated[Optional[list[str]], typer.Option("--value",
            help="A value name from `univar values list` (repeat); its definition goes into the prompt.")] = None,
    source: Annotated[Optional[str], typer.Option("--source", "-s",
            help="Generate for every value of this source / framework.")] = None,
    situation: Annotated[Optional[list[str]], typer.Option("--situation",
            help="A situation (premise); the paper's situation prompt asks whether to do it.")] = None,
    n: Annotated[int, typer.Option("--n", help="Questions to ask for per value.")] = 10,
    template: Annotated[Optional[Path], typer.Option("--template",
            help="A text file replacing the default prompt ({value}, {definition}, {n} / {situation}).")] = None,
    temperature: Annotated[float, typer.Option(help="Sampling temperature.")] = 0.7,
    max_tokens: Annotated[int, typer.Option("--max-tokens", help="New tokens per request.")] = 512,
    seed: Annotated[int, typer.Option(help="Seed.")] = 0,
    base_url: BaseUrlOpt = None,
    api_key: ApiKeyOpt = None,
    timeout: TimeoutOpt = 120.0,
    retries: RetriesOpt = 5,
) -> None:
    """Generate value-eliciting questions from values or situations, deduplicated and filtered."""
    if not (value or source or situation):
        raise UnivarError("give --value, --source or --situation")
    text = template.read_text(encoding="utf-8") if template else None
    backend = get_backend(model, base_url=base_url, api_key=api_key, timeout=timeout, retries=retries)
    params = SamplingParams(temperature=temperature, top_p=0.95, top_k=50, max_tokens=max_tokens, seed=seed)
    frames = []
    if value or source:
        table = load_values(source)
        if value:
            wanted = {v.lower() for v in value}
            table = table[table["value"].str.lower().isin(wanted)]
            missing = wanted - set(table["value"].str.lower())
            if missing:
                raise UnivarError(f"unknown value(s): {', '.join(sorted(missing))} (see `univar values list`)")
        frames.append(generate_for_values(table, backend, n=n, params=params, template=text))
    if situation:
        frames.append(generate_for_situations(situation, backend, params=params, template=text))
    import pandas as pd

    result = pd.concat(frames, ignore_index=True)
    write_qa(result, out_file)
    err.print(f"{len(result)} questions -> {out_file}")


@questions_app.command("paraphrase")
def questions_paraphrase(
    questions: Annotated[str, typer.Argument(help="Questions file or bundled bank.", show_default=False)],
    out_file: Annotated[Path, typer.Option("--out", "-o",
            help="Output questions file with the paraphrases added.", show_default=False)],
    n: Annotated[int, typer.Option("--n", help="Paraphrases per question (paper: 4).")] = 4,
    model: Annotated[Optional[str], typer.Option("--model", "-m", help="Chat backend that paraphrases.")] = None,
    back_translate: Annotated[Optional[str], typer.Option("--back-translate",
            help="Paraphrase by round trip through these languages with --translator (e.g. pt).")] = None,
    translator: Annotated[str, typer.Option("--translator", "-t",
            help="Translator for --back-translate.")] = "bergamot",
    limit: Annotated[Optional[int], typer.Option("--limit", help="Only the first N questions.")] = None,
    seed: Annotated[int, typer.Option(help="Seed.")] = 0,
    base_url: BaseUrlOpt = None,
    api_key: ApiKeyOpt = None,
    timeout: TimeoutOpt = 120.0,
    retries: RetriesOpt = 5,
) -> None:
    """Add n paraphrases per question (chat backend) or back-translations (round trip through a language)."""
    table = load_questions(questions)
    table = table[table["lang"] == "en"]
    if limit:
        table = table.head(limit)
    if bool(model) == bool(back_translate):
        raise UnivarError("give either --model (LLM paraphrase) or --back-translate LANGS")
    if model:
        backend = get_backend(model, base_url=base_url, api_key=api_key, timeout=timeout, retries=retries)
        result = paraphrase(table, backend, n=n, seed=seed)
    else:
        tr = get_translator(translator, base_url=base_url, api_key=api_key, timeout=timeout, retries=retries)
        result = bt(table, tr, [x.strip() for x in back_translate.split(",") if x.strip()])
    write_qa(result, out_file)
    err.print(f"{len(table)} questions -> {len(result)} with paraphrases -> {out_file}")
