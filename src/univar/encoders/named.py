"""The named baselines (``--encoder minilm``, ``minilm+use-multilingual``, a sentence-transformers folder)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from univar.encoders.base import Encoder
from univar.encoders.concat import ConcatEncoder
from univar.encoders.multilingual import E5SmallEncoder, USEMultilingualEncoder
from univar.encoders.onnx import MiniLMInt8Encoder
from univar.encoders.tfidf import TfidfEncoder
from univar.encoders.transformer import MiniLMEncoder, SentenceTransformerEncoder
from univar.errors import UnivarError

NAMED: dict[str, Callable[[], Encoder]] = {
    "minilm": MiniLMEncoder,
    "minilm-int8": MiniLMInt8Encoder,
    "use-multilingual": USEMultilingualEncoder,
    "e5-small": E5SmallEncoder,
    "tfidf": TfidfEncoder,
}
BASELINES = ("minilm", "minilm-int8", "use-multilingual", "e5-small", "tfidf")
ON_DEVICE = ("minilm",)  # run by torch on ``device``; the others run on the CPU (onnxruntime, numpy, C, sklearn)


def baseline_encoder(spec: str, device: str = "auto") -> Encoder:
    """A baseline encoder: a registered name, names joined by ``+``, or a sentence-transformers folder.

    ``device`` is where torch runs it (minilm and sentence-transformers folders); the other baselines have CPU
    engines and ignore it. Trained UniVaR models are resolved one level up, by :func:`univar.registry.get_encoder`,
    which knows both.
    """
    if "+" in spec and all(part in NAMED for part in spec.split("+")):
        return ConcatEncoder([baseline_encoder(part, device) for part in spec.split("+")])
    if spec in NAMED:
        try:
            return NAMED[spec](device) if spec in ON_DEVICE else NAMED[spec]()
        except ImportError as exc:
            raise UnivarError(f"encoder {spec!r} needs a package that is not installed ({exc.name})") from None
    path = Path(spec)
    if path.is_dir():
        if (path / "univar.json").exists():
            raise UnivarError(f"{spec} is a univar model, not a base encoder; load it with univar.get_encoder")
        if (path / "modules.json").exists() or (path / "config.json").exists():
            return SentenceTransformerEncoder(path, device=device)
        raise UnivarError(f"{spec} is neither a univar model nor a sentence-transformers folder")
    known = ", ".join(["univar", *BASELINES])
    raise UnivarError(f"unknown encoder {spec!r} (expected one of {known}, or a model directory)")
