"""The environment failing under a real ``univar`` process: disk full (RLIMIT_FSIZE), permission denied,
Ctrl-C. Each gives one ``error:`` line and its exit code, never a traceback, and keeps the work already done.

A file-size limit is how a test can make the kernel refuse writes without a small filesystem: with SIGXFSZ
ignored, a write past the limit fails with EFBIG ("File too large"), as one past the end of a full disk
fails with ENOSPC.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers.kill import cache_rows, wait_for_rows
from helpers.llm import ROOT, have_llama_cpp

from univar import elicit as E
from univar.cli import INTERRUPTED
from univar.qa import qa_texts, write_qa

pytestmark = pytest.mark.slow


def _limit(fsize: int | None):
    def apply() -> None:
        if fsize is not None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
    return apply


def univar(*args: str, cache: Path, fsize: int | None = None, env: dict | None = None,
           timeout: float = 600) -> subprocess.CompletedProcess:
    """``python -m univar ARGS`` with a private cache, optionally under a file-size limit."""
    full = {**os.environ, "UNIVAR_CACHE_DIR": str(cache), "UNIVAR_PROGRESS": "0", "COLUMNS": "200", **(env or {})}
    return subprocess.run([sys.executable, "-m", "univar", *args], cwd=ROOT, env=full, capture_output=True,
                          text=True, timeout=timeout, preexec_fn=_limit(fsize))


def one_error_line(proc: subprocess.CompletedProcess, alone: bool = True) -> str:
    """The ``error:`` line, the last on stderr and the only one (``alone``: the only line at all)."""
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert lines and lines[-1].startswith("error: "), proc.stderr[-3000:]
    assert sum(line.startswith("error") for line in lines) == 1 and (len(lines) == 1 or not alone), proc.stderr
    return lines[-1]


@pytest.fixture(scope="module")
def big_table(valuebench, tmp_path_factory) -> Path:
    """1,400 real QAs (over 1,024 distinct texts: three cache batches of 512 in ``univar embed``)."""
    table = valuebench.drop_duplicates(subset=["question", "answer"]).head(1400).reset_index(drop=True)
    assert len(set(qa_texts(table))) > 1024
    return write_qa(table, tmp_path_factory.mktemp("data") / "big.parquet")


def _db(cache: Path) -> Path:
    (db,) = (cache / "embeddings").glob("*.sqlite")
    return db


# ---------------------------------------------------------------- disk full

def test_disk_full_while_the_cache_grows_keeps_the_earlier_batches(big_table, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    out = tmp_path / "emb.parquet"
    full = univar("embed", str(big_table), "--encoder", "tfidf", "--out", str(out), cache=cache, fsize=4_500_000)
    assert full.returncode == 1, full.stderr[-3000:]
    line = one_error_line(full)
    assert line.startswith("error: cannot write the embedding cache (") and "earlier batches are kept" in line
    assert line.endswith(f", {_db(cache)}")
    assert cache_rows(cache) == 512  # the first batch, whole; the second rolled back
    assert not out.exists() and not out.with_name(out.name + ".tmp").exists()

    # a cache that cannot even be opened for writing is an error too: not "unreadable", never moved aside
    before = _db(cache).read_bytes()
    tiny = univar("embed", str(big_table), "--encoder", "tfidf", "--out", str(out), cache=cache, fsize=8192)
    assert tiny.returncode == 1
    assert one_error_line(tiny).startswith("error: cannot ")
    assert not list((cache / "embeddings").glob("*.corrupt*")) and _db(cache).read_bytes()[:100] == before[:100]
    assert cache_rows(cache) == 512

    # disk freed: the same data again embeds only what the cache lacks (in process, to save the imports)
    from univar.encoders import EmbedStats, embed
    from univar.registry import get_encoder

    monkeypatch.setenv("UNIVAR_CACHE_DIR", str(cache))
    stats = EmbedStats()
    texts = qa_texts(pd.read_parquet(big_table))
    embed(texts, get_encoder("tfidf"), stats=stats, progress=False)
    assert (stats.cached, stats.embedded) == (512, len(set(texts)) - 512)


def test_disk_full_writing_the_output_keeps_the_old_output(small_qa, tmp_path):
    data = write_qa(small_qa, tmp_path / "small.parquet")
    cache = tmp_path / "cache"
    olds = {}
    for suffix in (".parquet", ".npy"):
        out = tmp_path / f"emb{suffix}"
        first = univar("embed", str(data), "--encoder", "tfidf", "--out", str(out), cache=cache)
        assert first.returncode == 0, first.stderr[-3000:]
        olds[out] = out.read_bytes()
        assert len(olds[out]) > 150_000
    for out, old in olds.items():
        # the cache is warm: only the output needs the disk, and it is larger than the limit
        full = univar("embed", str(data), "--encoder", "tfidf", "--out", str(out), cache=cache, fsize=100_000)
        assert full.returncode == 1
        line = one_error_line(full)
        assert line.startswith("error: cannot ") and line.endswith(f", {out}"), line
        assert out.read_bytes() == old  # the earlier output is untouched
        assert not out.with_name(out.name + ".tmp").exists()  # and no half-written file is left


@pytest.mark.skipif(not have_llama_cpp(), reason="xllamacpp (the elicit extra) not installed")
def test_disk_full_during_elicit_keeps_every_whole_row(tmp_path):
    """The append-only log cannot grow: the run stops with one error line, no half record is left, and
    the next run (disk freed) asks only what is missing."""
    out = tmp_path / "D"
    cache = tmp_path / "cache"
    env = {"UNIVAR_LLAMA_THREADS": "1"}
    args = ["elicit", "--questions", "bundled:valueconsistency", "--model", "smollm2", "--lang", "en",
            "--out", str(out), "--max-tokens", "4", "--concurrency", "1"]
    first = univar(*args, "--limit", "2", cache=cache, env=env)
    assert first.returncode == 0, first.stderr[-3000:]
    two = (out / E.QA_FILE).read_bytes()
    per_row = len(two) // 2
    # room for about two and a half more rows: the third one is cut by the kernel part way
    full = univar(*args, "--limit", "6", cache=cache, env=env, fsize=len(two) + int(2.5 * per_row))
    assert full.returncode == 1
    line = one_error_line(full)
    assert line.startswith("error: cannot append to the log (File too large); the rows already written are kept")
    assert line.endswith(f", {out / E.QA_FILE}")
    data = (out / E.QA_FILE).read_bytes()
    assert data.startswith(two) and data.endswith(b"\n")  # earlier rows intact, no torn record
    rows = E.read_log(out / E.QA_FILE, repair=False)
    assert 2 <= len(rows) < 6 and not (out / E.PARQUET_FILE).exists()

    again = univar(*args, "--limit", "6", cache=cache, env=env)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"{len(rows)} already done" in " ".join(again.stderr.split())
    final = E.read_log(out / E.QA_FILE)
    assert len(final) == 6 == len({(r["qid"], r["model"], r["lang"]) for r in final}) and final[:len(rows)] == rows


# ---------------------------------------------------------------- permission denied

@pytest.fixture
def locked_dir(tmp_path):
    """A folder where this user may not create files. Root ignores file modes, so as root it is /sys,
    where the kernel refuses new files to everyone (the test venv's python lives under /root, out of
    reach of an unprivileged user, so dropping to "nobody" is no option)."""
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o555)
        yield locked
        locked.chmod(0o755)
        return
    try:
        (Path("/sys") / "univar-probe").write_text("x")
    except PermissionError:
        yield Path("/sys")
    else:  # pragma: no cover - a writable /sys
        pytest.fail("/sys accepted a new file; no folder here refuses root")


def test_permission_denied_writing_the_output_is_one_error_line(small_qa, tmp_path, locked_dir):
    data = write_qa(small_qa, tmp_path / "small.csv")
    cache = tmp_path / "cache"
    report = locked_dir / "univar-r.json"
    proc = univar("evaluate", "value-id", str(data), "--encoder", "tfidf", "--k", "5", "--json", str(report),
                  cache=cache)
    assert proc.returncode == 1, proc.stderr[-3000:]
    # the scores were shown, and the embedding count said, before the write failed
    assert one_error_line(proc, alone=False) == f"error: Permission denied, {report}"
    assert "tfidf" in proc.stdout and "QAs embedded" in proc.stderr
    assert not report.exists() and not report.with_name(report.name + ".tmp").exists()

    sub = locked_dir / "univar-sub"
    proc = univar("embed", str(data), "--encoder", "tfidf", "--out", str(sub / "e.npy"), cache=cache)
    assert proc.returncode == 1
    line = one_error_line(proc)
    assert line.startswith("error: ") and line.endswith(f", {sub}") and ("Permission denied" in line
                                                                         or "Operation not permitted" in line)
    assert not sub.exists()


# ---------------------------------------------------------------- Ctrl-C

@pytest.fixture
def sigint_not_ignored():
    """A run started in the background (``make test &``) inherits SIGINT ignored, and univar rightly stays
    deaf to Ctrl-C then. These tests are about Ctrl-C, so they give the process Python's handler back; the
    commands they start inherit SIGINT at its default, as from a terminal."""
    before = signal.getsignal(signal.SIGINT)
    if before == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


def test_ctrl_c_during_embed_says_so_exits_130_and_the_rerun_resumes(big_table, tmp_path, sigint_not_ignored,
                                                                   own_cache):
    cache = own_cache(tmp_path / "cache")
    out = tmp_path / "emb.npy"
    env = {**os.environ, "UNIVAR_CACHE_DIR": str(cache), "UNIVAR_PROGRESS": "0"}
    cmd = [sys.executable, "-m", "univar", "embed", str(big_table), "--encoder", "minilm-int8", "--out", str(out)]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stored = wait_for_rows(proc, cache, 512)  # the first batch is in: interrupt the second
    assert stored == 512, f"{stored} rows before the interrupt"
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 130, stderr[-3000:]
    assert [line for line in stderr.splitlines() if line.strip()] == [INTERRUPTED], stderr[-3000:]
    kept = cache_rows(cache)
    assert kept % 512 == 0 and 512 <= kept < 1024  # whole batches only
    assert not out.exists() and not out.with_name(out.name + ".tmp").exists()

    again = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    unique = len(set(qa_texts(pd.read_parquet(big_table))))
    assert f"{unique - kept} embedded, {kept} from cache" in " ".join(again.stderr.split())  # nothing twice
    assert cache_rows(cache) == unique and np.load(out).shape == (1400, 384)


def test_ctrl_c_in_process_is_the_same_line(capsys, monkeypatch, small_qa, tmp_path, sigint_not_ignored):
    """``main()`` called from Python (a notebook): the SIGINT handler is installed and restored."""
    from univar.cli import main

    calls = []

    def interrupted(*args, **kwargs):
        calls.append(1)
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)  # the handler raises here
        raise AssertionError("SIGINT did not interrupt")

    monkeypatch.setattr("univar.commands.embed.run_embed", interrupted)  # what `univar embed` calls
    data = write_qa(small_qa.head(20), tmp_path / "s.csv")
    handler = signal.getsignal(signal.SIGINT)
    assert main(["embed", str(data), "--encoder", "tfidf", "--out", str(tmp_path / "e.npy")]) == 130
    assert calls and capsys.readouterr().err.strip() == INTERRUPTED
    assert signal.getsignal(signal.SIGINT) is handler


@pytest.fixture
def tiny_disk(tmp_path):
    """A real 64 KiB filesystem (tmpfs), where the machine lets this user mount one; else the test is skipped:
    the RLIMIT_FSIZE tests above cover the same code paths everywhere."""
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], capture_output=True)
    if done.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root); RLIMIT_FSIZE tests cover the paths")
    yield mnt
    subprocess.run(["umount", str(mnt)], check=True)


def test_a_really_full_disk_for_the_npy_output_is_an_error_not_sigbus(small_qa, tmp_path, tiny_disk):
    """The .npy result is a memory map: on a full disk, storing into its sparse pages killed the process
    with SIGBUS (exit 135, no message). Its blocks are now reserved first, which fails with ENOSPC."""
    data = write_qa(small_qa, tmp_path / "small.parquet")
    out = tiny_disk / "emb.npy"
    proc = univar("embed", str(data), "--encoder", "tfidf", "--out", str(out), cache=tmp_path / "cache")
    assert proc.returncode == 1, (proc.returncode, proc.stderr[-3000:])
    line = one_error_line(proc)
    assert "No space left on device" in line and line.endswith(f", {out}"), line
    assert list(tiny_disk.iterdir()) == []  # no partial file left behind


def test_ctrl_c_during_elicit_does_not_wait_for_requests_in_flight(tmp_path, sigint_not_ignored):
    """Ctrl-C while two requests hang (a server that never answers: the injected fault) ends the run at once
    with its line and 130; the finished rows are kept and the re-run asks only the rest. **Bug found**: the
    thread pool was joined at exit, so the process waited out every request in flight (up to --timeout x
    --retries) after saying it was interrupted."""
    import threading

    from helpers.llm import FaultServer

    questions = tmp_path / "q.txt"
    questions.write_text("\n".join(f"Q{i}: should tradition limit freedom?" for i in range(8)) + "\n")
    out = tmp_path / "D"
    env = {**os.environ, "UNIVAR_PROGRESS": "0", "OPENAI_API_KEY": "unused"}
    release = threading.Event()

    def policy(n: int, body: dict) -> str:
        if n >= 2:
            release.wait(120)  # this reply is held until the test lets it go
        return "ok"

    with FaultServer(policy) as srv:
        cmd = [sys.executable, "-m", "univar", "elicit", "-q", str(questions), "-m", "openai/fake", "-l", "en",
               "-o", str(out), "--base-url", srv.url, "--concurrency", "2"]
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # two answered, one held in the policy (the server takes requests one at a time, so the next waits too)
        while len(srv.requests) < 3 and proc.poll() is None:
            time.sleep(0.02)
        time.sleep(0.2)  # let the client send its second request of the pair in flight
        proc.send_signal(signal.SIGINT)
        try:
            _, stderr = proc.communicate(timeout=60)  # the held replies come only after this
        finally:
            release.set()
        assert proc.returncode == 130, stderr[-3000:]
        assert [line for line in stderr.splitlines() if line.strip()] == [INTERRUPTED]
        kept = E.read_log(out / E.QA_FILE)
        assert len(kept) == 2

        again = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "2 already done" in " ".join(again.stderr.split())
    rows = E.read_log(out / E.QA_FILE)
    assert len(rows) == 8 == len({r["qid"] for r in rows}) and rows[:2] == kept
