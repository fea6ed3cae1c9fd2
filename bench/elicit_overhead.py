"""Elicitation against a real local server (``python -m univar.llm.serve`` with SmolLM2 on loopback):
``univar elicit``'s loop at concurrency 1 and 4 against bare single httpx requests, measured in the same run
(``bench/llm_client.py``'s ``measure``, medians of alternating rounds).

Figures: client overhead = (server-only time / elicit time) - 1 at concurrency 1 and 4, as a fraction of
server time (target < 10%); throughput at concurrency 4 as a ratio to the server's single-request rate
(llama.cpp's server decodes one request at a time, so about 1.0 is the ceiling here; a vLLM fleet batches).
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from common import report  # noqa: E402


def main() -> None:
    from llm_client import measure, serve_smollm2

    threads = int(os.environ.get("UNIVAR_LLAMA_THREADS", "1"))
    with serve_smollm2(threads) as url:
        r = measure(url, "openai/smollm2", n=16, concurrency=4, max_tokens=16, rounds=3)
    print(r, flush=True)
    single, c1, c4 = r["single_request_rate"], r["elicit_rate_c1"], r["elicit_rate_c4"]
    over1, over4 = single / c1 - 1, single / c4 - 1
    report("elicit_overhead", [
        {"figure": "elicit client overhead / server time, concurrency 1", "value": c1, "baseline": single,
         "ratio": over1, "target": "< 0.10", "ok": over1 < 0.10},
        {"figure": "elicit client overhead / server time, concurrency 4", "value": c4, "baseline": single,
         "ratio": over4, "target": "< 0.10", "ok": over4 < 0.10},
        {"figure": "elicit rate at concurrency 4 / single-request rate", "value": c4, "baseline": single,
         "ratio": c4 / single, "target": "", "ok": None},
    ])


if __name__ == "__main__":
    main()
