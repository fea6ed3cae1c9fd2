"""UniVaR value encoder: multi-view contrastive training (set and concat views), saving and loading.

Public API: :class:`UniVaR` (load a model, encode QAs, views and LLMs), :func:`load_encoder` and
:func:`shipped_model_path` (used by ``univar.encoders.get_encoder``), :func:`train` with :class:`TrainConfig`.
"""

from univar.model.api import UniVaR, UniVaREncoder, load_encoder, shipped_model_path
from univar.model.train import TrainConfig, TrainResult, train

__all__ = ["UniVaR", "UniVaREncoder", "TrainConfig", "TrainResult", "load_encoder", "shipped_model_path", "train"]
