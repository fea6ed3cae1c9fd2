"""The elicitation loop (:class:`univar.elicit.Collector`) with in-process fake backends: what it asks, what
it writes to ``qa.jsonl`` / ``failures.jsonl``, how a second run resumes, and a ``kill -9`` mid-run."""

from __future__ import annotations

import ast
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from univar import elicit as E
from univar.llm import BackendError, ChatBackend, SamplingParams
from univar.llm.base import ChatResult, RetryPolicy
from univar.translate import Translator

ROOT = Path(__file__).resolve().parents[1]


class Echo(ChatBackend):
    """Answers ``"<name>: <question> #<seed>"``; questions containing a word in ``fail`` raise BackendError."""

    def __init__(self, name: str = "echo", fail: tuple[str, ...] = ()):
        super().__init__(f"fake/{name}", name, RetryPolicy(retries=0))
        self.fail = set(fail)
        self.asked: list[tuple[str, int | None]] = []
        self._lock = threading.Lock()

    def _chat(self, messages, params):
        question = messages[-1]["content"]
        with self._lock:
            self.asked.append((question, params.seed))
        if any(word in question for word in self.fail):
            raise BackendError(f"400 refused: {question}")
        return ChatResult(f"{self.name}: {question} #{params.seed}", "stop")


class Tagger(Translator):
    """Prefixes ``[src>tgt]``; counts its calls; cannot translate from Japanese."""

    name = "tagger"

    def __init__(self):
        self.calls: list[tuple[str, str, str]] = []
        self._lock = threading.Lock()

    def supports(self, src, tgt):
        return src != "ja"

    def _translate(self, texts, src, tgt):
        with self._lock:
            self.calls.extend((t, src, tgt) for t in texts)
        return [f"[{src}>{tgt}] {t}" for t in texts]


def _tasks(backend, n=4, lang="en"):
    return [E.Task(f"q{i}", lang, f"question {i}?", f"question {i}?", backend) for i in range(n)]


def test_pending_counts_each_key_once_and_cuts_a_torn_last_line(tmp_path):
    backend = Echo()
    tasks = _tasks(backend, 4)
    (tmp_path / E.QA_FILE).write_bytes(
        b"".join(json.dumps({"qid": f"q{i}", "model": "echo", "lang": "en"}).encode() + b"\n" for i in (0, 2))
        + b'{"qid": "q3", "mod')
    collector = E.Collector(tasks + tasks[:2], tmp_path, SamplingParams(), progress=False)
    pending = collector.pending()
    assert [t.qid for t in pending] == ["q1", "q3"]
    assert (collector.summary.total, collector.summary.done_before) == (4, 2)
    assert (tmp_path / E.QA_FILE).read_bytes().endswith(b"}\n")  # the torn record is gone
    assert collector.pending() == pending and collector.summary.total == 4  # asking again counts nothing twice


def test_rows_have_the_documented_keys_and_each_translation_is_made_once(tmp_path):
    a, b = Echo("a"), Echo("b")
    tr = Tagger()
    tasks = [E.Task("q0", "de", None, "Is tradition good?", m, (("value", "tradition"),)) for m in (a, b)]
    tasks += [E.Task("q1", "ja", "伝統は良い?", None, m) for m in (a, b)]
    seen: list[dict] = []
    summary = E.Collector(tasks, tmp_path, SamplingParams(seed=7), system="Be brief.", translator=tr,
                          concurrency=2, progress=False, on_row=seen.append).run()
    assert summary.complete and summary.collected == 4 and summary.failed == 0
    rows = {(r["qid"], r["model"]): r for r in E.read_log(tmp_path / E.QA_FILE)}
    assert sorted(seen, key=lambda r: (r["qid"], r["model"])) == [rows[k] for k in sorted(rows)]
    assert list(rows["q0", "a"]) == ["qid", "question", "answer", "model", "lang", "question_en", "answer_en", "value",
                                     "backend", "translator", "params", "finish_reason", "created_at"]
    de = rows["q0", "a"]
    assert de["question"] == "[en>de] Is tradition good?" and de["question_en"] == "Is tradition good?"
    assert de["answer_en"] == f"[de>en] {de['answer']}" and de["translator"] == "tagger"
    params = json.loads(de["params"])
    assert params["system"] == "Be brief." and params["seed"] == E.row_seed(7, ("q0", "a", "de"), 0)
    assert [c for c in tr.calls if c[2] == "de"] == [("Is tradition good?", "en", "de")]  # once for both models
    ja = rows["q1", "b"]
    assert ja["question_en"] is None and ja["answer_en"] is None  # ja -> en is not supported
    assert pd.read_parquet(summary.parquet).shape[0] == 4


def test_failures_are_journaled_and_the_next_run_asks_only_them_with_a_new_seed(tmp_path):
    flaky = Echo(fail=("question 1", "question 3"))
    tasks = _tasks(flaky, 4)
    (tmp_path / E.PARQUET_FILE).write_bytes(b"stale")
    first = E.run(tasks, tmp_path, SamplingParams(seed=1), concurrency=2, progress=False)
    assert (first.total, first.collected, first.failed, first.complete) == (4, 2, 2, False)
    assert first.failures == {"BackendError: 400 refused": 2}
    assert not (tmp_path / E.PARQUET_FILE).exists()  # it would claim a completeness the directory lacks
    failures = E.read_log(tmp_path / E.FAILURES_FILE)
    assert sorted(f["qid"] for f in failures) == ["q1", "q3"]
    assert set(failures[0]) == {"qid", "model", "lang", "backend", "error", "created_at"}

    fixed = Echo()
    second = E.run(_tasks(fixed, 4), tmp_path, SamplingParams(seed=1), progress=False)
    assert (second.done_before, second.asked, second.collected, second.complete) == (2, 2, 2, True)
    assert sorted(fixed.asked) == [(f"question {i}?", E.row_seed(1, (f"q{i}", "echo", "en"), 1)) for i in (1, 3)]
    rows = E.read_log(tmp_path / E.QA_FILE)
    assert sorted(r["qid"] for r in rows) == ["q0", "q1", "q2", "q3"]
    assert pd.read_parquet(second.parquet)["qid"].tolist() == [r["qid"] for r in rows]


def test_an_error_while_recording_stops_the_run_and_keeps_every_whole_row(tmp_path):
    def on_row(row):
        if row["qid"] == "q2":
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        E.run(_tasks(Echo(), 6), tmp_path, SamplingParams(), concurrency=1, on_row=on_row, progress=False)
    kept = {r["qid"] for r in E.read_log(tmp_path / E.QA_FILE)}
    assert "q2" in kept and not (tmp_path / E.PARQUET_FILE).exists()  # the row is written before on_row sees it
    summary = E.run(_tasks(Echo(), 6), tmp_path, SamplingParams(), progress=False)
    assert summary.complete and summary.done_before == len(kept)
    assert sorted(r["qid"] for r in E.read_log(tmp_path / E.QA_FILE)) == [f"q{i}" for i in range(6)]


def test_nothing_to_ask_and_out_not_a_directory_are_user_errors(tmp_path):
    from univar.errors import UnivarError

    with pytest.raises(UnivarError, match="nothing to ask"):
        E.run([], tmp_path / "out", SamplingParams(), progress=False)
    (tmp_path / "file").write_text("x")
    with pytest.raises(UnivarError, match="must be a directory"):
        E.run(_tasks(Echo(), 1), tmp_path / "file", SamplingParams(), progress=False)


SLOW_RUN = textwrap.dedent("""
    import sys, time
    from univar import elicit as E
    from univar.llm import ChatBackend, SamplingParams
    from univar.llm.base import ChatResult

    class Slow(ChatBackend):
        def _chat(self, messages, params):
            time.sleep(0.03)
            return ChatResult("answer to " + messages[-1]["content"], "stop")

    backend = Slow("fake/slow", "slow")
    tasks = [E.Task(f"q{i}", "en", f"question {i}?", None, backend) for i in range(int(sys.argv[2]))]
    summary = E.run(tasks, sys.argv[1], SamplingParams(), concurrency=3, progress=False, fsync=False)
    print(summary.done_before, summary.collected, summary.complete)
""")


def _lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def test_kill_9_mid_run_then_resume_collects_every_row_exactly_once(tmp_path):
    script, out, n = tmp_path / "slow_run.py", tmp_path / "out", 120
    script.write_text(SLOW_RUN)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    for at in (10, 30, 50):  # kill -9 once this many rows are in qa.jsonl
        proc = subprocess.Popen([sys.executable, str(script), str(out), str(n)], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while _lines(out / E.QA_FILE) < at and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.002)
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        assert proc.returncode == -signal.SIGKILL, f"the run ended before the kill at {at} rows"
        assert not (out / E.PARQUET_FILE).exists()
    done = subprocess.run([sys.executable, str(script), str(out), str(n)], env=env, capture_output=True,
                          text=True, timeout=120, check=True)
    before, collected, complete = done.stdout.split()
    assert complete == "True" and int(before) + int(collected) == n and int(before) >= 50
    rows = E.read_log(out / E.QA_FILE)
    assert sorted(r["qid"] for r in rows) == sorted(f"q{i}" for i in range(n))  # each once, none lost
    assert all(r["answer"] == f"answer to {r['question']}" for r in rows)
    assert len(pd.read_parquet(out / E.PARQUET_FILE)) == n


@pytest.mark.parametrize("path", ["src/univar/elicit.py", "src/univar/commands/elicit.py"])
def test_no_function_is_over_60_lines(path):
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
    long = [f"{node.name} ({node.end_lineno - node.lineno + 1} lines)" for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 60]
    assert not long, f"split these in {path}: {', '.join(long)}"
