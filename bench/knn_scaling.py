"""k-NN scaling for value identification: scikit-learn brute force vs FAISS exact inner product at 10k,
100k and 1M vectors (384-d, 20% test, k=50). Figure: sklearn time / faiss time; also checks that
``knn_backend("auto")`` picks the faster one."""

from __future__ import annotations

import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from common import report  # noqa: E402


def main() -> None:
    from univar.evaluate.knn import knn_backend, knn_predict

    rng = np.random.default_rng(0)
    rows = []
    for n in (10_000, 100_000, 1_000_000):
        n_test = n // 5
        train = rng.normal(size=(n - n_test, 384)).astype(np.float32)
        test = rng.normal(size=(min(n_test, 2_000), 384)).astype(np.float32)  # timed on a slice, scaled up
        labels = rng.integers(0, 128, size=len(train)).astype(str)
        timings = {}
        for backend in ("sklearn", "faiss"):
            start = time.perf_counter()
            knn_predict(train, labels, test, 50, backend=backend)
            timings[backend] = (time.perf_counter() - start) * n_test / len(test)
        faster = min(timings, key=timings.get)
        auto = knn_backend(len(train), n_test)
        rows.append({"figure": f"k-NN {n:,}: sklearn / faiss time (auto picks {auto})", "value": timings["faiss"],
                     "baseline": timings["sklearn"], "ratio": timings["sklearn"] / timings["faiss"],
                     "target": f"auto = {faster}", "ok": auto == faster})
        del train
    report("knn_scaling", rows)


if __name__ == "__main__":
    main()
