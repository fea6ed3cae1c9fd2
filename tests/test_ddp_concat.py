"""Concat mode data-parallel: two torchrun processes (gloo on CPU) on a tiny base agree on the weights after a
step, and ``torchrun -m univar train --mode concat`` trains and writes a two-process model directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from univar.qa import write_qa

pytestmark = pytest.mark.slow
HERE = Path(__file__).resolve().parent
TORCHRUN = str(Path(sys.executable).with_name("torchrun"))
ENV = dict(os.environ, OMP_NUM_THREADS="1", UNIVAR_PROGRESS="0")


def _torchrun(args: list[str], timeout: int = 300) -> subprocess.CompletedProcess:
    proc = subprocess.run([TORCHRUN, "--standalone", "--nproc_per_node", "2", *args], env=ENV, capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc


def test_two_ranks_agree_on_the_weights_after_a_concat_step(small_qa, tiny_base, tmp_path):
    data = write_qa(small_qa, tmp_path / "qa.parquet")
    _torchrun([str(HERE / "ddp_concat_step.py"), str(tiny_base), str(data), str(tmp_path)])
    g0, g1 = load_file(str(tmp_path / "grad0.safetensors")), load_file(str(tmp_path / "grad1.safetensors"))
    assert set(g0) == set(g1) and len(g0) > 10
    assert any(not torch.allclose(g0[k], g1[k]) for k in g0)  # each rank's own views, its own gradient
    w0, w1 = load_file(str(tmp_path / "weights0.safetensors")), load_file(str(tmp_path / "weights1.safetensors"))
    assert set(w0) == set(w1)
    assert all(torch.equal(w0[k], w1[k]) for k in w0)  # broadcast + averaged gradients: bit-identical ranks
    start = load_file(str(tiny_base / "model.safetensors"))
    trained = {k.split(".model.", 1)[-1].split(".auto_model.", 1)[-1]: v for k, v in w0.items()}  # ST 6 / older
    assert set(start) <= set(trained)
    moved = [k for k in start if not torch.equal(start[k], trained[k])]
    assert len(moved) > len(start) // 2  # the step changed the weights


def test_torchrun_univar_train_concat(small_qa, tiny_base, tmp_path):
    data = write_qa(small_qa, tmp_path / "qa.parquet")
    out = tmp_path / "model"
    _torchrun(["-m", "univar", "train", str(data), "--mode", "concat", "--base", str(tiny_base), "--device", "cpu",
               "--lambda", "2", "--epochs", "2", "--batch-size", "4", "--steps-per-epoch", "2", "--micro-batch", "2",
               "--max-length", "48", "--patience", "50", "--out", str(out)])
    config = json.loads((out / "univar.json").read_text())
    assert config["mode"] == "concat" and config["training"]["world_size"] == 2
    assert config["training"]["device"] == "cpu"
    losses = [h["loss"] for h in config["validation"]["history"][1:]]
    assert len(losses) == 2 and all(loss > 0 for loss in losses)
    assert (out / "transformer" / "model.safetensors").exists()
