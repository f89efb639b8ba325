"""Estimated cost of one answer from a price table (USD per 1M tokens, MODEL_PRICES)."""

from __future__ import annotations


def cost_usd(
    prices: dict[str, dict[str, float]],
    model: str | None,
    prompt_tokens: int,
    completion_tokens: int,
    embedding_model: str,
    embedding_tokens: int,
) -> float:
    """Unknown models (the extractive answerer, the local ONNX embedder) cost nothing."""
    llm = prices.get(model or "", {})
    embedder = prices.get(embedding_model, {})
    total = (
        prompt_tokens * llm.get("prompt", 0.0)
        + completion_tokens * llm.get("completion", 0.0)
        + embedding_tokens * embedder.get("embedding", 0.0)
    )
    return round(total / 1_000_000, 10)
