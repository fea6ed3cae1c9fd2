"""Embedding throughput on the GPU(s) against the CPU, measured in the same run: ``univar.encoders.embed``
with MiniLM (no cache) on real ValueBench QAs, repeated to ``--texts``. On a GPU the encoder takes large
batches (``GPU_BATCH``) and, with several GPUs, sentence-transformers' multi-process pool over all of them.

Without a GPU it prints "no GPU" and exits 0 (``make bench`` runs it everywhere). ``--device cpu`` runs the
same code on the CPU with nothing written: a dry run of the script itself (tests/docs/test_scale_docs.py).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from common import report  # noqa: E402


def rate(device: str, texts: list[str]) -> float:
    """Texts per second of one ``embed`` call (after a warm-up batch) on ``device``."""
    from univar.encoders import MiniLMEncoder, embed

    encoder = MiniLMEncoder(device=device)
    embed(texts[:64], encoder, cache=False, progress=False)  # loads the weights, warms the kernels
    start = time.perf_counter()
    embed(texts, encoder, cache=False, progress=False)
    return len(texts) / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu for a dry run")
    parser.add_argument("--texts", type=int, default=50_000, help="texts embedded on the GPU")
    parser.add_argument("--cpu-texts", type=int, default=2_000, help="texts embedded on the CPU (the baseline)")
    args = parser.parse_args()

    import torch

    from univar.device import gpu_count
    from univar.qa import qa_texts, read_qa

    if args.device != "cpu" and not torch.cuda.is_available():
        print("no GPU")
        return 0
    corpus = list(dict.fromkeys(qa_texts(read_qa("bundled:valuebench"))))
    # distinct texts (a suffix per copy): embed de-duplicates, and a repeat must cost as much as the first
    texts = [f"{t} [{i // len(corpus)}]" for i, t in zip(range(args.texts), corpus * (args.texts // len(corpus) + 1))]
    cpu = rate("cpu", texts[: args.cpu_texts])
    fast = rate(args.device, texts)
    gpus = gpu_count()
    print(f"{args.device}: {fast:,.0f} texts/s on {gpus} GPU(s); cpu: {cpu:,.0f} texts/s; ratio {fast / cpu:.1f}")
    if args.device == "cpu":
        return 0
    report("gpu_throughput", [
        {"figure": f"embed texts/s on {gpus} GPU(s) / on the CPU (minilm)", "value": fast, "baseline": cpu,
         "ratio": fast / cpu, "target": ">= 10", "ok": fast / cpu >= 10},
    ])
    return 0


if __name__ == "__main__":
    sys.exit(main())
