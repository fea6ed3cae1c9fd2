"""``python -m univar.llm.serve --model FILE.gguf --port 8000``: one GGUF model as an OpenAI-compatible server.

Why: ``univar elicit --model openai/<name> --base-url http://127.0.0.1:8000/v1`` then talks to a local model over
real HTTP, the way it talks to vLLM or any fleet; the tests and bench/llm_client.py start it on a free loopback
port. It is llama.cpp's own server (``llama-server``), run by xllamacpp in this process until SIGTERM or Ctrl-C.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from univar.errors import UnivarError
from univar.llm import smollm2_path
from univar.llm.llamacpp import start_server


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGTERM/SIGINT; prints ``serving <url>`` once the model is loaded."""
    parser = argparse.ArgumentParser(prog="python -m univar.llm.serve", description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a .gguf file (`smollm2` for the bundled SmolLM2)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0: a free port")
    parser.add_argument("--n-ctx", type=int, default=2048)
    parser.add_argument("--threads", type=int, default=None, help="default: half the cores, at most 8")
    parser.add_argument("--alias", default=None, help="the model name the server reports")
    args = parser.parse_args(argv)
    path = args.model
    if path == "smollm2":
        path, args.alias = smollm2_path(), args.alias or "smollm2"
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        server = start_server(path, args.n_ctx, args.threads, args.host, args.port, args.alias)
    except UnivarError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"serving {server.listening_address}/v1", flush=True)
    stop.wait()
    del server
    return 0


if __name__ == "__main__":
    sys.exit(main())
