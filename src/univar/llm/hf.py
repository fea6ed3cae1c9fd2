"""``hf/<folder-or-gguf>``: a causal LM run by transformers from a local folder or a GGUF file.

Why: any checkpoint a researcher has on disk (including GGUF, dequantised by transformers through the
``gguf`` package) can be elicited without a server. The model's chat template formats the messages;
``torch.manual_seed(seed)`` before each request makes sampling reproducible per row.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from univar.errors import UnivarError
from univar.llm.base import ChatBackend, ChatResult, Message, RetryPolicy, SamplingParams


def torch_threads() -> None:
    """Honour ``$UNIVAR_TORCH_THREADS``: on a CPU shared with other jobs one thread can be many times faster."""
    value = os.environ.get("UNIVAR_TORCH_THREADS")
    if value:
        import torch

        torch.set_num_threads(max(1, int(value)))


def load_hf(path: str | Path):
    """Load tokenizer and model from a folder, or from a ``.gguf`` file (through ``gguf_file=``)."""
    path = Path(path).expanduser()
    if not path.exists():
        raise UnivarError(f"model not found: {path}")
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    torch_threads()
    if path.is_file() and path.suffix == ".gguf":
        where, kwargs = str(path.parent), {"gguf_file": path.name}
    elif path.is_dir():
        where, kwargs = str(path), {}
    else:
        raise UnivarError(f"hf/ expects a model folder or a .gguf file, got {path}")
    try:
        tokenizer = AutoTokenizer.from_pretrained(where, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(where, **kwargs)
    except (OSError, ValueError, ImportError) as exc:
        raise UnivarError(f"cannot load {path} with transformers: {str(exc).splitlines()[0]}") from None
    model.eval()
    return tokenizer, model


class HFBackend(ChatBackend):
    """Generation with ``model.generate`` (sampling unless temperature is 0)."""

    provider = "hf"
    max_concurrency = 1

    def __init__(self, spec: str, name: str, path: str | Path, policy: RetryPolicy | None = None):
        super().__init__(spec, name, policy)
        self.path = Path(path)
        self.tokenizer, self.model = load_hf(path)
        self._lock = threading.Lock()

    def _chat(self, messages: list[Message], params: SamplingParams) -> ChatResult:
        import torch

        tok = self.tokenizer
        if getattr(tok, "chat_template", None):
            prompt = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        else:  # a base model: plain text turns
            prompt = "\n".join(f"{m['role']}: {m['content']}" for m in messages) + "\nassistant:"
        inputs = tok(prompt, return_tensors="pt", add_special_tokens=False)
        sample = params.temperature > 0
        gen = dict(max_new_tokens=params.max_tokens, do_sample=sample,
                   pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id)
        if sample:
            gen.update(temperature=params.temperature, top_p=params.top_p, top_k=params.top_k or 0)
        with self._lock, torch.inference_mode():
            if params.seed is not None:
                torch.manual_seed(params.seed)
            output = self.model.generate(**inputs, **gen)
        new = output[0, inputs["input_ids"].shape[1]:]
        text = tok.decode(new, skip_special_tokens=True)
        finish = "length" if len(new) >= params.max_tokens else "stop"
        return ChatResult(text=text.strip(), finish_reason=finish,
                          usage={"prompt_tokens": int(inputs["input_ids"].shape[1]),
                                 "completion_tokens": int(len(new))})

    def describe(self) -> dict:
        return {"backend": self.spec, "file": self.path.name}
