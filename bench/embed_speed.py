"""Embedding throughput: univar's cached ``embed`` against sentence-transformers' ``encode`` called directly
on the same 2,000 bundled QAs (target: univar >= 0.95 of direct speed), and the int8 ONNX MiniLM against
fp32 torch (target: >= 2x faster, cosine >= 0.99 on every QA)."""

from __future__ import annotations

import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from common import report, timed  # noqa: E402


def main() -> None:
    from univar.encoders import embed
    from univar.qa import qa_texts, read_qa
    from univar.registry import get_encoder

    texts = list(dict.fromkeys(qa_texts(read_qa("bundled:valuebench"))))[:2000]
    fp32, int8 = get_encoder("minilm"), get_encoder("minilm-int8")
    direct = lambda: fp32.model.encode(texts, batch_size=64, show_progress_bar=False)  # noqa: E731

    def through_univar() -> None:  # a cold cache every time: the cost of embedding, not of a cache hit
        with tempfile.TemporaryDirectory() as tmp:
            os.environ["UNIVAR_CACHE_DIR"] = tmp
            embed(texts, fp32, progress=False)

    t_direct = timed(direct, 2)
    t_univar = timed(through_univar, 2)
    t_int8 = timed(lambda: int8.encode_batch(texts), 2)
    a, b = fp32.encode_batch(texts), int8.encode_batch(texts)
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    report("embed_speed", [
        {"figure": "univar embed speed / direct sentence-transformers", "value": len(texts) / t_univar,
         "baseline": len(texts) / t_direct, "ratio": t_direct / t_univar, "target": ">= 0.95",
         "ok": t_direct / t_univar >= 0.95},
        {"figure": "minilm-int8 speed / minilm fp32", "value": len(texts) / t_int8, "baseline": len(texts) / t_direct,
         "ratio": t_direct / t_int8, "target": ">= 2.0", "ok": t_direct / t_int8 >= 2.0},
        {"figure": "minilm-int8 min cosine to fp32", "value": float(cos.min()), "baseline": 1.0,
         "ratio": float(cos.min()), "target": ">= 0.99", "ok": float(cos.min()) >= 0.99},
    ])


if __name__ == "__main__":
    main()
