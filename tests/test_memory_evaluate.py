"""Value identification's memory savings change no number: the probe's scaling, rotation and held-out rows are
built a chunk at a time and in place (bench/memory.py, issue 22), and must equal what the whole-matrix code gave."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import torch
from sklearn.preprocessing import StandardScaler

import univar.evaluate.probe as ev
from univar.evaluate import Rows, probe_scores


def _features(n: int, d: int, seed: int = 0, dtype=np.float32) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)) * np.geomspace(1, 1e-3, d) + rng.normal(size=d)
    x[:, 3] = 2.5  # a constant column: sklearn gives it scale 1
    return x.astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("chunk", [8192, 1000, 777])
def test_chunked_scaler_equals_standard_scaler_to_the_bit(monkeypatch, dtype, chunk):
    monkeypatch.setattr(ev, "PROBE_COPY_CHUNK", chunk)
    x = _features(12_000, 120, dtype=dtype)
    ref, got = StandardScaler().fit(x), ev._standard_scaler(x)
    for name in ("mean_", "var_", "scale_"):
        np.testing.assert_array_equal(getattr(got, name), getattr(ref, name), err_msg=name)
    assert got.n_samples_seen_ == ref.n_samples_seen_ and got.n_features_in_ == ref.n_features_in_
    np.testing.assert_array_equal(got.transform(x[:500]), ref.transform(x[:500]))
    rows = np.arange(0, len(x), 3)  # a Rows selection scales as the copied rows do
    np.testing.assert_array_equal(ev._standard_scaler(Rows(x, rows)).scale_, StandardScaler().fit(x[rows]).scale_)


def test_scaler_with_nan_rows_is_scikit_learns(monkeypatch):
    monkeypatch.setattr(ev, "PROBE_COPY_CHUNK", 500)
    x = _features(3000, 20, dtype=np.float64)
    x[1234, 5] = np.nan
    np.testing.assert_array_equal(ev._standard_scaler(x).scale_, StandardScaler().fit(x).scale_)


@pytest.mark.parametrize("n, chunk", [(1000, 64), (777, 100), (5000, 8192)])
def test_partition_views_are_the_masked_copies_and_unpartition_restores(monkeypatch, n, chunk):
    monkeypatch.setattr(ev, "PROBE_COPY_CHUNK", chunk)
    rng = np.random.default_rng(n)
    a = rng.normal(size=(n, 5)).astype(np.float32)
    mask = rng.random(n) < 0.2
    before = a.copy()
    ev._partition_rows(a, mask)
    kept = int((~mask).sum())
    np.testing.assert_array_equal(a[:kept], before[~mask])
    np.testing.assert_array_equal(a[kept:], before[mask])
    ev._unpartition_rows(a, mask)
    np.testing.assert_array_equal(a, before)


def test_rotation_in_place_equals_the_product(monkeypatch):
    monkeypatch.setattr(ev, "PROBE_COPY_CHUNK", 300)
    x = torch.from_numpy(_features(2000, 64))
    z, axes = ev._probe_axes(x.clone())
    z_in_place, axes_in_place = ev._probe_axes(x.clone(), in_place=True)
    assert torch.equal(z, z_in_place) and torch.equal(axes, axes_in_place)


def _probe_data(n: int, d: int):
    """n QAs of 4 classes in d dimensions, the first 80% the training side, a fifth of those held out."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, n)
    x = (rng.normal(size=(n, d)) + 0.6 * np.eye(4, d)[labels] * 3).astype(np.float32)
    train = np.arange(n * 4 // 5)
    return x, labels.astype(str), train, np.arange(len(train), n), rng.random(len(train)) < 0.2


@pytest.mark.slow
def test_probe_scores_do_not_depend_on_the_chunk(monkeypatch):
    """The same probe with chunks of 1,000 rows (the scaler, rotation and partition all chunked) and with one
    chunk over everything (StandardScaler itself): identical scores."""
    x, y, train, test, held = _probe_data(10_000, 48)
    monkeypatch.setattr(ev, "PROBE_COPY_CHUNK", 1_000_000)
    classes, whole = probe_scores(x[train], y[train], x[test], 0, held)
    monkeypatch.setattr(ev, "PROBE_COPY_CHUNK", 1000)
    classes_chunked, chunked = probe_scores(Rows(x, train), y[train], Rows(x, test), 0, held)
    assert list(classes) == list(classes_chunked)
    np.testing.assert_array_equal(chunked, whole)
    assert (chunked.argmax(1) == y[test].astype(int)).mean() > 0.5  # a probe that learnt something


def test_probe_copies_no_whole_matrix_in_numpy(monkeypatch):
    """numpy allocations during the probe (tracemalloc sees them; torch's own are the one float32 matrix z) stay
    under the training rows' size: StandardScaler alone made a float64 copy of them (2x) and a float32 NaN mask,
    and the scaled rows, their rotation and the held-out split were whole copies each (4.28x the training rows
    here before, 0.53x now)."""
    x, y, train, test, held = _probe_data(10_000, 256)
    monkeypatch.setattr(ev, "PROBE_COPY_CHUNK", 500)
    tracemalloc.start()
    try:
        probe_scores(Rows(x, train), y[train], Rows(x, test), 0, held)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < x[train].nbytes, (peak, x[train].nbytes)
