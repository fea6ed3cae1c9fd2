"""kill -9 at twenty random moments of each long stage (embed, train, elicit), each followed by a resume:
nothing is lost, nothing is done twice, and the result equals an uninterrupted run.

The moments come from a seeded RNG; each kill is a real SIGKILL of a real ``univar`` process. A kill that
finds the process already finished does not count, so every one of the twenty interrupts work in progress.
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from helpers.kill import EMBED_RUN, Zygote, cache_rows, wait_for_rows, wait_ready, write_corpus

from univar.cache import EmbeddingCache, text_key
from univar.encoders import EmbedStats, embed
from univar.qa import qa_texts
from univar.registry import get_encoder

pytestmark = pytest.mark.slow
KILLS = 20
EMBED_MODULES = ["torch", "onnxruntime", "tokenizers", "univar.encoders", "univar.registry", "univar.cache",
                 "pyarrow"]


def test_twenty_kills_during_embedding_lose_nothing_and_embed_nothing_twice(tmp_path, valuebench, monkeypatch,
                                                                            own_cache):
    from univar.qa import qa_texts

    # distinct real QAs, shortish; 80 chunks, so that 20 kills of about three chunks each cannot finish the run
    texts = sorted(dict.fromkeys(qa_texts(valuebench)), key=len)[::10][:640]
    assert len(set(texts)) == 640
    chunk = 8
    encoder = get_encoder("minilm-int8")

    # the uninterrupted run first: its vectors are the reference, and its pace sets the spread within a chunk
    monkeypatch.setenv("UNIVAR_CACHE_DIR", str(own_cache(tmp_path / "straight")))
    started = time.perf_counter()
    straight = embed(texts, encoder, chunk=chunk, progress=False)
    per_chunk = (time.perf_counter() - started) / (len(texts) / chunk)

    corpus = write_corpus(tmp_path / "texts.txt", texts)
    root = own_cache(tmp_path / "killed")
    rng = random.Random(6)
    kills, progressed, rows = 0, 0, 0
    env = {**os.environ, "UNIVAR_CACHE_DIR": str(root), "UNIVAR_PROGRESS": "0"}
    # each run is a real process forked from one that has imported torch, onnxruntime and univar (seconds on 2
    # cores, paid once): it loads the encoder, reads the texts and embeds, as ``python -c EMBED_RUN`` does
    with Zygote(EMBED_MODULES, env) as z:
        for round_ in range(KILLS):
            out, err = tmp_path / f"embed-{round_}.out", tmp_path / f"embed-{round_}.err"
            child = z.child(z.run_python(EMBED_RUN, [str(corpus), "minilm-int8", str(chunk)], out, err))
            wait_ready(child, out)
            # Each kill waits for 0, 1 or 2 more committed chunks (watched in the cache, not guessed from a
            # pace: a fresh process's pace differs from the in-process one above, and timed kills once landed
            # after a commit only 2 times in 20), then for a random part of the next chunk: the kill falls
            # mid-encode, mid-commit or between them.
            ahead = rng.randint(0, 2)
            if ahead:
                wait_for_rows(child, root, rows + ahead * chunk, every=0.005)
            time.sleep(rng.uniform(0.0, 1.0) * per_chunk)
            assert child.kill9(), f"the run ended after {kills} kills; give it more texts: {err.read_text()[-2000:]}"
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


TRAIN_EPOCHS = 36
TRAIN_ARGS = ["--mode", "set", "--base", "minilm-int8", "--epochs", str(TRAIN_EPOCHS), "--steps-per-epoch", "2",
              "--batch-size", "16", "--hidden", "32", "--lambda", "2", "--patience", "100", "--seed", "0"]
ZYGOTE_MODULES = ["torch", "torch._dynamo", "torch.optim", "univar.model.train", "univar.model.set_mode",
                  "univar.model.univar", "univar.evaluate", "univar.commands.train", "pyarrow.parquet", "onnxruntime",
                  "tokenizers", "sklearn.neighbors"]


def _epochs_said(stderr: Path) -> list[int]:
    text = stderr.read_text(errors="replace") if stderr.exists() else ""
    return [int(m) for m in re.findall(r"^epoch (\d+): loss", text, flags=re.M)]


def _checkpoint_epoch(out: Path) -> int:
    """The epoch ``--resume`` would start from after a kill (-1: no checkpoint yet); it must read back whole."""
    from univar.errors import UnivarError
    from univar.model import io

    try:
        tensors, state = io.load_checkpoint(out)
    except UnivarError as exc:
        if "no checkpoint" in str(exc):
            return -1
        raise
    assert any(k.startswith("model.") for k in tensors)
    return int(state["epoch"])


def test_twenty_kills_during_training_then_resume_give_the_same_model(tmp_path, small_qa):
    """``univar train`` (set mode) killed twenty times at random moments, each time re-run with ``--resume``
    (or afresh while no checkpoint exists yet): the final weights equal those of an uninterrupted run."""
    from safetensors.torch import load_file

    from univar.qa import write_qa

    data = write_qa(small_qa, tmp_path / "small.parquet")
    args = ["train", str(data), *TRAIN_ARGS]
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    env = {**os.environ, "UNIVAR_PROGRESS": "0", "COLUMNS": "200"}
    # the base embeddings go into the cache once; every run after reads them from there
    embed(qa_texts(small_qa), get_encoder("minilm-int8"), progress=False)
    with Zygote(ZYGOTE_MODULES, env) as z:
        # the uninterrupted run, watched: when each epoch ends sets where the kills fall
        log = tmp_path / "straight.err"
        started = time.monotonic()
        pid = z.run([*args, "--out", str(straight)], tmp_path / "straight.out", log)
        seen: dict[int, float] = {}
        while True:
            state = z.poll(pid)
            for e in _epochs_said(log):
                seen.setdefault(e, time.monotonic() - started)
            if not state["running"]:
                break
            time.sleep(0.01)
        assert state.get("code") == 0, log.read_text()[-3000:]
        first = seen.get(1, 1.0)
        per_epoch = max(0.01, (max(seen.values()) - first) / max(1, len(seen) - 1))

        rng = random.Random(7)
        kills, last, progressed, early = 0, -1, 0, 0
        for round_ in range(KILLS):
            resume = _checkpoint_epoch(killed) >= 0
            log = tmp_path / f"killed-{round_}.err"
            pid = z.run([*args, "--out", str(killed), *(["--resume"] if resume else [])], tmp_path / "k.out", log)
            if rng.random() < 0.25:  # while it reads the data, the cache and the checkpoint
                early += 1
                time.sleep(rng.uniform(0.0, first))
            else:  # at a random moment of the epoch after the first one this run finishes
                deadline = time.monotonic() + 300
                while not _epochs_said(log) and z.poll(pid)["running"] and time.monotonic() < deadline:
                    time.sleep(0.005)
                time.sleep(rng.uniform(0.0, 1.0) * per_epoch)
            assert z.kill9(pid), f"run {round_} ended before its kill: {log.read_text()[-3000:]}"
            kills += 1
            now = _checkpoint_epoch(killed)
            assert now >= last, f"the kill lost checkpoint epoch {last} (now {now})"
            progressed += now > last
            last = now
        assert kills == KILLS and progressed >= 5 and last < TRAIN_EPOCHS, (progressed, last)

        log = tmp_path / "final.err"
        pid = z.run([*args, "--out", str(killed), "--resume"], tmp_path / "final.out", log)
        assert z.wait(pid).get("code") == 0, log.read_text()[-3000:]
        assert f"resumed {killed} at epoch {last}" in " ".join(log.read_text().split())

    a, b = load_file(str(straight / "model.safetensors")), load_file(str(killed / "model.safetensors"))
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)
    ca = load_file(str(straight / "checkpoint" / "state.safetensors"))
    cb = load_file(str(killed / "checkpoint" / "state.safetensors"))
    assert set(ca) == set(cb) and all(torch.equal(ca[k], cb[k]) for k in ca)  # weights, Adam moments, RNG
    ha = json.loads((straight / "univar.json").read_text())["validation"]
    hb = json.loads((killed / "univar.json").read_text())["validation"]
    assert ha == hb and len(ha["history"]) == TRAIN_EPOCHS + 1  # every epoch's loss, the same best epoch


def test_a_kill_between_the_two_checkpoint_files_does_not_resume_wrongly(tmp_path, small_qa):
    """The exact state a kill leaves between ``os.replace(state.safetensors)`` and ``os.replace(state.json)``:
    resuming from it must give the uninterrupted model, or refuse; never a silently different one."""
    import shutil

    from safetensors.torch import load_file

    from univar.errors import UnivarError
    from univar.model.config import TrainConfig
    from univar.model.train import train_table

    cfg = dict(mode="set", base="minilm-int8", steps_per_epoch=2, batch_size=16, hidden=32, lam=2, patience=100)
    straight = train_table(small_qa, TrainConfig(**cfg, epochs=4), tmp_path / "a", progress=False)
    train_table(small_qa, TrainConfig(**cfg, epochs=2), tmp_path / "b", progress=False)
    shutil.copy(tmp_path / "b" / "checkpoint" / "state.json", tmp_path / "epoch2.json")
    train_table(small_qa, TrainConfig(**cfg, epochs=3), tmp_path / "b", resume=True, progress=False)
    shutil.copy(tmp_path / "epoch2.json", tmp_path / "b" / "checkpoint" / "state.json")  # the kill's leftovers
    try:
        resumed = train_table(small_qa, TrainConfig(**cfg, epochs=4), tmp_path / "b", resume=True, progress=False)
    except UnivarError:
        return  # refusing a torn checkpoint is honest too
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in straight.history]
    a = load_file(str(tmp_path / "a" / "checkpoint" / "state.safetensors"))
    b = load_file(str(tmp_path / "b" / "checkpoint" / "state.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_twenty_kills_during_elicit_then_resume_collect_every_row_exactly_once(tmp_path):
    """``univar elicit`` against a real llama.cpp server (``univar.llm.serve``, SmolLM2) on 127.0.0.1, killed
    twenty times as it progresses and re-run each time (forked from a warm process); a last, fresh run completes
    it. No row is lost, none is written twice."""
    from helpers.llm import ROOT, LlamaServer, have_llama_cpp

    from univar import elicit as E

    if not have_llama_cpp():
        pytest.skip("xllamacpp (the elicit extra) not installed")
    limit = 64
    out = tmp_path / "D"
    qa = out / "qa.jsonl"
    env = {**os.environ, "UNIVAR_PROGRESS": "0", "OPENAI_API_KEY": "unused"}
    rng = random.Random(8)
    with LlamaServer(threads=1) as server, Zygote(["univar.elicit", "univar.llm.openai", "httpx", "pandas"], env) as z:
        args = ["elicit", "--questions", "bundled:valueconsistency", "--model", "openai/smollm2", "--base-url",
                server.url, "--lang", "en", "--limit", str(limit), "--out", str(out), "--max-tokens", "4",
                "--concurrency", "2", "--retries", "0"]
        before: list[dict] = []
        kills = 0
        for round_ in range(KILLS):
            log = tmp_path / f"run-{round_}.err"
            pid = z.run(args, tmp_path / "run.out", log)
            want = len(before) + rng.choice([0, 1, 1, 2, 2, 3])  # rows this run may finish before its kill
            deadline = time.monotonic() + 120
            while z.poll(pid)["running"] and time.monotonic() < deadline:
                if qa.exists() and qa.read_bytes().count(b"\n") >= want:
                    break
                time.sleep(0.005)
            time.sleep(rng.uniform(0.0, 0.4))  # then somewhere inside the next request or write
            assert z.kill9(pid), f"run {round_} ended before its kill: {log.read_text()[-2000:]}"
            kills += 1
            rows = E.read_log(qa, repair=False)
            keys = [(r["qid"], r["model"], r["lang"]) for r in rows]
            assert len(keys) == len(set(keys)), "a row was written twice"
            assert rows[:len(before)] == before, "a kill lost or rewrote a finished row"
            assert not (out / "qa.parquet").exists()
            before = rows
        assert kills == KILLS and 10 <= len(before) < limit, len(before)

        # the last run is a fresh ``python -m univar``, as a user would type it
        cmd = [sys.executable, "-m", "univar", *args]
        done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert f"{len(before)} already done" in " ".join(done.stderr.split())
    rows = E.read_log(qa)
    keys = [(r["qid"], r["model"], r["lang"]) for r in rows]
    assert len(rows) == limit == len(set(keys))  # every row, exactly once
    assert rows[:len(before)] == before and all(r["answer"].strip() for r in rows)
    assert len(pd.read_parquet(out / "qa.parquet")) == limit
