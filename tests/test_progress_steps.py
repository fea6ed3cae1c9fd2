"""progress.step: long work with no counter tells a log file that it is alive, and how long it took."""

from __future__ import annotations

import json
import time

import pytest

from univar import progress


@pytest.fixture
def plain(monkeypatch):
    """Progress on, stderr not a terminal (capsys), a plain line at most every 0.05 s."""
    monkeypatch.setenv("UNIVAR_PROGRESS", "1")
    monkeypatch.setenv("UNIVAR_PROGRESS_INTERVAL", "0.05")


def test_step_prints_start_periodic_and_end_lines(plain, capsys):
    with progress.step("fitting UMAP"):
        time.sleep(0.3)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "fitting UMAP ..."
    assert any(line.startswith("fitting UMAP: still running, 0.") for line in lines[1:-1])
    assert lines[-1].startswith("fitting UMAP: done in ") and lines[-1].endswith("s")
    assert len(lines) >= 3


def test_step_that_raises_says_so_and_the_error_propagates(plain, capsys):
    with pytest.raises(ValueError, match="bad input"):
        with progress.step("bootstrap"):
            raise ValueError("bad input")
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "bootstrap ..."
    assert lines[-1].startswith("bootstrap: failed after ") and "(ValueError)" in lines[-1]
    assert not any("done in" in line for line in lines)


def test_step_is_silent_when_progress_is_off(monkeypatch, capsys):
    monkeypatch.setenv("UNIVAR_PROGRESS", "0")
    monkeypatch.setenv("UNIVAR_PROGRESS_INTERVAL", "0.01")
    with progress.step("Mantel test"):
        time.sleep(0.05)
    assert capsys.readouterr().err == ""


def test_step_writes_json_events_even_when_silent(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("UNIVAR_PROGRESS", "0")
    monkeypatch.setenv("UNIVAR_PROGRESS_INTERVAL", "0.05")
    log = tmp_path / "run.jsonl"
    with progress.log_to(log):
        with progress.step("explain"):
            time.sleep(0.3)
        with pytest.raises(RuntimeError):
            with progress.step("broken"):
                raise RuntimeError("no")
    events = [json.loads(line) for line in log.read_text().splitlines()]
    kinds = [(e["event"], e["stage"]) for e in events]
    assert kinds[0] == ("step_start", "explain")
    assert ("step_progress", "explain") in kinds
    end = next(e for e in events if e["event"] == "step_end" and e["stage"] == "explain")
    assert end["ok"] is True and end["error"] is None and end["elapsed_s"] >= 0.3
    broken = events[-1]
    assert broken["event"] == "step_end" and broken["stage"] == "broken"
    assert broken["ok"] is False and broken["error"] == "RuntimeError"
    assert capsys.readouterr().err == ""


def test_no_heartbeat_after_the_step_ends(plain, capsys):
    with progress.step("quick"):
        pass
    time.sleep(0.2)  # a thread left running would print "still running" now
    lines = capsys.readouterr().err.splitlines()
    assert lines == ["quick ...", lines[1]] and lines[1].startswith("quick: done in 0.")


def test_span_reads_like_a_person_says_it():
    assert progress._span(0.42) == "0.4s"
    assert progress._span(12.2) == "12s"
    assert progress._span(90) == "1m30s"
    assert progress._span(2 * 3600 + 5 * 60 + 3) == "2h05m"


def test_step_on_a_terminal_ends_with_one_done_line(monkeypatch):
    import io

    from rich.console import Console

    monkeypatch.setenv("UNIVAR_PROGRESS", "1")
    buffer = io.StringIO()
    monkeypatch.setattr(progress, "stderr", Console(file=buffer, force_terminal=True, width=100))
    with progress.step("fitting UMAP"):
        time.sleep(0.1)
    text = buffer.getvalue()
    assert "fitting UMAP: done in 0." in text and "still running" not in text


def test_a_command_run_holds_end_notes_until_it_ends():
    told = []

    def tell() -> None:
        told.append("once")

    assert progress.at_end(tell) is False  # outside a run: nothing held, the caller tells at once
    with progress.command_run():
        assert progress.at_end(tell) and progress.at_end(tell)
        assert told == []
    assert told == ["once"]
