"""Long commands run unattended (``nohup``, ``> log 2>&1``): plain progress lines at most every interval
instead of an invisible bar, one line per training epoch, and ``--log FILE.jsonl`` with the same events."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from univar import progress
from univar.qa import qa_texts, write_qa


def _events(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_plain_lines_and_json_ticks_keep_the_interval(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("UNIVAR_PROGRESS", "1")
    monkeypatch.setenv("UNIVAR_PROGRESS_INTERVAL", "0.2")
    log = tmp_path / "run.jsonl"
    with progress.log_to(log), progress.bar(60, "work", "items") as advance:
        for _ in range(60):  # 60 x 20 ms: at least 1.2 s of work, whatever else the machine does
            time.sleep(0.02)
            advance(1)
    lines = capsys.readouterr().err.splitlines()  # capsys: stderr is not a terminal
    events = _events(log)
    ticks = [e for e in events if e["event"] == "progress"]
    assert [e["event"] for e in events] == ["stage_start", *["progress"] * len(ticks), "stage_end"]
    assert len(ticks) >= 2
    gaps = [b["elapsed_s"] - a["elapsed_s"] for a, b in zip(events, events[1:-1])]
    assert all(gap >= 0.2 - 1e-3 for gap in gaps)  # never more often than the interval
    assert len(lines) == len(events)  # one plain line per event
    assert lines[0] == "work: 0/60 items (0%)"
    assert all(line.startswith("work: ") and "eta" in line for line in lines[1:-1])
    assert lines[-1].startswith("work: 60/60 items (100%)") and lines[-1].endswith("done")
    assert events[-1]["done"] == 60 and events[-1]["total"] == 60 and events[-1]["stage"] == "work"


def test_a_fast_stage_says_only_start_and_end_at_the_default_interval(monkeypatch, capsys):
    monkeypatch.setenv("UNIVAR_PROGRESS", "1")
    monkeypatch.delenv("UNIVAR_PROGRESS_INTERVAL", raising=False)
    assert progress.interval() == 30
    with progress.bar(10_000, "quick") as advance:
        for _ in range(10_000):
            advance(1)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2 and lines[0] == "quick: 0/10,000 (0%)" and lines[1].endswith("done")


def test_progress_off_writes_nothing_but_the_log_still_gets_events(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("UNIVAR_PROGRESS", "0")
    with progress.log_to(tmp_path / "l.jsonl"), progress.bar(5, "quiet") as advance:
        advance(5)
    assert capsys.readouterr().err == ""
    assert [e["event"] for e in _events(tmp_path / "l.jsonl")] == ["stage_start", "stage_end"]


@pytest.mark.slow
def test_embed_to_a_file_shows_lines_while_it_works_and_writes_the_json_log(valuebench, tmp_path):
    """``univar embed ... > log 2>&1`` of uncached QAs: lines while it works, not only at the end (the
    interval is 0 here so that each of the three chunks reports; its timing is checked above)."""
    table = valuebench.drop_duplicates("answer").head(1100)
    data = write_qa(table, tmp_path / "qa.parquet")
    env = {**os.environ, "UNIVAR_PROGRESS": "1", "UNIVAR_PROGRESS_INTERVAL": "0",
           "UNIVAR_CACHE_DIR": str(tmp_path / "fresh-cache")}
    with (tmp_path / "log").open("w") as fh:
        proc = subprocess.run([sys.executable, "-m", "univar", "embed", str(data), "--encoder", "tfidf",
                               "--device", "cpu", "--out", str(tmp_path / "v.npy"),
                               "--log", str(tmp_path / "e.jsonl")],
                              env=env, stdout=fh, stderr=subprocess.STDOUT, timeout=300)
    assert proc.returncode == 0
    text = (tmp_path / "log").read_text()
    assert "\r" not in text and "\x1b" not in text  # no bar redrawing, no colour codes in a file
    lines = [line for line in text.splitlines() if line.startswith("embed tfidf:")]
    n = len(set(qa_texts(table)))
    assert lines == [f"embed tfidf: 0/{n:,} texts (0%)", *lines[1:3], lines[-1]] and len(lines) == 4
    assert lines[1].startswith(f"embed tfidf: 512/{n:,} texts") and "eta" in lines[1]
    assert lines[2].startswith(f"embed tfidf: 1,024/{n:,} texts") and "eta" in lines[2]
    assert lines[-1].startswith(f"embed tfidf: {n:,}/{n:,} texts (100%)") and lines[-1].endswith("done")
    events = _events(tmp_path / "e.jsonl")
    assert [e["event"] for e in events] == ["stage_start", "progress", "progress", "stage_end", "embed_end"]
    assert [e["done"] for e in events[:4]] == [0, 512, 1024, n]
    assert events[-1]["embedded"] == n and events[-1]["qas"] == len(table)


@pytest.mark.slow
def test_train_concat_on_cpu_prints_epoch_lines_and_logs_them(small_qa, tiny_base, tmp_path):
    data = write_qa(small_qa, tmp_path / "qa.parquet")
    log = tmp_path / "train.jsonl"
    proc = subprocess.run([sys.executable, "-m", "univar", "train", str(data), "--mode", "concat", "--device", "cpu",
                           "--base", str(tiny_base), "--lambda", "2", "--epochs", "2", "--batch-size", "4",
                           "--steps-per-epoch", "3", "--micro-batch", "2", "--max-length", "48", "--patience", "50",
                           "--out", str(tmp_path / "m"), "--log", str(log)],
                          env={**os.environ, "UNIVAR_PROGRESS": "1"}, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    epoch_lines = [line for line in proc.stderr.splitlines() if line.startswith("epoch ")]
    assert len(epoch_lines) == 3  # epoch 0 (the base) and two trained epochs
    for line in epoch_lines[1:]:
        assert "loss " in line and "val k-NN acc " in line and line.endswith("s")
    assert any(line.startswith("train concat λ=2: 0/6 steps") for line in proc.stderr.splitlines())
    events = _events(log)
    start = next(e for e in events if e["event"] == "train_start")
    assert start["device"] == "cpu" and start["mode"] == "concat" and start["steps_per_epoch"] == 3
    epochs = [e for e in events if e["event"] == "epoch"]
    assert [e["epoch"] for e in epochs] == [0, 1, 2]
    assert all(e["loss"] > 0 and 0 <= e["val_knn_acc"] <= 1 and e["seconds"] > 0 for e in epochs[1:])
    assert events[-1]["event"] == "train_end" and events[-1]["epochs_run"] == 2


def test_elicit_log_has_progress_and_the_summary(tmp_path, monkeypatch, capsys):
    from helpers.llm import FaultServer  # an OpenAI-compatible loopback server (here it never fails)

    from univar.cli import main

    monkeypatch.setenv("OPENAI_API_KEY", "unused")
    questions = tmp_path / "q.txt"
    questions.write_text("\n".join(f"Q{i}: is it right to put family before career?" for i in range(12)) + "\n")
    log = tmp_path / "elicit.jsonl"
    with FaultServer() as srv:
        code = main(["elicit", "-q", str(questions), "-m", "openai/fake", "--base-url", srv.url, "-l", "en",
                     "-c", "3", "--out", str(tmp_path / "run"), "--log", str(log)])
    assert code == 0, capsys.readouterr().err
    events = _events(log)
    assert events[0]["event"] == "stage_start" and events[0]["total"] == 12
    assert [e["event"] for e in events[-2:]] == ["stage_end", "elicit_end"]
    assert events[-2]["done"] == 12 and events[-1]["collected"] == 12 and events[-1]["complete"] is True
