"""Retries, timeouts, failure records and resume, proven against a fault-injecting server on loopback."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from helpers.llm import FaultServer

from univar import elicit as E
from univar.llm import BackendError, RetryableError, SamplingParams, get_backend

FAULTS = ["429", "500", "503", "timeout", "malformed", "truncated", "nocontent"]
FAST = dict(retries=3, backoff=0.01, timeout=0.5)


def _questions(tmp_path: Path, n: int, prefix: str = "Q") -> Path:
    path = tmp_path / "questions.txt"
    path.write_text("\n".join(f"{prefix}{i}: should people value tradition over change?" for i in range(n)) + "\n")
    return path


@pytest.fixture
def cli(capsys, monkeypatch):
    """Run the real command line in this process (a subprocess per call costs seconds of imports)."""
    from univar.cli import main

    monkeypatch.setenv("UNIVAR_PROGRESS", "0")

    def run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
        for key, value in (env or {}).items():
            monkeypatch.setenv(key, value)
        capsys.readouterr()
        try:
            code = main(list(args))
        except SystemExit as exc:
            code = exc.code
        captured = capsys.readouterr()
        for key in env or {}:
            monkeypatch.delenv(key)
        return subprocess.CompletedProcess(args, code, captured.out, captured.err)

    return run


@pytest.mark.parametrize("fault", FAULTS)
def test_each_fault_is_retried_then_answered(fault):
    with FaultServer(lambda n, body: fault if n == 0 else "ok", slow=1.5) as srv:
        backend = get_backend("openai/fake", base_url=srv.url, api_key="k", **FAST)
        result = backend.chat([{"role": "user", "content": "hi?"}], SamplingParams(max_tokens=8, seed=3))
    assert result.text == "answer to: hi?"
    assert srv.modes == [fault, "ok"]
    assert backend.stats.retries == 1 and backend.stats.attempts == 2


def test_sampling_params_and_seed_are_sent():
    with FaultServer() as srv:
        backend = get_backend("openai/fake", base_url=srv.url, **FAST)
        backend.chat([{"role": "user", "content": "x?"}],
                     SamplingParams(temperature=0.3, top_p=0.9, top_k=7, max_tokens=5, seed=11))
    sent = srv.requests[0]
    assert ((sent["model"], sent["temperature"], sent["top_p"], sent["top_k"], sent["max_tokens"], sent["seed"])
            == ("fake", 0.3, 0.9, 7, 5, 11))


def test_gives_up_after_retries_and_does_not_retry_client_errors():
    with FaultServer(lambda n, body: "500") as srv:
        backend = get_backend("openai/fake", base_url=srv.url, **FAST)
        with pytest.raises(RetryableError, match="gave up after 4 tries"):
            backend.chat([{"role": "user", "content": "x?"}], SamplingParams())
        assert len(srv.requests) == 4
    with FaultServer(lambda n, body: "400") as srv:
        backend = get_backend("openai/fake", base_url=srv.url, **FAST)
        with pytest.raises(BackendError, match="HTTP 400"):
            backend.chat([{"role": "user", "content": "x?"}], SamplingParams())
        assert len(srv.requests) == 1


def test_backoff_grows_exponentially():
    from univar.llm import RetryPolicy

    policy = RetryPolicy(retries=5, base_delay=0.5, max_delay=30, jitter=0.0)
    assert [policy.delay(i) for i in range(5)] == [0.5, 1.0, 2.0, 4.0, 8.0]
    assert policy.delay(20) == 30
    assert policy.delay(0, retry_after=3) == 3


def test_elicit_through_faults_collects_everything_once(tmp_path):
    # Each question's first try fails with the next fault in turn; every third question fails twice.
    tries: dict[str, int] = {}

    def policy(n, body):
        text = body["messages"][-1]["content"]
        tries[text] = tries.get(text, 0) + 1
        i = int(text[1:text.index(":")])
        limit = 2 if i % 3 == 0 else 1
        return FAULTS[(i + tries[text]) % len(FAULTS)] if tries[text] <= limit else "ok"

    with FaultServer(policy, slow=1.0) as srv:
        backend = get_backend("openai/fake", base_url=srv.url, **FAST)
        table = E.load_questions(_questions(tmp_path, 20))
        tasks = E.plan(table, ["en"], [backend], None, can_translate=False)
        summary = E.run(tasks, tmp_path / "out", SamplingParams(max_tokens=8), concurrency=4, progress=False)
    assert summary.collected == 20 and summary.failed == 0 and summary.complete
    assert summary.retries == 20 + 7 == len(srv.requests) - 20  # every injected fault was retried
    assert set(srv.modes) == set(FAULTS) | {"ok"}
    rows = E.read_log(tmp_path / "out" / "qa.jsonl")
    assert len(rows) == 20 == len({r["qid"] for r in rows})
    assert all(r["answer"] == f"answer to: {r['question']}" for r in rows)
    params = json.loads(rows[0]["params"])
    assert {"temperature", "top_p", "top_k", "max_tokens", "seed"} <= set(params)
    assert len({json.loads(r["params"])["seed"] for r in rows}) == 20  # one seed per row, recorded
    assert len(pd.read_parquet(tmp_path / "out" / "qa.parquet")) == 20


def test_failures_are_recorded_then_retried_on_the_next_run(tmp_path, cli):
    questions = _questions(tmp_path, 8)
    out = tmp_path / "out"
    broken = {"on": True}

    def policy(n, body):
        text = body["messages"][-1]["content"]
        return "500" if broken["on"] and text.startswith(("Q3", "Q5")) else "ok"

    with FaultServer(policy) as srv:
        args = ["elicit", "--questions", str(questions), "--model", "openai/fake", "--lang", "en", "--out", str(out),
                "--base-url", srv.url, "--retries", "1", "--timeout", "2", "--max-tokens", "8"]
        first = cli(*args)
        assert first.returncode == 1, first.stderr
        assert "2 failed" in first.stderr and "re-run the same command" in first.stderr
        assert len(E.read_log(out / "qa.jsonl")) == 6
        failures = E.read_log(out / "failures.jsonl")
        assert len(failures) == 2 and all("HTTP 500" in f["error"] for f in failures)
        assert not (out / "qa.parquet").exists()  # only a complete run writes it
        asked_before = len(srv.requests)
        broken["on"] = False
        second = cli(*args)
        assert second.returncode == 0, second.stderr
        assert len(srv.requests) - asked_before == 2  # only the two missing ones were asked
    rows = E.read_log(out / "qa.jsonl")
    assert sorted(r["question"][:2] for r in rows) == sorted(f"Q{i}" for i in range(8))
    assert len(pd.read_parquet(out / "qa.parquet")) == 8


def test_api_key_never_reaches_a_file_or_the_terminal(tmp_path, cli):
    secret = "sk-test-SECRET-4242"
    out = tmp_path / "out"
    with FaultServer(lambda n, body: "401" if n < 2 else "ok") as srv:
        run = cli("-v", "elicit", "--questions", str(_questions(tmp_path, 3)), "--model", "openai/fake",
                  "--lang", "en", "--out", str(out), "--base-url", srv.url, "--retries", "0", "--concurrency", "1",
                  env={"OPENAI_API_KEY": secret})
        assert srv.headers[0]["Authorization"] == f"Bearer {secret}"  # the key was used...
    assert run.returncode == 1
    assert secret not in run.stdout + run.stderr  # ...but the server's echo of it was redacted
    for file in out.iterdir():
        assert secret not in file.read_text()
    assert "***" in (out / "failures.jsonl").read_text()


def test_bad_input_is_one_error_line_and_loses_nothing(tmp_path, cli):
    out = tmp_path / "out"
    with FaultServer() as srv:
        ok = cli("elicit", "--questions", str(_questions(tmp_path, 3)), "--model", "openai/fake", "--lang", "en",
                  "--out", str(out), "--base-url", srv.url)
        assert ok.returncode == 0, ok.stderr
        before = (out / "qa.jsonl").read_bytes()
        for args in (["--model", "nope/x"], ["--questions", str(tmp_path / "missing.csv")], ["--lang", "de"],
                     ["--translator", "bogus"], ["--limit", "0"]):
            base = {"--questions": str(_questions(tmp_path, 3)), "--model": "openai/fake", "--lang": "en"}
            base[args[0]] = args[1]
            run = cli("elicit", *[x for kv in base.items() for x in kv], "--out", str(out), "--base-url", srv.url,
                       *([] if args[0] in base else args))
            assert run.returncode == 2, (args, run.stderr)
            lines = run.stderr.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("error: "), (args, run.stderr)
    assert (out / "qa.jsonl").read_bytes() == before


def test_torn_last_line_is_cut_and_the_row_asked_again(tmp_path):
    out = tmp_path / "out"
    with FaultServer() as srv:
        backend = get_backend("openai/fake", base_url=srv.url, **FAST)
        tasks = E.plan(E.load_questions(_questions(tmp_path, 4)), ["en"], [backend], None, can_translate=False)
        E.run(tasks, out, SamplingParams(max_tokens=4), progress=False)
        lines = (out / "qa.jsonl").read_bytes().splitlines(keepends=True)
        (out / "qa.jsonl").write_bytes(b"".join(lines[:3]) + lines[3][:25])  # as if killed mid-write
        summary = E.run(tasks, out, SamplingParams(max_tokens=4), progress=False)
    assert summary.done_before == 3 and summary.collected == 1
    rows = E.read_log(out / "qa.jsonl")
    assert len(rows) == 4 == len({r["qid"] for r in rows})


def test_concurrency_limit_is_respected():
    import threading
    import time

    state = {"now": 0, "max": 0}
    lock = threading.Lock()

    with FaultServer(delay=0.2) as srv:
        backend = get_backend("openai/fake", base_url=srv.url, **FAST)
        original = backend._chat

        def counted(messages, params):
            with lock:
                state["now"] += 1
                state["max"] = max(state["max"], state["now"])
            try:
                return original(messages, params)
            finally:
                with lock:
                    state["now"] -= 1

        backend._chat = counted
        from univar.elicit import Task

        tasks = [Task(f"q{i}", "en", f"q{i}?", f"q{i}?", backend) for i in range(12)]
        t0 = time.monotonic()
        import tempfile

        with tempfile.TemporaryDirectory() as d:
            E.run(tasks, d, SamplingParams(max_tokens=4), concurrency=3, progress=False)
        elapsed = time.monotonic() - t0
    assert state["max"] == 3
    assert elapsed >= 0.2 * 12 / 3 * 0.9


def test_model_specs_and_labels(tmp_path, cli):
    from univar.errors import UnivarError
    from univar.llm import parse_spec

    assert parse_spec("openai/gpt-4o-mini") == ("gpt-4o-mini", "openai", "gpt-4o-mini")
    assert parse_spec("smollm2") == ("smollm2", "llamacpp", "smollm2")
    assert parse_spec("hf/smollm2")[0] == "smollm2-hf"
    assert parse_spec("llamacpp/models/x.Q4.gguf")[0] == "x.Q4"
    assert parse_spec("steered=smollm2") == ("steered", "llamacpp", "smollm2")
    with pytest.raises(UnivarError, match="unknown model"):
        parse_spec("gpt-4o")
    out = tmp_path / "out"
    with FaultServer() as srv:
        same = cli("elicit", "-q", str(_questions(tmp_path, 2)), "-m", "openai/a", "-m", "openai/a", "-l", "en",
                   "--out", str(out), "--base-url", srv.url)
        assert same.returncode == 2 and "same label" in same.stderr
        two = cli("elicit", "-q", str(_questions(tmp_path, 2)), "-m", "one=openai/a", "-m", "two=openai/a",
                  "-l", "en", "--system", "You value tradition.", "--out", str(out), "--base-url", srv.url)
        assert two.returncode == 0, two.stderr
        assert srv.requests[-1]["messages"][0] == {"role": "system", "content": "You value tradition."}
    table = pd.read_parquet(out / "qa.parquet")
    assert sorted(table["model"].unique()) == ["one", "two"] and len(table) == 4
    assert json.loads(table["params"].iloc[0])["system"] == "You value tradition."


def test_given_translations_are_used_instead_of_machine_translation(tmp_path):
    path = tmp_path / "q.csv"
    pd.DataFrame({"qid": ["a", "b"], "question": ["Is family important?", "Should rules be obeyed?"],
                  "question_de": ["Ist Familie wichtig?", ""]}).to_csv(path, index=False)
    table = E.load_questions(path)
    assert len(table) == 3 and set(table["lang"]) == {"en", "de"}
    with FaultServer() as srv:
        backend = get_backend("openai/fake", base_url=srv.url, **FAST)
        tasks = E.plan(table, ["en", "de"], [backend], None, can_translate=False)
        E.run(tasks, tmp_path / "out", SamplingParams(max_tokens=4), progress=False)
    rows = {(r["qid"], r["lang"]): r for r in E.read_log(tmp_path / "out" / "qa.jsonl")}
    assert set(rows) == {("a", "en"), ("b", "en"), ("a", "de")}
    assert rows[("a", "de")]["question"] == "Ist Familie wichtig?"
    assert rows[("a", "de")]["question_en"] == "Is family important?"


def test_a_cut_at_any_byte_loses_only_the_record_being_written(tmp_path):
    """kill -9 "at any moment": whatever prefix of the log reached the disk, reading it keeps every complete
    record, drops only the torn one, and leaves a file that the next append continues cleanly."""
    log_path = tmp_path / "full.jsonl"
    writer = E.AppendLog(log_path, fsync=False)
    records = [{"qid": f"q{i}", "model": "m", "lang": "en", "answer": "é" * i + '"\n\\'} for i in range(4)]
    for rec in records:
        writer.append(rec)
    writer.close()
    full = log_path.read_bytes()
    ends = [i + 1 for i, b in enumerate(full) if b == 0x0A and full[i - 1:i] == b"}"]
    for cut in range(len(full) + 1):
        part = tmp_path / "cut.jsonl"
        part.write_bytes(full[:cut])
        complete = sum(1 for e in ends if e <= cut)
        assert E.read_log(part) == records[:complete], cut
        appender = E.AppendLog(part, fsync=False)
        appender.append(records[-1])
        appender.close()
        assert E.read_log(part) == records[:complete] + [records[-1]], cut


def test_question_metadata_with_missing_values_and_numpy_types(tmp_path):
    path = tmp_path / "q.parquet"
    frame = pd.DataFrame({"question": ["A?", "B?"], "value": pd.array(["x", pd.NA], dtype="string"),
                          "group": pd.array([1, None], dtype="Int64")})
    frame.to_parquet(path)
    with FaultServer() as srv:
        backend = get_backend("openai/fake", base_url=srv.url, **FAST)
        tasks = E.plan(E.load_questions(path), ["en"], [backend], None, can_translate=False)
        E.run(tasks, tmp_path / "out", SamplingParams(max_tokens=4), progress=False)
    rows = {r["question"]: r for r in E.read_log(tmp_path / "out" / "qa.jsonl")}
    assert rows["A?"]["value"] == "x" and rows["A?"]["group"] == 1
    assert "value" not in rows["B?"] and "group" not in rows["B?"]
    assert len(pd.read_parquet(tmp_path / "out" / "qa.parquet")) == 2
