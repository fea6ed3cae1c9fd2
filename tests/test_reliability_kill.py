"""kill -9 at twenty random moments of each long stage (embed, train, elicit), each followed by a resume:
nothing is lost, nothing is done twice, and the result equals an uninterrupted run.

The moments come from a seeded RNG; each kill is a real SIGKILL of a real ``univar`` process. A kill that
finds the process already finished does not count, so every one of the twenty interrupts work in progress.
"""

from __future__ import annotations

import random
import subprocess
import time

import numpy as np
import pytest

from kill_helpers import cache_rows, kill9, start_embed, wait_ready, write_corpus
from univar.cache import EmbeddingCache, text_key
from univar.encoders import EmbedStats, embed, get_encoder

pytestmark = pytest.mark.slow
KILLS = 20


def test_twenty_kills_during_embedding_lose_nothing_and_embed_nothing_twice(tmp_path, valuebench, monkeypatch):
    from univar.qa import qa_texts

    texts = sorted(dict.fromkeys(qa_texts(valuebench)), key=len)[::10][:320]  # distinct real QAs, shortish
    assert len(set(texts)) == 320
    chunk = 8
    encoder = get_encoder("minilm-int8")

    # the uninterrupted run first: its vectors are the reference, and its pace sets where the kills fall
    monkeypatch.setenv("UNIVAR_CACHE_DIR", str(tmp_path / "straight"))
    started = time.perf_counter()
    straight = embed(texts, encoder, chunk=chunk, progress=False)
    per_chunk = (time.perf_counter() - started) / (len(texts) / chunk)

    corpus = write_corpus(tmp_path / "texts.txt", texts)
    root = tmp_path / "killed"
    rng = random.Random(6)
    kills, progressed, rows = 0, 0, 0
    for _ in range(KILLS):
        proc = start_embed(corpus, root, "minilm-int8", chunk)
        wait_ready(proc)
        try:  # from "about to embed" to about two chunks in: opening the cache, reading it, encoding, committing
            proc.wait(timeout=rng.uniform(0.0, 2.5) * per_chunk)
        except subprocess.TimeoutExpired:
            pass
        assert kill9(proc), f"the run finished after {kills} kills; give it more texts: {proc.stderr.read()[-2000:]}"
        kills += 1
        now = cache_rows(root)
        assert now >= rows, "a kill lost rows that an earlier run had committed"
        assert now % chunk == 0, f"{now} rows: a torn chunk"  # every chunk is committed whole or not at all
        progressed += now > rows
        rows = now
    assert 3 <= progressed and 0 < rows < len(texts), (progressed, rows)  # the kills fell during real work

    store = EmbeddingCache(encoder.id, encoder.dim, root=root)
    assert len(store.get([text_key(t) for t in texts])) == rows  # every kept vector reads back intact
    store.close()

    monkeypatch.setenv("UNIVAR_CACHE_DIR", str(root))
    stats = EmbedStats()
    resumed = embed(texts, encoder, chunk=chunk, stats=stats, progress=False)
    assert (stats.cached, stats.embedded) == (rows, len(texts) - rows)  # only the missing ones, once
    assert cache_rows(root) == len(texts)  # one row per distinct text, none twice
    np.testing.assert_array_equal(resumed, straight)  # the same chunks, so the very same vectors

    sample = texts[::8]  # and chunking does not change what a text embeds to
    direct = encoder.encode_batch(sample)
    kept = resumed[::8]
    cos = (kept * direct).sum(1) / np.linalg.norm(kept, axis=1) / np.linalg.norm(direct, axis=1)
    assert cos.min() > 0.999
