"""univar: measure the human values that LLMs express, as high-dimensional embeddings (UniVaR)."""

__version__ = "0.1.0"
