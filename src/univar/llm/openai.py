"""``openai/<model>``: any OpenAI-compatible chat endpoint (OpenAI, vLLM, Ollama, llama.cpp server).

Why httpx and not the openai SDK: one small dependency, one sync client shared by worker threads, and
full control over what is retried. The API key comes from ``--api-key`` or the environment and lives only
in the request header: it is redacted from every error message and never part of :meth:`describe`.
"""

from __future__ import annotations

import json
import os
import time
from urllib.parse import urlsplit, urlunsplit

import httpx

from univar.llm.base import BackendError, ChatBackend, ChatResult, Message, RetryableError, RetryPolicy, SamplingParams

DEFAULT_BASE_URL = "https://api.openai.com/v1"
RETRY_STATUS = {408, 409, 425, 429} | set(range(500, 600))


def _public_url(url: str) -> str:
    """The base URL without user:password@ or query string (which may carry credentials)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


class OpenAIBackend(ChatBackend):
    """Chat completions over HTTP with a per-request deadline and retries on 429, 5xx and broken replies."""

    provider = "openai"

    def __init__(self, spec: str, name: str, model: str, base_url: str | None = None, api_key: str | None = None,
                 timeout: float = 60.0, policy: RetryPolicy | None = None, concurrency: int = 4):
        super().__init__(spec, name, policy)
        self.model = model
        self.base_url = (base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        self._key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        self.timeout = float(timeout)
        # The official API rejects top_k; local servers (vLLM, llama.cpp, Ollama) take it.
        self._send_top_k = "api.openai.com" not in self.base_url
        headers = {"Content-Type": "application/json"}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        self._client = httpx.Client(headers=headers, timeout=httpx.Timeout(self.timeout),
                                    limits=httpx.Limits(max_connections=max(1, concurrency),
                                                        max_keepalive_connections=max(1, concurrency)))

    def _redact(self, text: str) -> str:
        return text.replace(self._key, "***") if self._key else text

    def body(self, messages: list[Message], params: SamplingParams) -> dict:
        body: dict = {"model": self.model, "messages": messages, "temperature": params.temperature,
                      "top_p": params.top_p, "max_tokens": params.max_tokens, "stream": False}
        if params.seed is not None:
            body["seed"] = params.seed
        if params.top_k is not None and self._send_top_k:
            body["top_k"] = params.top_k
        return body

    def _chat(self, messages: list[Message], params: SamplingParams) -> ChatResult:
        url = f"{self.base_url}/chat/completions"
        deadline = time.monotonic() + self.timeout
        try:
            with self._client.stream("POST", url, json=self.body(messages, params)) as response:
                chunks = []
                for chunk in response.iter_bytes():
                    chunks.append(chunk)
                    if time.monotonic() > deadline:  # a server that drips bytes must not hold a worker forever
                        raise RetryableError(f"timeout: no complete reply within {self.timeout:g}s")
                raw = b"".join(chunks)
        except httpx.TimeoutException as exc:
            raise RetryableError(f"timeout: {type(exc).__name__} after {self.timeout:g}s") from None
        except httpx.TransportError as exc:  # refused, reset, truncated body (RemoteProtocolError)
            raise RetryableError(self._redact(f"connection: {type(exc).__name__}: {exc}")) from None
        status = response.status_code
        if status != 200:
            snippet = self._redact(raw[:300].decode("utf-8", "replace")).strip().replace("\n", " ")
            message = f"HTTP {status}: {snippet}"
            if status in RETRY_STATUS:
                raise RetryableError(message, _retry_after(response))
            raise BackendError(message)
        try:
            data = json.loads(raw)
            choice = data["choices"][0]
            text = choice["message"]["content"]
            if not isinstance(text, str):
                raise TypeError("content is not text")
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise RetryableError(f"malformed reply: {type(exc).__name__}: {str(exc)[:100]}") from None
        return ChatResult(text=text, finish_reason=choice.get("finish_reason"), usage=data.get("usage") or {})

    def describe(self) -> dict:
        return {"backend": self.spec, "base_url": _public_url(self.base_url)}

    def close(self) -> None:
        self._client.close()

    def __repr__(self) -> str:  # never show the key
        return f"OpenAIBackend(model={self.model!r}, base_url={_public_url(self.base_url)!r})"
