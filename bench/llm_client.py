"""Elicitation throughput against an OpenAI-compatible server: concurrency N vs one request at a time.

``python bench/llm_client.py --base-url URL --model openai/NAME [--n 16] [--concurrency 4] [--max-tokens 16]``
(or ``--serve`` instead of ``--base-url``: start ``python -m univar.llm.serve`` with SmolLM2 on a free loopback
port for the measurement and stop it after) prints one JSON object: the single-request rate (requests/s,
measured first, in the same run), the rate of ``univar elicit``'s loop at concurrency N, and their ratio. It
also measures the client's own overhead (the elicitation loop vs bare ``httpx`` calls at concurrency 1), so
that a slow server is not blamed on the client or the reverse. Answers are written to a temporary directory
and thrown away.

A benchmark tool, not part of the package: ``bench/elicit_overhead.py`` imports it, and ``make bench`` does
not run it alone (it needs a server or ``--serve``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

import httpx

from univar.elicit import Task, run
from univar.llm import SamplingParams, get_backend

QUESTIONS = ["Is it more important to be honest or to be kind?", "Should people obey laws they believe are unjust?",
             "Is tradition worth keeping when it limits freedom?", "Should wealth be shared more equally?",
             "Is it right to put family before career?", "Should children always respect their elders?"]


def _bare(url: str, model: str, n: int, params: SamplingParams) -> float:
    """Requests/s with plain httpx, one at a time (the server's single-request rate)."""
    with httpx.Client(timeout=300) as client:
        t0 = time.perf_counter()
        for i in range(n):
            question = QUESTIONS[i % len(QUESTIONS)] + f" ({i})"
            body = {"model": model, "messages": [{"role": "user", "content": question}],
                    "temperature": params.temperature, "top_p": params.top_p, "top_k": params.top_k,
                    "max_tokens": params.max_tokens, "seed": i}
            client.post(f"{url.rstrip('/')}/chat/completions", json=body).raise_for_status()
        return n / (time.perf_counter() - t0)


def _loop(spec: str, url: str, n: int, concurrency: int, params: SamplingParams) -> float:
    backend = get_backend(spec, base_url=url, concurrency=concurrency, timeout=300)
    tasks = [Task(f"b{i}", "en", QUESTIONS[i % len(QUESTIONS)] + f" ({i})", None, backend) for i in range(n)]
    with tempfile.TemporaryDirectory() as out:
        summary = run(tasks, out, params, concurrency=concurrency, progress=False, fsync=True)
    backend.close()
    if summary.failed:
        raise RuntimeError(f"{summary.failed} requests failed: {summary.failure_examples}")
    return summary.collected / summary.seconds


def measure(url: str, spec: str, n: int = 16, concurrency: int = 4, max_tokens: int = 16, rounds: int = 3) -> dict:
    """Alternate the three measurements ``rounds`` times and report medians (a shared CPU is noisy)."""
    from statistics import median

    params = SamplingParams(temperature=0.7, max_tokens=max_tokens, seed=0)
    model = spec.split("/", 1)[1]
    _bare(url, model, 1, params)  # warm-up
    single, loop1, loopn = [], [], []
    for _ in range(rounds):
        single.append(_bare(url, model, n, params))
        loop1.append(_loop(spec, url, n, 1, params))
        loopn.append(_loop(spec, url, n, concurrency, params))
    s, l1, ln = median(single), median(loop1), median(loopn)
    return {"requests": n, "rounds": rounds, "max_tokens": max_tokens, "single_request_rate": round(s, 3),
            "elicit_rate_c1": round(l1, 3), f"elicit_rate_c{concurrency}": round(ln, 3),
            "ratio_vs_single": round(ln / s, 3), "client_overhead_c1": round(s / l1 - 1, 4),
            "raw": {"single": [round(x, 3) for x in single], "c1": [round(x, 3) for x in loop1],
                    f"c{concurrency}": [round(x, 3) for x in loopn]}}


@contextlib.contextmanager
def serve_smollm2(threads: int = 1, n_ctx: int = 1024):
    """``python -m univar.llm.serve`` with the SmolLM2 GGUF on 127.0.0.1:<free port>; yields its base URL."""
    from univar.llm import smollm2_path

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cmd = [sys.executable, "-m", "univar.llm.serve", "--model", str(smollm2_path()), "--host", "127.0.0.1",
           "--port", str(port), "--n-ctx", str(n_ctx), "--threads", str(threads), "--alias", "smollm2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise RuntimeError("univar.llm.serve exited (is the elicit extra, xllamacpp, installed?)")
            try:
                if httpx.get(f"{url}/models", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("univar.llm.serve did not start within 120 s")
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--base-url")
    where.add_argument("--serve", action="store_true", help="serve SmolLM2 (univar.llm.serve) for the run")
    parser.add_argument("--threads", type=int, default=int(os.environ.get("UNIVAR_LLAMA_THREADS", "1")))
    parser.add_argument("--model", default="openai/smollm2")
    parser.add_argument("--n", type=int, default=16)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    if args.serve:
        with serve_smollm2(args.threads) as url:
            result = measure(url, args.model, args.n, args.concurrency, args.max_tokens, args.rounds)
    else:
        result = measure(args.base_url, args.model, args.n, args.concurrency, args.max_tokens, args.rounds)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
