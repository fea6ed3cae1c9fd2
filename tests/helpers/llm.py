"""Shared helpers for the elicitation tests: a fault-injecting OpenAI-compatible server on loopback, and
a llama.cpp server (``python -m univar.llm.serve``) started and stopped around a test.

The fault server exists only to inject failures a real server produces rarely (429, 500, timeouts, broken
JSON, truncated bodies); the answers themselves come from real models in the other tests.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FaultServer:
    """OpenAI-compatible ``/v1/chat/completions`` whose reply per request is chosen by ``policy``.

    ``policy(n, body) -> mode`` gets the request number (0-based) and the JSON body; modes: ``ok``, ``429``,
    ``500``, ``503``, ``400``, ``401``, ``timeout`` (sleeps ``slow`` seconds), ``malformed`` (200 + broken
    JSON), ``truncated`` (Content-Length larger than the body, then the connection closes), ``nocontent``
    (200 + JSON without choices). ``ok`` answers ``"answer to: <question>"`` after ``delay`` seconds.
    """

    def __init__(self, policy: Callable[[int, dict], str] | None = None, delay: float = 0.0, slow: float = 3.0):
        self.policy = policy or (lambda n, body: "ok")
        self.delay, self.slow = delay, slow
        self.requests: list[dict] = []
        self.modes: list[str] = []
        self.headers: list[dict] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                with server.lock:
                    n = len(server.requests)
                    server.requests.append(body)
                    server.headers.append(dict(self.headers))
                    mode = server.policy(n, body)
                    server.modes.append(mode)
                question = body.get("messages", [{}])[-1].get("content", "")
                if mode == "timeout":
                    time.sleep(server.slow)
                    mode = "ok"
                if mode in ("429", "500", "503", "400", "401"):
                    payload = json.dumps({"error": {"message": f"injected {mode}",
                                                    "key": self.headers.get("Authorization", "")}}).encode()
                    self.send_response(int(mode))
                    if mode == "429":
                        self.send_header("Retry-After", "0")
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                if mode == "truncated":
                    payload = b'{"choices": [{"message": {"content": "cut'
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload) + 200))
                    self.end_headers()
                    self.wfile.write(payload)
                    self.wfile.flush()
                    self.close_connection = True
                    return
                if mode == "malformed":
                    payload = b'{"choices": [ this is not json'
                elif mode == "nocontent":
                    payload = json.dumps({"object": "chat.completion", "choices": []}).encode()
                else:
                    if server.delay:
                        time.sleep(server.delay)
                    message = {"role": "assistant", "content": f"answer to: {question}"}
                    payload = json.dumps({"id": f"c{n}", "object": "chat.completion",
                                          "choices": [{"index": 0, "finish_reason": "stop", "message": message}],
                                          "usage": {"prompt_tokens": 1, "completion_tokens": 3}}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        class Quiet(ThreadingHTTPServer):
            def handle_error(self, request, client_address):  # a client that gave up (timeout) is expected
                pass

        self.httpd = Quiet(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "FaultServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def fault_server():
    """Factory: ``with fault_server(policy) as srv: ...``."""
    return FaultServer


def smollm2_gguf() -> Path:
    from univar.llm import smollm2_path

    return smollm2_path()


def have_llama_cpp() -> bool:
    try:
        import xllamacpp  # noqa: F401
    except ImportError:
        return False
    return True


class LlamaServer:
    """``python -m univar.llm.serve`` (llama.cpp) with SmolLM2 on 127.0.0.1:<free port>; terminated on exit."""

    def __init__(self, n_ctx: int = 1024, threads: int = 2):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.cmd = [PY, "-m", "univar.llm.serve", "--model", str(smollm2_gguf()), "--host", "127.0.0.1",
                    "--port", str(self.port), "--n-ctx", str(n_ctx), "--threads", str(threads), "--alias", "smollm2"]
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> "LlamaServer":
        import httpx

        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     env={**os.environ, "HF_HUB_OFFLINE": "1"})
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("univar.llm.serve exited: " + self.proc.stderr.read().decode()[-2000:])
            try:
                if httpx.get(f"{self.url}/models", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        self.__exit__()
        raise RuntimeError("univar.llm.serve did not come up in 90 s")

    def __exit__(self, *exc) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
