"""Nothing a user trained is lost: ``univar train --out``, ``univar.train(out=)`` and ``UniVaR.save`` refuse a
directory that holds a model unless told to overwrite; an overwrite builds the new model beside the old one and
swaps it in only when complete, so a ``kill -9`` during the final save leaves the old model byte for byte; and
``--resume`` on a finished run says so in one line instead of training again."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import univar
from univar.cli import main
from univar.model.config import TrainConfig
from univar.model.train import train_table
from univar.qa import write_qa

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "src" / "univar" / "model" / "shipped"
ARGS = ["--base", "minilm-int8", "--epochs", "2", "--steps-per-epoch", "2", "--batch-size", "16", "--hidden", "32",
        "--lambda", "2", "--patience", "50"]
SETTINGS = dict(base="minilm-int8", epochs=2, steps_per_epoch=2, batch_size=16, hidden=32, lam=2, patience=50)


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder``, by relative path: what "byte-identical afterwards" compares."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def beside(folder: Path) -> list[str]:
    """What sits next to ``folder`` under a name derived from it (a staging folder or a temporary left over)."""
    return sorted(p.name for p in folder.parent.iterdir() if p.name.startswith(folder.name) and p != folder)


def one_error_line(capsys) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    return lines[0]


@pytest.fixture(scope="module")
def data(small_qa, tmp_path_factory, session_cache) -> Path:
    return write_qa(small_qa, tmp_path_factory.mktemp("data") / "small.parquet")


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory, session_cache) -> Path:
    """A model trained by ``univar train`` (seed 0), checkpoint and card included; tests work on copies."""
    out = tmp_path_factory.mktemp("trained") / "m"
    assert main(["train", str(data), "--out", str(out), *ARGS]) == 0
    return out


@pytest.fixture
def copy(trained, tmp_path) -> Path:
    target = tmp_path / "mine"
    shutil.copytree(trained, target)
    return target


def test_cli_train_refuses_a_model_dir_with_one_error_line_and_changes_nothing(data, copy, capsys):
    before = snapshot(copy)
    assert main(["train", str(data), "--out", str(copy), *ARGS, "--seed", "1"]) == 2
    line = one_error_line(capsys)
    assert str(copy) in line and "already holds a univar model" in line and "--overwrite" in line
    assert snapshot(copy) == before and beside(copy) == []


def test_python_train_refuses_before_reading_the_data(copy, tmp_path):
    before = snapshot(copy)
    # the data does not exist: the refusal comes first, so nothing is read (nor embedded, nor trained)
    with pytest.raises(univar.UnivarError, match="already holds a univar model.*overwrite=True"):
        univar.train(tmp_path / "missing.csv", out=copy, progress=False, **SETTINGS)
    assert snapshot(copy) == before and beside(copy) == []
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "thesis.txt").write_text("mine")
    for overwrite in (False, True):  # a folder of someone's files is never a model to replace
        with pytest.raises(univar.UnivarError, match="not a univar model directory"):
            univar.train(tmp_path / "missing.csv", out=notes, overwrite=overwrite, progress=False, **SETTINGS)
    assert snapshot(notes) == {"thesis.txt": b"mine"}


def test_overwrite_replaces_the_model_whole(small_qa, copy):
    old = snapshot(copy)
    (copy / "notes.txt").write_text("of the old model")
    model = univar.train(small_qa, out=copy, overwrite=True, progress=False, **SETTINGS, seed=1)
    new = snapshot(copy)
    assert model.path == copy and new["model.safetensors"] != old["model.safetensors"]
    assert "notes.txt" not in new  # replaced, not merged
    assert {"MODEL_CARD.md", "univar.json", "model.safetensors", "checkpoint/state.safetensors"} <= set(new)
    assert "seed 1" in new["MODEL_CARD.md"].decode() and "seed 0" in old["MODEL_CARD.md"].decode()
    assert beside(copy) == []  # no staging folder or temporary left


def test_save_refuses_a_model_dir_unless_overwrite(trained, tmp_path):
    model = univar.UniVaR.load(trained)
    target = model.save(tmp_path / "first")
    (target / "notes.txt").write_text("of the first copy")
    before = snapshot(target)
    with pytest.raises(univar.UnivarError, match="already holds a univar model; pass overwrite=True"):
        model.save(target)
    assert snapshot(target) == before
    assert model.save(target, overwrite=True) == target
    after = snapshot(target)
    assert "notes.txt" not in after  # replaced, not merged
    assert after == {k: v for k, v in snapshot(trained).items() if not k.startswith("checkpoint/")}
    assert beside(target) == []


def test_resume_on_a_finished_run_says_so_in_one_line_and_reads_nothing(copy, tmp_path, capsys):
    before = snapshot(copy)
    started = time.perf_counter()
    assert main(["train", str(tmp_path / "missing.csv"), "--out", str(copy), *ARGS, "--resume"]) == 0
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    assert len(lines) == 1 and "training already finished at epoch 2" in lines[0] and "nothing to resume" in lines[0]
    assert "trained" not in captured.out and captured.err == ""
    assert time.perf_counter() - started < 10 and snapshot(copy) == before
    result = train_table(None, TrainConfig(**SETTINGS), copy, resume=True, progress=False)  # no table is needed
    assert result.already_finished and result.epochs_run == 2 and snapshot(copy) == before


def test_an_unfinished_run_is_resumed_not_restarted(data, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", str(data), "--out", str(out), *ARGS[:2], *ARGS[4:], "--epochs", "1"]) == 0
    capsys.readouterr()
    assert main(["train", str(data), "--out", str(out), *ARGS]) == 2  # two epochs asked, one done
    assert "unfinished training run (--resume continues it)" in one_error_line(capsys)
    assert main(["train", str(data), "--out", str(out), *ARGS, "--resume", "--overwrite"]) == 2
    assert "pass one of them" in one_error_line(capsys)
    assert main(["train", str(data), "--out", str(out), *ARGS, "--resume"]) == 0
    assert "resumed" in capsys.readouterr().err
    assert len(univar.UniVaR.load(out).config["validation"]["history"]) == 3


def _cache_state(root: Path) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()} if root.exists() else {}


def test_shipped_model_copy_is_refused_fast_and_left_byte_identical(tmp_path, session_cache):
    """The issue's acceptance check, as a user types it: a real process, before any embedding or training."""
    target = tmp_path / "COPY"
    shutil.copytree(SHIPPED, target)
    before, cache = snapshot(target), _cache_state(session_cache)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "univar", "train", "bundled:moralmachine", "--out", str(target)],
                          capture_output=True, text=True, timeout=120, env={**os.environ, "UNIVAR_PROGRESS": "1"})
    assert done.returncode == 2 and done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {target} already holds a univar model"), done.stderr
    assert snapshot(target) == before and beside(target) == []
    assert _cache_state(session_cache) == cache  # nothing embedded
    assert time.perf_counter() - started < 60  # the interpreter and torch starting; no data is read


# --- kill -9 during the final save of an overwrite ------------------------------------------------------------
# The child is a real ``univar train --overwrite``; one function of its final save is wrapped to mark a file
# and wait there (the fault injection: where the kill lands), and the test SIGKILLs it at that moment.
KILL_RUN = """
import importlib, os, sys, time
from pathlib import Path
point = sys.argv[1]
files = importlib.import_module("univar.files")
train_module = importlib.import_module("univar.model.train")
owner, name = {"card": (train_module, "model_card"), "swap": (files, "replace_dir"),
               "swapped": (files, "_exchange")}[point]
real = getattr(owner, name)
def paused(*args, **kwargs):
    result = real(*args, **kwargs) if point == "swapped" else None
    Path(os.environ["UNIVAR_KILL_MARK"]).write_text(point)
    time.sleep(600)
    return result
setattr(owner, name, paused)
from univar.cli import main
sys.exit(main(sys.argv[2:]))
"""


def _killed_at(point: str, argv: list[str], mark: Path) -> None:
    """Run ``univar ARGV`` in a child, SIGKILL it when it reaches ``point`` of the final save."""
    env = {**os.environ, "UNIVAR_PROGRESS": "0", "UNIVAR_KILL_MARK": str(mark)}
    proc = subprocess.Popen([sys.executable, "-c", KILL_RUN, point, *argv], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while not mark.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    if not mark.exists():
        proc.kill()
        raise AssertionError(f"the child never reached {point}: {proc.communicate()[1][-3000:]}")
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL


@pytest.fixture(scope="module")
def replaced(data, trained, tmp_path_factory) -> dict[str, bytes]:
    """The files an uninterrupted ``--overwrite`` run (seed 1) leaves: what a completed swap must hold."""
    out = tmp_path_factory.mktemp("straight") / "mine"
    shutil.copytree(trained, out)
    assert main(["train", str(data), "--out", str(out), *ARGS, "--seed", "1", "--overwrite"]) == 0
    return snapshot(out)


def _weights(files: dict[str, bytes]) -> bytes:
    return files["model.safetensors"]


@pytest.mark.slow
@pytest.mark.parametrize("point", ["card", "swap"])
def test_kill9_during_the_final_save_keeps_the_old_model_and_resume_completes(point, data, copy, replaced, tmp_path,
                                                                              capsys):
    before = snapshot(copy)
    argv = ["train", str(data), "--out", str(copy), *ARGS, "--seed", "1"]
    _killed_at(point, [*argv, "--overwrite"], tmp_path / "mark")
    assert snapshot(copy) == before  # the old model, byte for byte
    assert beside(copy) == ["mine.training"]  # the new one, whole, waits beside it
    assert main(argv) == 2 and "holds a stopped run" in one_error_line(capsys)
    assert main([*argv, "--resume"]) == 0  # finishes the swap; trains nothing more
    now = snapshot(copy)
    assert _weights(now) == _weights(replaced) != _weights(before)
    assert now["univar.json"] == replaced["univar.json"] and beside(copy) == []


@pytest.mark.slow
def test_kill9_just_after_the_swap_leaves_the_new_model_and_never_resumes_the_old(data, copy, replaced, tmp_path,
                                                                                  capsys):
    before = snapshot(copy)
    argv = ["train", str(data), "--out", str(copy), *ARGS, "--seed", "1"]
    _killed_at("swapped", [*argv, "--overwrite"], tmp_path / "mark")
    now = snapshot(copy)
    assert _weights(now) == _weights(replaced) and now["univar.json"] == replaced["univar.json"]
    assert snapshot(copy.with_name("mine.training")) == before  # the old model, not yet deleted
    assert main([*argv, "--resume"]) == 0  # the run is done: it says so, the old model is not swapped back
    assert "training already finished" in capsys.readouterr().out and snapshot(copy) == now
    assert main(argv) == 2 and "already holds a univar model" in one_error_line(capsys)
    assert main([*argv, "--overwrite"]) == 0 and beside(copy) == []  # a later overwrite clears what was left
