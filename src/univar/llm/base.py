"""One chat interface for every LLM backend, plus the retry policy they share.

Why one interface: ``univar elicit`` asks many questions of many models, and the collection loop must not
care whether an answer comes from a remote OpenAI-compatible server, llama.cpp in this process, or
transformers. Every backend turns ``messages + SamplingParams`` into a :class:`ChatResult`; transient
failures raise :class:`RetryableError` so that one retry loop (:func:`with_retries`) serves them all.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TypeVar

log = logging.getLogger("univar")

Message = dict[str, str]  # {"role": "system" | "user" | "assistant", "content": "..."}


@dataclass(frozen=True)
class SamplingParams:
    """Sampling settings; recorded on every QA row so that a run can be reproduced.

    Defaults follow the paper (top_p 0.95, top_k 50, 128 new tokens). ``seed`` is the per-request seed;
    the elicitation loop derives one per row from the run seed so that a retried row is asked the same way.
    """

    temperature: float = 1.0
    top_p: float = 0.95
    top_k: int | None = 50
    max_tokens: int = 128
    seed: int | None = 0

    def to_dict(self) -> dict:
        return asdict(self)

    def with_seed(self, seed: int | None) -> "SamplingParams":
        return SamplingParams(self.temperature, self.top_p, self.top_k, self.max_tokens, seed)


@dataclass
class ChatResult:
    """What a backend returns: the text, why it stopped, token counts where the backend says."""

    text: str
    finish_reason: str | None = None
    usage: dict = field(default_factory=dict)


class BackendError(Exception):
    """A request failed for good (bad request, unknown model, auth): retrying will not help."""


class RetryableError(BackendError):
    """A request failed in a way that may pass on a later try (429, 5xx, timeout, broken response)."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter: try ``retries + 1`` times, waiting ``base * 2**n`` (capped) between.

    A server's ``Retry-After`` is honoured when it asks for longer, up to ``max_delay``.
    """

    retries: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    jitter: float = 0.25

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        wait = min(self.max_delay, self.base_delay * (2**attempt))
        wait *= 1.0 + random.uniform(-self.jitter, self.jitter)
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.max_delay))
        return max(0.0, wait)


T = TypeVar("T")


@dataclass
class RetryStats:
    """Counts kept by :func:`with_retries` (reported by elicit and checked by the fault-server tests)."""

    attempts: int = 0
    retries: int = 0
    reasons: dict[str, int] = field(default_factory=dict)

    def note(self, reason: str) -> None:
        self.retries += 1
        key = reason.split(":")[0][:60]
        self.reasons[key] = self.reasons.get(key, 0) + 1


def with_retries(call: Callable[[], T], policy: RetryPolicy, stats: RetryStats | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> T:
    """Run ``call`` until it succeeds, raises a non-retryable error, or the retries are spent."""
    attempt = 0
    while True:
        if stats is not None:
            stats.attempts += 1
        try:
            return call()
        except RetryableError as exc:
            if attempt >= policy.retries:
                raise RetryableError(f"{exc} (gave up after {attempt + 1} tries)") from None
            wait = policy.delay(attempt, exc.retry_after)
            if stats is not None:
                stats.note(str(exc))
            log.info("retrying in %.2fs after: %s", wait, exc)
            sleep(wait)
            attempt += 1


class ChatBackend:
    """Base class: subclasses implement :meth:`_chat`; :meth:`chat` adds the shared retry loop.

    ``spec`` is the provider/model string the user gave (recorded as the row's ``backend``); ``name`` is
    the short model label (the row's ``model``). ``max_concurrency`` caps useful parallel requests (1 for
    in-process models, which share one CPU-bound engine).
    """

    provider: str = ""
    max_concurrency: int | None = None

    def __init__(self, spec: str, name: str, policy: RetryPolicy | None = None):
        self.spec = spec
        self.name = name
        self.policy = policy or RetryPolicy()
        self.stats = RetryStats()

    def chat(self, messages: list[Message], params: SamplingParams) -> ChatResult:
        return with_retries(lambda: self._chat(messages, params), self.policy, self.stats)

    def _chat(self, messages: list[Message], params: SamplingParams) -> ChatResult:  # pragma: no cover
        raise NotImplementedError

    def describe(self) -> dict:
        """Provenance written with each row; must never contain a secret."""
        return {"backend": self.spec}

    def close(self) -> None:
        """Release sockets, threads or model memory."""

    def __enter__(self) -> "ChatBackend":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
