"""``embed`` to a ``.npy`` path writes the file window by window instead of through a memory map whose pages stay
in the process's RSS (bench/memory.py, issue 22): the same file, the same vectors, and no resident result."""

from __future__ import annotations

import numpy as np
import pytest

from univar.encoders import TfidfEncoder, embed, release_freed_memory


def _corpus(n: int) -> list[str]:
    """Distinct QA-like texts over a 600-word vocabulary: enough for TF-IDF's SVD to keep every dimension."""
    rng = np.random.default_rng(0)
    words = [f"word{j}" for j in range(600)]
    return [f"Q: {' '.join(rng.choice(words, 4))}? A: {' '.join(rng.choice(words, 8))} {i}" for i in range(n)]


def _rss_file_kib() -> int:
    """Resident pages of mapped files (a memory map written through counts here)."""
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("RssFile:"))


def test_npy_output_is_the_in_memory_result_byte_for_byte(tmp_path):
    texts = _corpus(3000)
    encoder = TfidfEncoder(dim=64).fit(texts)
    expected = embed(texts, encoder, progress=False, window=700)
    path = tmp_path / "e.npy"
    written = embed(texts, encoder, progress=False, window=700, out=path)
    assert isinstance(written, np.memmap) and not written.flags.writeable
    np.testing.assert_array_equal(written, expected)
    np.testing.assert_array_equal(np.load(path), expected)
    reference = tmp_path / "ref.npy"  # what open_memmap, the writer before, made of the same shape
    ref = np.lib.format.open_memmap(reference, mode="w+", dtype=np.float32, shape=expected.shape)
    ref[:] = expected
    ref.flush()
    del ref
    assert path.read_bytes() == reference.read_bytes()


def test_empty_corpus_writes_an_empty_npy(tmp_path):
    encoder = TfidfEncoder(dim=8).fit(_corpus(50))
    result = embed([], encoder, progress=False, out=tmp_path / "e.npy")
    assert result.shape == (0, encoder.dim) and np.load(tmp_path / "e.npy").shape == (0, encoder.dim)


@pytest.mark.slow
def test_npy_result_does_not_stay_resident(tmp_path):
    """A 10 MB result: through a memory map every page stored stayed in RssFile (+10 MB); written, none do."""
    texts = _corpus(10_000)
    encoder = TfidfEncoder(dim=256).fit(texts)
    embed(texts[:100], encoder, progress=False)  # the cache file exists: what it maps is there before
    release_freed_memory()
    before = _rss_file_kib()
    result = embed(texts, encoder, progress=False, window=2000, out=tmp_path / "e.npy")
    grown = _rss_file_kib() - before
    assert result.nbytes > 10_000_000 and grown * 1024 < result.nbytes / 4, (grown, result.nbytes)
    assert float(np.abs(np.asarray(result[-5:])).sum()) > 0  # and the rows are there to read
