"""docs/scale.md quotes measured numbers: each must be what bench/results/*.json holds (re-running a benchmark
without updating the page fails here), and bench/gpu_check.sh must run its steps (a CPU dry run)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from univar.qa import write_qa

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "scale.md").read_text(encoding="utf-8")


def row(bench: str, figure_start: str) -> dict:
    rows = json.loads((ROOT / "bench" / "results" / f"{bench}.json").read_text())["rows"]
    found = [r for r in rows if r["figure"].startswith(figure_start)]
    assert len(found) == 1, (bench, figure_start, [r["figure"] for r in rows])
    return found[0]


def quoted() -> list[str]:
    """Every measured number the page quotes, formatted as it quotes it, from the JSON results."""
    elicit = row("scale_inputs", "elicit loop")
    small, big = row("scale_inputs", "embedding cache writes / np.save, vectors/s (384-d, chunks of 512)"), \
        row("scale_inputs", "embedding cache writes / np.save, vectors/s (384-d, chunks of 8,192)")
    sampler = row("scale_inputs", "ViewSampler")
    tokens = row("scale_inputs", "lambda-20 views")
    pieces = {name: row("scale_inputs", f"word pieces per QA ({name}")["value"]
              for name in ("valuebench", "fulcra", "local-llms")}
    params = row("scale_inputs", "MiniLM-L6 parameters")["value"]
    knn = row("knn_scaling", "k-NN 1,000,000")
    embed = row("embed_speed", "univar embed speed")["value"]
    int8 = row("embed_speed", "minilm-int8 speed")["ratio"]
    set5 = row("view_cost", "set mode ms/view at lambda 5")["value"]
    per_view_tokens = 20 * pieces["valuebench"] * tokens["value"]
    return [
        f"{elicit['value']:,.0f} requests/s", f"({elicit['baseline']:,.0f} requests/s)",
        f"{100 * elicit['ratio']:.1f}%",
        f"{1000 / elicit['value']:.1f} ms", f"at least {1e6 / elicit['value'] / 60:.0f} minutes",
        f"{small['value']:,.0f} vectors/s in chunks of 512", f"{big['value']:,.0f}\n  vectors/s in chunks of 8,192",
        f"{big['baseline']:,.0f} vectors/s", f"{1e6 / big['value']:.0f} s of commits",
        f"{sampler['value']:,.0f} views/s", f"{sampler['ratio']:.0f}x",
        f"{tokens['value']:,.0f} views/s", f"about {round(per_view_tokens, -4):,.0f} word pieces/s",
        f"about {per_view_tokens / 8192:.0f} views of 8,192 tokens",
        f"{pieces['valuebench']:.0f} (ValueBench), {pieces['fulcra']:.0f} (FULCRA) or {pieces['local-llms']:.0f}",
        f"{params:.1f}M parameters", f"({params * 4:.0f} MB)",
        f"{knn['value']:,.0f} s on 2 cores", f"{knn['baseline']:,.0f} s for scikit-learn",
        f"{1000 * knn['value'] / 200_000:.1f} ms per", f"{embed:.0f} texts/s", f"{1e6 / embed / 3600:.1f} hours",
        f"{int8:.1f}x faster (about {1e6 / embed / int8 / 3600:.1f} hours)",
        f"{set5:.2f} ms per view", f"about {391 * 512 * set5 / 1000:.0f} s",
        f"{row('view_cost', 'concat mode ms/view at lambda 20')['value']:,.0f} ms",
        f"{row('view_cost', 'concat mode ms/view at lambda 5')['value']:,.0f} ms",
        f"{100 * row('elicit_overhead', 'elicit client overhead / server time, concurrency 1')['ratio']:.1f}%",
        f"{100 * row('elicit_overhead', 'elicit client overhead / server time, concurrency 4')['ratio']:.1f}%",
        f"{row('elicit_overhead', 'elicit rate at concurrency 4')['ratio']:.2f}x",
        # memory.json's two figures are fig markers in the page, kept fresh by scripts/sync_docs.py --check
    ]


@pytest.mark.parametrize("text", quoted())
def test_the_page_quotes_the_measured_number(text):
    assert text in DOC, f"docs/scale.md should say {text!r} (bench/results/*.json)"


def test_the_epoch_length_docs_scale_quotes_is_the_trainers():
    """docs/scale.md: an epoch over 3/5 of 1M QAs is 391 steps at batch 256, lambda 5 (one process)."""
    from univar.model.train import epoch_steps

    assert epoch_steps(600_000, 256, 5) == 391
    assert epoch_steps(600_000, 256, 5, world_size=4) == 98 and epoch_steps(100, 256, 5) == 50


@pytest.mark.slow
def test_gpu_check_dry_run_on_the_cpu(small_qa, tiny_base, tmp_path):
    data = write_qa(small_qa, tmp_path / "qa.parquet")
    env = {**os.environ, "PY": os.sys.executable, "GPU_CHECK_DEVICE": "cpu", "GPU_CHECK_BASE": str(tiny_base),
           "GPU_CHECK_DATA": str(data), "GPU_CHECK_STEPS": "2", "GPU_CHECK_TEXTS": "32", "GPU_CHECK_MAX_LENGTH": "64"}
    proc = subprocess.run(["bash", str(ROOT / "bench" / "gpu_check.sh")], env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "epoch events logged: 3" in proc.stdout and '"device": "cpu"' in proc.stdout
    assert "texts/s" in proc.stdout and proc.stdout.rstrip().endswith("gpu check: ok")


def test_gpu_check_without_a_gpu_says_so(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    proc = subprocess.run(["bash", str(ROOT / "bench" / "gpu_check.sh")], env={**os.environ, "PY": os.sys.executable},
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout == "no GPU\n"
