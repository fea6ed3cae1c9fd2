"""Sentence encoders behind one interface (:mod:`~univar.encoders.base`), and the cached ``embed`` every command
goes through (:mod:`~univar.encoders.embed`).

An encoder maps texts to a float32 matrix. The named baselines (:mod:`~univar.encoders.named`) are the offline
ones this field uses, one module per family: sentence-transformers models on any device
(:mod:`~univar.encoders.transformer`), MiniLM as int8 ONNX (:mod:`~univar.encoders.onnx`), multilingual USE and
E5 (:mod:`~univar.encoders.multilingual`), TF-IDF + SVD (:mod:`~univar.encoders.tfidf`), and encoders joined side
by side (:mod:`~univar.encoders.concat`). Trained univar models are encoders too (:class:`univar.UniVaR`).
"""

from univar.encoders.base import Encoder
from univar.encoders.concat import ConcatEncoder
from univar.encoders.embed import EmbedStats, embed, release_freed_memory
from univar.encoders.multilingual import E5SmallEncoder, USEMultilingualEncoder
from univar.encoders.named import BASELINES, NAMED, baseline_encoder
from univar.encoders.onnx import MiniLMInt8Encoder
from univar.encoders.tfidf import TfidfEncoder
from univar.encoders.transformer import MiniLMEncoder, SentenceTransformerEncoder, pool_devices

__all__ = ["BASELINES", "NAMED", "ConcatEncoder", "E5SmallEncoder", "EmbedStats", "Encoder", "MiniLMEncoder",
           "MiniLMInt8Encoder", "SentenceTransformerEncoder", "TfidfEncoder", "USEMultilingualEncoder",
           "baseline_encoder", "embed", "pool_devices", "release_freed_memory"]
