"""The embedding cache: hits and misses, damaged entries, and runs killed in the middle of a write."""

from __future__ import annotations

import os
import sqlite3

import numpy as np
import pytest
from helpers.kill import kill9, start_embed, wait_for_rows, write_corpus

from univar.cache import EmbeddingCache, cache_dir, text_key
from univar.encoders import EmbedStats, embed


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("UNIVAR_CACHE_DIR", str(tmp_path / "a"))
    assert cache_dir() == tmp_path / "a"
    monkeypatch.delenv("UNIVAR_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "univar"


def test_hits_and_misses(tmp_path):
    cache = EmbeddingCache("enc:a", 3, root=tmp_path)
    keys = [text_key("one"), text_key("two")]
    cache.put(keys, np.array([[1, 2, 3], [4, 5, 6]], dtype=np.float32))
    found = cache.get([text_key("one"), text_key("three")])
    assert list(found) == [text_key("one")]
    np.testing.assert_array_equal(found[text_key("one")], [1, 2, 3])
    other = EmbeddingCache("enc:b", 3, root=tmp_path)  # another encoder never sees these vectors
    assert other.get(keys) == {}


def test_damaged_entry_is_a_miss_and_is_replaced(tmp_path, caplog):
    cache = EmbeddingCache("enc", 4, root=tmp_path)
    key = text_key("x")
    cache.put([key], np.ones((1, 4)))
    with sqlite3.connect(cache.path) as db:
        db.execute("UPDATE emb SET vec = ? WHERE key = ?", (b"\x00\x01\x02", key))
    assert cache.get([key]) == {}
    assert "damaged cache entr" in caplog.text
    cache.put([key], np.full((1, 4), 2.0))
    np.testing.assert_array_equal(cache.get([key])[key], [2, 2, 2, 2])


def test_unreadable_database_is_moved_aside(tmp_path, caplog):
    cache = EmbeddingCache("enc", 4, root=tmp_path)
    path = cache.path
    cache.close()
    path.write_bytes(b"this is not a database" * 100)
    fresh = EmbeddingCache("enc", 4, root=tmp_path)
    assert len(fresh) == 0 and path.with_suffix(".corrupt").exists()


def test_second_run_embeds_nothing(small_qa, minilm, tmp_path, monkeypatch):
    from univar.qa import qa_texts

    monkeypatch.setenv("UNIVAR_CACHE_DIR", str(tmp_path / "cache"))  # empty whatever ran before in the session
    texts = qa_texts(small_qa)[:60]
    first, second = EmbedStats(), EmbedStats()
    a = embed(texts, minilm, stats=first)
    b = embed(texts, minilm, stats=second)
    assert first.embedded == len(set(texts)) and second.embedded == 0 and second.cached == len(set(texts))
    np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_kill_during_embedding_leaves_whole_batches_and_resumes(tmp_path, small_qa, minilm):
    from univar.qa import qa_texts

    texts = list(dict.fromkeys(qa_texts(small_qa)))[60:220]
    corpus = write_corpus(tmp_path / "texts.txt", texts)
    proc = start_embed(corpus, tmp_path / "cache", "minilm", 16)
    stored = wait_for_rows(proc, tmp_path / "cache", 32)
    assert kill9(proc), "the run ended before it could be killed"
    assert stored >= 32, "the run never committed a batch before the deadline"

    cache = EmbeddingCache(minilm.id, minilm.dim, root=tmp_path / "cache")
    kept = len(cache)
    assert kept % 16 == 0 and 0 < kept < len(texts)  # whole chunks only, never a torn one
    assert len(cache.get([text_key(t) for t in texts])) == kept  # every stored vector reads back intact
    cache.close()

    os.environ["UNIVAR_CACHE_DIR"] = str(tmp_path / "cache")
    try:
        stats = EmbedStats()
        resumed = embed(texts, minilm, stats=stats, progress=False)
    finally:
        del os.environ["UNIVAR_CACHE_DIR"]
    assert stats.cached == kept and stats.embedded == len(texts) - kept
    direct = minilm.encode_batch(texts)
    cos = (resumed * direct).sum(1) / np.linalg.norm(resumed, axis=1) / np.linalg.norm(direct, axis=1)
    assert cos.min() > 0.999
