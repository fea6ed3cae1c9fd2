"""hf/ backend: transformers from a local folder (a tiny Llama built here) and from the SmolLM2 GGUF."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from univar.llm import SamplingParams, get_backend


def build_tiny_chat_model(folder: Path) -> Path:
    """A 2-layer Llama with a word-level tokenizer and a chat template: the real transformers path, in seconds."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    words = "<pad> </s> <unk> <s> user assistant system : is honesty important ? yes no maybe".split()
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>",
                                        bos_token="<s>")
    tokenizer.chat_template = ("{% for m in messages %}{{ m['role'] }} : {{ m['content'] }} {% endfor %}"
                               "{% if add_generation_prompt %}assistant : {% endif %}")
    config = LlamaConfig(vocab_size=len(words), hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64,
                         pad_token_id=0, eos_token_id=1, bos_token_id=3)
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_hf_backend_from_a_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("UNIVAR_TORCH_THREADS", "1")
    folder = build_tiny_chat_model(tmp_path / "tiny-llama")
    backend = get_backend(f"hf/{folder}")
    params = SamplingParams(max_tokens=5, seed=3)
    out = backend.chat([{"role": "user", "content": "is honesty important ?"}], params)
    # the prompt: "user : is honesty important ? assistant :"
    assert out.usage["completion_tokens"] <= 5 and out.usage["prompt_tokens"] == 8
    assert backend.chat([{"role": "user", "content": "is honesty important ?"}], params).text == out.text
    assert backend.name == "tiny-llama"


@pytest.mark.skipif(os.environ.get("UNIVAR_TEST_HF_GGUF") != "1",
                    reason="minutes on a shared CPU (GGUF tokenizer conversion + dequantisation); "
                           "UNIVAR_TEST_HF_GGUF=1")
def test_hf_backend_reads_the_same_gguf(monkeypatch):
    pytest.importorskip("gguf")
    monkeypatch.setenv("UNIVAR_TORCH_THREADS", "1")
    backend = get_backend("hf/smollm2")
    out = backend.chat([{"role": "user", "content": "Say hello."}], SamplingParams(max_tokens=4, seed=1))
    assert out.text.strip() and out.usage["completion_tokens"] <= 4
    assert backend.name == "smollm2-hf"
