"""``llamacpp/<file.gguf>``: a GGUF model run by llama-cpp-python inside this process.

Why in process: no server to start for small local models (the bundled SmolLM2). One ``Llama`` object is
not thread-safe and already uses every core it is given, so requests are serialised with a lock and
loaded models are cached per (path, context size) for the life of the process.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from univar.errors import UnivarError
from univar.llm.base import BackendError, ChatBackend, ChatResult, Message, RetryPolicy, SamplingParams

_MODELS: dict[tuple[str, int], object] = {}
_LOAD_LOCK = threading.Lock()


def threads() -> int:
    """CPU threads for llama.cpp: ``$UNIVAR_LLAMA_THREADS``, else half the usable cores (at most 8).

    Why not every core: llama.cpp's threads spin-wait, so on a CPU shared with other jobs using all cores
    collapses throughput (measured on 2 busy cores: 1 thread 42.5 tokens/s, 2 threads 1.7 tokens/s).
    """
    if os.environ.get("UNIVAR_LLAMA_THREADS"):
        return max(1, int(os.environ["UNIVAR_LLAMA_THREADS"]))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(8, cores // 2))


def load_llama(path: str | Path, n_ctx: int = 2048):
    """Load (once per process) a GGUF model with llama-cpp-python."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise UnivarError(f"GGUF file not found: {path}")
    key = (str(path.resolve()), n_ctx)
    with _LOAD_LOCK:
        if key not in _MODELS:
            try:
                from llama_cpp import Llama
            except ImportError:
                raise UnivarError("llamacpp/ needs llama-cpp-python: "
                                  "CMAKE_ARGS=\"-DGGML_NATIVE=OFF\" pip install llama-cpp-python") from None
            try:
                _MODELS[key] = Llama(model_path=str(path), n_ctx=n_ctx, n_threads=threads(), verbose=False)
            except (ValueError, RuntimeError) as exc:
                raise UnivarError(f"cannot load GGUF model {path}: {exc}") from None
        return _MODELS[key]


class LlamaCppBackend(ChatBackend):
    """Chat completions from ``Llama.create_chat_completion`` (the model's own chat template)."""

    provider = "llamacpp"
    max_concurrency = 1

    def __init__(self, spec: str, name: str, path: str | Path, policy: RetryPolicy | None = None, n_ctx: int = 2048):
        super().__init__(spec, name, policy)
        self.path = Path(path)
        self.llama = load_llama(path, n_ctx)
        self._lock = threading.Lock()

    def _chat(self, messages: list[Message], params: SamplingParams) -> ChatResult:
        kwargs = dict(messages=messages, temperature=params.temperature, top_p=params.top_p,
                      max_tokens=params.max_tokens)
        if params.top_k is not None:
            kwargs["top_k"] = params.top_k
        if params.seed is not None:
            kwargs["seed"] = params.seed
        with self._lock:
            try:
                out = self.llama.create_chat_completion(**kwargs)
            except ValueError as exc:  # e.g. prompt longer than the context
                raise BackendError(f"llama.cpp: {exc}") from None
        choice = out["choices"][0]
        return ChatResult(text=choice["message"]["content"] or "", finish_reason=choice.get("finish_reason"),
                          usage=out.get("usage") or {})

    def describe(self) -> dict:
        return {"backend": self.spec, "file": self.path.name}
