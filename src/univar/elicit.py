"""Questions x languages x models -> answers, collected so that no work is ever lost or done twice.

Why this shape:
- ``DIR/qa.jsonl`` is the source of truth: one JSON object per finished QA, appended with a single
  ``os.write`` and fsync'd as it arrives, so a ``kill -9`` at any moment leaves at most one torn last line,
  which the next run cuts off. A task's key is ``(qid, model, lang)``; keys already in ``qa.jsonl`` are
  never asked again, so re-running the same command resumes exactly where it stopped.
- A request that still fails after its retries is appended to ``DIR/failures.jsonl`` (with the reason) and
  is simply *not* in ``qa.jsonl``: the next run tries it again, with a fresh seed.
- ``DIR/qa.parquet`` is written (atomically) only when every task is done: its presence means complete.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from univar.data import bundled_file
from univar.errors import UnivarError
from univar.llm import BackendError, ChatBackend, SamplingParams
from univar.progress import bar
from univar.qa import write_qa
from univar.translate import LANGUAGES, NoTranslator

log = logging.getLogger("univar")

QA_FILE, FAILURES_FILE, PARQUET_FILE = "qa.jsonl", "failures.jsonl", "qa.parquet"
QUESTION_SUFFIXES = (".csv", ".tsv", ".jsonl", ".ndjson", ".parquet", ".pq", ".txt")


# ---------------------------------------------------------------- questions

def _qid(text: str) -> str:
    return "q-" + hashlib.sha1(text.strip().encode("utf-8")).hexdigest()[:12]


def load_questions(source: str | Path) -> pd.DataFrame:
    """A question table: ``qid``, ``question``, ``lang`` (default en) and, where known, ``question_en``.

    ``source`` is ``bundled:<name>`` (e.g. ``bundled:valueconsistency``), a ``.txt`` file with one English
    question per line, or a CSV / JSONL / Parquet file with at least a ``question`` column.
    """
    label = str(source)
    if label.startswith("bundled:"):
        path = bundled_file(label[len("bundled:"):])
    else:
        path = Path(source)
    if not path.is_file():
        raise UnivarError(f"questions file not found: {label}")
    suffix = path.suffix.lower()
    if suffix not in QUESTION_SUFFIXES:
        raise UnivarError(f"unsupported questions file {label} (expected .txt, .csv, .jsonl or .parquet)")
    try:
        if suffix == ".txt":
            lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
            table = pd.DataFrame({"question": [line for line in lines if line]})
        elif suffix in (".parquet", ".pq"):
            table = pd.read_parquet(path)
        elif suffix in (".jsonl", ".ndjson"):
            table = pd.read_json(path, lines=True, dtype=False)
        else:
            table = pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",", dtype=str, keep_default_na=False)
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        raise UnivarError(f"cannot read questions from {label}: {str(exc).splitlines()[0]}") from None
    if "question" not in table.columns:
        raise UnivarError(f"no 'question' column in {label} (columns: {', '.join(map(str, table.columns))})")
    table = table[table["question"].fillna("").astype(str).str.strip() != ""].reset_index(drop=True)
    if table.empty:
        raise UnivarError(f"no questions in {label}")
    table["question"] = table["question"].astype(str)
    if "lang" not in table.columns:
        table["lang"] = "en"
    table["lang"] = table["lang"].fillna("en").astype(str)
    if "qid" not in table.columns:
        table["qid"] = [_qid(q) if lang == "en" else _qid(f"{lang}:{q}")
                        for q, lang in zip(table["question"], table["lang"])]
    table["qid"] = table["qid"].astype(str)
    table = _melt_translations(table)
    dup = table.duplicated(subset=["qid", "lang"], keep="first")
    if dup.any():
        log.warning("%d duplicate question id(s) in %s: kept the first of each", int(dup.sum()), label)
        table = table.loc[~dup].reset_index(drop=True)
    if "question_en" not in table.columns:
        table["question_en"] = [q if lang == "en" else None for q, lang in zip(table["question"], table["lang"])]
    table.attrs["source"] = label
    return table


def _melt_translations(table: pd.DataFrame) -> pd.DataFrame:
    """Given translations as columns ``question_<lang>`` (e.g. ``question_de``) become rows in that language.

    Each keeps the English row's ``qid`` (the key also has ``lang``, so nothing collides) and gets the English
    question as ``question_en``: a study can bring its own professional translations instead of MT.
    """
    columns = [c for c in table.columns if c.startswith("question_") and c[9:] in LANGUAGES and c != "question_en"]
    if not columns:
        return table
    base = table.drop(columns=columns)
    parts = [base]
    english = base["question"].where(base["lang"] == "en", base.get("question_en"))
    for column in columns:
        given = table[column].fillna("").astype(str).str.strip() != ""
        rows = base.loc[given].copy()
        rows["question"] = table.loc[given, column].astype(str)
        rows["lang"] = column[9:]
        rows["question_en"] = english.loc[given]
        parts.append(rows)
    return pd.concat(parts, ignore_index=True)


# ---------------------------------------------------------------- tasks

@dataclass(frozen=True)
class Task:
    """One question to ask one model in one language."""

    qid: str
    lang: str
    question: str | None  # in ``lang``; None: translate ``question_en`` first
    question_en: str | None
    backend: ChatBackend
    meta: tuple = ()  # extra question columns copied to the row, as (name, value) pairs

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.qid, self.backend.name, self.lang)


META_COLUMNS = ("value", "source", "topic", "topic_en", "group", "questionnaire")


def plan(questions: pd.DataFrame, langs: Sequence[str], backends: Sequence[ChatBackend], limit: int | None,
         can_translate: bool) -> list[Task]:
    """Every (question, language, model) to ask, in a stable order.

    For each language, questions already written in it are asked as they are; where the table has none,
    the English questions are machine-translated (which needs a translator).
    """
    tasks: list[Task] = []
    for lang in langs:
        native = questions[questions["lang"] == lang]
        if native.empty:
            native = questions[questions["lang"] == "en"]
            if native.empty:
                raise UnivarError(f"no questions in {lang!r} or in English in {questions.attrs.get('source')}")
            if lang != "en" and not can_translate:
                raise UnivarError(f"no questions in {lang!r} in {questions.attrs.get('source')}: "
                                  f"give --translator to translate the English ones")
            translate = lang != "en"
        else:
            translate = False
        if limit is not None:
            native = native.head(limit)
        meta_cols = [c for c in META_COLUMNS if c in native.columns]
        for row in native.itertuples(index=False):
            rec = row._asdict()
            q_en = (rec.get("question_en") if isinstance(rec.get("question_en"), str) and rec.get("question_en")
                    else None)
            if translate:
                q_en = rec["question"]
            meta = tuple((c, _plain(rec[c])) for c in meta_cols if _present(rec[c]))
            for backend in backends:
                tasks.append(Task(rec["qid"], lang, None if translate else rec["question"], q_en, backend, meta))
    return tasks


def _present(value) -> bool:
    """False for None, NaN and pd.NA (whose ``==`` cannot be used as a bool)."""
    try:
        return not bool(pd.isna(value))
    except (TypeError, ValueError):  # arrays and the like: present
        return True


def _plain(value):
    """numpy scalars -> Python scalars, so that rows serialise as JSON numbers, not strings."""
    return value.item() if hasattr(value, "item") and not isinstance(value, (str, bytes)) else value


# ---------------------------------------------------------------- the append-only log

def read_log(path: Path, repair: bool = True) -> list[dict]:
    """Records of a JSONL log; a torn last line (a kill during a write) is cut off when ``repair``."""
    if not path.exists():
        return []
    raw = path.read_bytes()
    records: list[dict] = []
    good_end = 0
    pos = 0
    line_no = 0
    while pos < len(raw):
        end = raw.find(b"\n", pos)
        line_no += 1
        if end == -1:  # no newline: the write was cut; drop it
            break
        line = raw[pos:end]
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                if raw[end + 1:].strip():
                    raise UnivarError(f"corrupt record (invalid JSON), {path}:{line_no}") from None
                break  # a torn last line that happened to end in a newline byte
        good_end = end + 1
        pos = end + 1
    if good_end < len(raw):
        log.warning("%s: cut %d bytes of a record torn by an interrupted run", path, len(raw) - good_end)
        if repair:
            with open(path, "r+b") as fh:
                fh.truncate(good_end)
    return records


class AppendLog:
    """Append one JSON object per line with a single write + fsync (atomic with respect to kill -9)."""

    def __init__(self, path: Path, fsync: bool = True):
        self.path = path
        self.fsync = fsync
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._lock = threading.Lock()

    def append(self, record: dict) -> None:
        data = (json.dumps(record, ensure_ascii=False, default=str) + "\n").encode("utf-8")
        with self._lock:
            size = os.fstat(self._fd).st_size
            try:
                written = os.write(self._fd, data)
                while written < len(data):  # disk full part way: the kernel took only the first bytes
                    more = os.write(self._fd, data[written:])  # mostly fails now, with the reason
                    if more <= 0:
                        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                    written += more
                if self.fsync:
                    os.fsync(self._fd)
            except OSError as exc:  # disk full, file too large: cut the half record, keep every whole one
                try:
                    os.ftruncate(self._fd, size)
                except OSError:
                    pass  # the next run cuts a torn last line anyway
                raise OSError(exc.errno, f"cannot append to the log ({exc.strerror or exc}); "
                                         "the rows already written are kept", str(self.path)) from None

    def close(self) -> None:
        os.close(self._fd)


# ---------------------------------------------------------------- the run

@dataclass
class Summary:
    """What a run did; the command prints it and the tests check it."""

    total: int = 0
    done_before: int = 0
    asked: int = 0
    collected: int = 0
    failed: int = 0
    failures: Counter = field(default_factory=Counter)
    failure_examples: list[str] = field(default_factory=list)
    retries: int = 0
    seconds: float = 0.0
    complete: bool = False
    parquet: Path | None = None

    @property
    def rate(self) -> float:
        return self.collected / self.seconds if self.seconds > 0 else 0.0


def row_seed(base: int | None, key: tuple[str, str, str], attempt: int) -> int | None:
    """A per-row seed: stable for a row (reproducible), different on each later retry run."""
    if base is None:
        return None
    digest = hashlib.sha1(f"{base}|{'|'.join(key)}|{attempt}".encode()).hexdigest()
    return int(digest[:8], 16) & 0x7FFFFFFF


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class _Cache:
    """Thread-safe memo for translations (one question is asked of several models)."""

    def __init__(self):
        self._data: dict = {}
        self._lock = threading.Lock()

    def get(self, key, make: Callable[[], str]) -> str:
        with self._lock:
            if key in self._data:
                return self._data[key]
        value = make()
        with self._lock:
            self._data[key] = value
        return value


def run(tasks: Sequence[Task], out_dir: str | Path, params: SamplingParams, *, system: str | None = None,
        translator=None, concurrency: int = 4, progress: bool = True, fsync: bool = True,
        on_row: Callable[[dict], None] | None = None) -> Summary:
    """Ask every task not yet in ``out_dir/qa.jsonl``; append answers and failures as they arrive."""
    return Collector(tasks, out_dir, params, system=system, translator=translator, concurrency=concurrency,
                     progress=progress, fsync=fsync, on_row=on_row).run()


def _log_key(record: dict) -> tuple[str, str, str]:
    return (str(record.get("qid")), str(record.get("model")), str(record.get("lang")))


class Collector:
    """One elicitation run into ``out_dir``: the tasks, the journal (``qa.jsonl`` + ``failures.jsonl``), the
    worker pool, the progress bar and the :class:`Summary` it fills.

    :meth:`run` = :meth:`pending` (what ``qa.jsonl`` lacks) -> :meth:`_collect` (the workers run :meth:`_ask`;
    this thread passes each result to :meth:`_record` as it arrives) -> :meth:`_finish` (stats, ``qa.parquet``).
    Workers only ask and translate; every write to the journal happens on the calling thread.
    """

    def __init__(self, tasks: Sequence[Task], out_dir: str | Path, params: SamplingParams, *,
                 system: str | None = None, translator=None, concurrency: int = 4, progress: bool = True,
                 fsync: bool = True, on_row: Callable[[dict], None] | None = None):
        self.tasks = tasks
        self.out = Path(out_dir)
        self.qa_path = self.out / QA_FILE
        self.fail_path = self.out / FAILURES_FILE
        self.parquet_path = self.out / PARQUET_FILE
        self.params = params
        self.system = system
        self.translator = translator or NoTranslator()
        self.concurrency = max(1, concurrency)
        self.progress = progress
        self.fsync = fsync
        self.on_row = on_row
        self.summary = Summary(total=0)
        self._cache = _Cache()  # translations: one question is asked of several models
        self._past_failures: Counter = Counter()  # key -> failed tries so far, for the retry seed
        self._qa_log: AppendLog | None = None
        self._fail_log: AppendLog | None = None

    # ------------------------------------------------ the run, step by step

    def run(self) -> Summary:
        if self.out.exists() and not self.out.is_dir():
            raise UnivarError(f"--out must be a directory: {self.out}")
        self.out.mkdir(parents=True, exist_ok=True)
        pending = self.pending()
        if self.summary.total == 0:
            raise UnivarError("nothing to ask (no questions selected)")
        if pending and self.parquet_path.exists():
            self.parquet_path.unlink()  # it claimed a completeness this task set does not have, even if the run fails
        backends = list({id(t.backend): t.backend for t in pending}.values())
        retries_before = sum(b.stats.retries for b in backends)
        t0 = time.monotonic()
        self._collect(pending)
        self._finish(time.monotonic() - t0, sum(b.stats.retries for b in backends) - retries_before)
        return self.summary

    def pending(self) -> list[Task]:
        """The tasks (each key once) not yet in ``qa.jsonl``; sets the summary's ``total`` and ``done_before``.

        Reading the journal cuts a torn last line, and notes how often each key failed before.
        """
        done = {_log_key(r) for r in read_log(self.qa_path)}
        self._past_failures = Counter(_log_key(r) for r in read_log(self.fail_path))
        seen: set = set()
        todo: list[Task] = []
        for task in self.tasks:
            if task.key in seen:
                continue
            seen.add(task.key)
            if task.key not in done:
                todo.append(task)
        self.summary.total, self.summary.done_before = len(seen), len(seen) - len(todo)
        return todo

    def _collect(self, pending: list[Task]) -> None:
        """Ask ``pending`` on the worker pool, recording each result as it arrives."""
        self._qa_log, self._fail_log = AppendLog(self.qa_path, self.fsync), AppendLog(self.fail_path, self.fsync)
        pool = _DaemonPool(self.concurrency)
        try:
            with bar(len(pending), "elicit", "QA") if self.progress else _null_bar() as advance:
                self._drain(pool, iter(pending), advance)
        except BaseException as exc:
            # Ctrl-C (not an Exception): leave requests in flight behind, they may take minutes. Any other error
            # (a full disk): let them end first, so that no worker is inside native code (llama.cpp in process)
            # while the interpreter shuts down, which crashed the process with SIGSEGV after its error line.
            pool.shutdown(wait=isinstance(exc, Exception), cancel_futures=True)
            raise
        finally:
            self._qa_log.close()
            self._fail_log.close()
        pool.shutdown(wait=True)

    def _drain(self, pool: _DaemonPool, todo, advance: Callable[[int], None]) -> None:
        running: dict[Future, Task] = {}

        def top_up() -> None:  # submit lazily so that an interrupt leaves little in flight
            while len(running) < self.concurrency * 2:
                task = next(todo, None)
                if task is None:
                    return
                running[pool.submit(self._ask, task)] = task

        top_up()
        while running:
            finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for future in finished:
                self._record(running.pop(future), future)
                advance(1)
            top_up()

    def _finish(self, seconds: float, retries: int) -> None:
        """Final stats; ``qa.parquet`` when every task is done, else no parquet at all."""
        s = self.summary
        s.seconds = seconds
        s.retries = retries
        s.complete = s.done_before + s.collected == s.total
        if s.complete:
            s.parquet = write_parquet(self.out, {t.key for t in self.tasks})
        elif self.parquet_path.exists():
            self.parquet_path.unlink()  # a stale parquet would claim a completeness the directory no longer has

    # ------------------------------------------------ on the calling thread: the journal

    def _record(self, task: Task, future: Future) -> None:
        """One finished request -> its row in ``qa.jsonl``, or its reason in ``failures.jsonl``."""
        self.summary.asked += 1
        exc = future.exception()
        if exc is not None:
            self._record_failure(task, exc)
            return
        record = future.result()
        self._qa_log.append(record)
        self.summary.collected += 1
        if self.on_row is not None:
            self.on_row(record)

    def _record_failure(self, task: Task, exc: BaseException) -> None:
        if not isinstance(exc, (BackendError, UnivarError)):
            log.debug("unexpected failure", exc_info=exc)
        reason = f"{type(exc).__name__}: {exc}"
        self._fail_log.append({"qid": task.qid, "model": task.backend.name, "lang": task.lang,
                               "backend": task.backend.spec, "error": reason[:500], "created_at": _now()})
        s = self.summary
        s.failed += 1
        s.failures[reason.split(":")[0] + ": " + str(exc).split(":")[0][:40]] += 1
        if len(s.failure_examples) < 5:
            s.failure_examples.append(f"{task.qid} {task.backend.name} {task.lang}: {reason[:200]}")

    # ------------------------------------------------ in a worker thread: ask and translate

    def _ask(self, task: Task) -> dict:
        """One task -> its ``qa.jsonl`` record; raises when the backend (after its retries) or a translation fails."""
        question, q_en, back = self._question(task)
        params = self.params.with_seed(row_seed(self.params.seed, task.key, self._past_failures[task.key]))
        messages = [{"role": "system", "content": self.system}] if self.system else []
        messages.append({"role": "user", "content": question})
        result = task.backend.chat(messages, params)
        answer = result.text.strip()
        if not answer:
            raise BackendError(f"empty answer (finish_reason={result.finish_reason})")
        if task.lang == "en":
            answer_en = answer
        elif back:
            answer_en = self.translator.translate([answer], task.lang, "en")[0]
        else:
            answer_en = None
        return self._row(task, question, q_en, answer, answer_en, params, result.finish_reason)

    def _question(self, task: Task) -> tuple[str, str | None, bool]:
        """The question in the task's language, in English (None: unknown), and whether answers go back to English."""
        tr = self.translator
        q_en = task.question_en
        if task.question is None:
            question = self._cache.get((task.qid, task.lang), lambda: tr.translate([q_en], "en", task.lang)[0])
        else:
            question = task.question
        back = task.lang != "en" and tr.name != "none" and tr.supports(task.lang, "en")
        if not q_en:
            q_en = question if task.lang == "en" else (
                self._cache.get((task.qid, "en<-", task.lang), lambda: tr.translate([question], task.lang, "en")[0])
                if back else None)
        return question, q_en, back

    def _row(self, task: Task, question: str, q_en: str | None, answer: str, answer_en: str | None,
             params: SamplingParams, finish_reason) -> dict:
        """The record for ``qa.jsonl``; its keys and their order are the output format."""
        record = {"qid": task.qid, "question": question, "answer": answer, "model": task.backend.name,
                  "lang": task.lang, "question_en": q_en, "answer_en": answer_en}
        record.update(dict(task.meta))
        described = {k: v for k, v in task.backend.describe().items() if k != "backend"}
        record.update({"backend": task.backend.spec, "translator": self.translator.name,
                       "params": json.dumps({**params.to_dict(), "system": self.system, **described},
                                            ensure_ascii=False, sort_keys=True),
                       "finish_reason": finish_reason, "created_at": _now()})
        return record


class _DaemonPool:
    """A thread pool whose workers do not hold the process at exit.

    ``concurrent.futures.ThreadPoolExecutor`` joins its threads when the interpreter ends, so after Ctrl-C
    the process waited for every request in flight (up to ``--timeout`` x ``--retries``). Workers here only
    ask and translate; every finished row is written by the calling thread, so abandoning them loses
    nothing that was finished.
    """

    def __init__(self, workers: int):
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._threads = [threading.Thread(target=self._work, name=f"univar-elicit-{i}", daemon=True)
                         for i in range(workers)]
        for thread in self._threads:
            thread.start()

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            future, fn, args = job
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn(*args))
            except BaseException as exc:  # handed to the caller through the future
                future.set_exception(exc)

    def submit(self, fn: Callable, *args) -> Future:
        future: Future = Future()
        self._jobs.put((future, fn, args))
        return future

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        if cancel_futures:
            while True:
                try:
                    job = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if job is not None:
                    job[0].cancel()
        for _ in self._threads:
            self._jobs.put(None)
        if wait:
            for thread in self._threads:
                thread.join()


class _null_bar:
    def __enter__(self):
        return lambda n=1: None

    def __exit__(self, *exc):
        return False


def write_parquet(out_dir: Path, keys: set | None = None) -> Path:
    """``qa.jsonl`` -> ``qa.parquet`` (one row per key, the first answer wins), written atomically."""
    records = read_log(out_dir / QA_FILE)
    table = pd.DataFrame.from_records(records)
    if not table.empty:
        table = table.drop_duplicates(subset=["qid", "model", "lang"], keep="first")
        if keys is not None:
            mask = [k in keys for k in zip(table["qid"].astype(str), table["model"].astype(str),
                                           table["lang"].astype(str))]
            table = table.loc[mask]
        for column in table.columns:
            if table[column].dtype == object:
                table[column] = table[column].map(
                    lambda v: v if v is None or isinstance(v, str)
                    else json.dumps(v) if isinstance(v, (dict, list)) else str(v))
    path = out_dir / PARQUET_FILE
    return write_qa(table.reset_index(drop=True), path)
