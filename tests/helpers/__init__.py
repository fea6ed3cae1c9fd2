"""Helpers the tests share: loopback LLM servers, kill-and-resume tools, a tiny sentence-transformer."""
