"""``llamacpp/<file.gguf>``: a GGUF model run by llama.cpp inside this process (xllamacpp's embedded server).

Why in process: no server to start for small local models (the bundled SmolLM2). Why xllamacpp: it wraps
llama.cpp's own server (the same chat templates, sampling and context checks as ``llama-server``) and ships
prebuilt CPU wheels, where llama-cpp-python builds from source for minutes. Requests go through
``Server.handle_chat_completions`` (OpenAI JSON in, OpenAI JSON out); the server also listens on a free loopback
port, which :mod:`univar.llm.serve` uses to offer the model to other processes. One model uses every thread it is
given, so requests are serialised with a lock and loaded models are cached per (path, context size) for the life
of the process.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from univar.errors import UnivarError
from univar.llm.base import BackendError, ChatBackend, ChatResult, Message, RetryPolicy, SamplingParams

_MODELS: dict[tuple[str, int], object] = {}
_LOAD_LOCK = threading.Lock()
INSTALL_HINT = "llamacpp/ needs xllamacpp: pip install 'univar[elicit]' (or pip install xllamacpp)"


def threads() -> int:
    """CPU threads for llama.cpp: ``$UNIVAR_LLAMA_THREADS``, else half the usable cores (at most 8).

    Why not every core: llama.cpp's threads spin-wait, so on a CPU shared with other jobs using all cores
    collapses throughput (measured on 2 busy cores: 1 thread 42.5 tokens/s, 2 threads 1.7 tokens/s).
    """
    if os.environ.get("UNIVAR_LLAMA_THREADS"):
        return max(1, int(os.environ["UNIVAR_LLAMA_THREADS"]))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(8, cores // 2))


def start_server(path: str | Path, n_ctx: int = 2048, n_threads: int | None = None, host: str = "127.0.0.1",
                 port: int = 0, alias: str | None = None):
    """A llama.cpp server for one GGUF file, in this process (``port=0``: a free port)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise UnivarError(f"GGUF file not found: {path}")
    try:
        import xllamacpp
    except ImportError:
        raise UnivarError(INSTALL_HINT) from None
    params = xllamacpp.CommonParams()
    params.model.path = str(path)
    params.n_ctx, params.n_parallel, params.warmup = n_ctx, 1, False
    params.cpuparams.n_threads = params.cpuparams_batch.n_threads = n_threads or threads()
    params.hostnames, params.port, params.verbosity = [host], port, -1  # -1: llama.cpp's log stays quiet
    if alias:
        params.model_alias = alias
    try:
        return xllamacpp.Server(params)
    except (ValueError, RuntimeError) as exc:
        raise UnivarError(f"cannot load GGUF model {path}: {exc}") from None


def load_llama(path: str | Path, n_ctx: int = 2048):
    """Load (once per process) a GGUF model into an in-process llama.cpp server."""
    key = (str(Path(path).expanduser().resolve()), n_ctx)
    with _LOAD_LOCK:
        if key not in _MODELS:
            _MODELS[key] = start_server(path, n_ctx)
        return _MODELS[key]


class LlamaCppBackend(ChatBackend):
    """Chat completions from llama.cpp's server code (the model's own chat template), without HTTP."""

    provider = "llamacpp"
    max_concurrency = 1

    def __init__(self, spec: str, name: str, path: str | Path, policy: RetryPolicy | None = None, n_ctx: int = 2048):
        super().__init__(spec, name, policy)
        self.path = Path(path)
        self.llama = load_llama(path, n_ctx)
        self._lock = threading.Lock()

    def _chat(self, messages: list[Message], params: SamplingParams) -> ChatResult:
        request = dict(messages=messages, temperature=params.temperature, top_p=params.top_p,
                       max_tokens=params.max_tokens)
        if params.top_k is not None:
            request["top_k"] = params.top_k
        if params.seed is not None:
            request["seed"] = params.seed
        with self._lock:
            out = self.llama.handle_chat_completions(request)
        if "error" in out:  # e.g. a prompt longer than the context: the server's 400, not worth a retry
            raise BackendError(f"llama.cpp: {out['error'].get('message', out['error'])}")
        choice = out["choices"][0]
        return ChatResult(text=choice["message"].get("content") or "", finish_reason=choice.get("finish_reason"),
                          usage=out.get("usage") or {})

    def describe(self) -> dict:
        return {"backend": self.spec, "file": self.path.name}
