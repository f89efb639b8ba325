"""The model's tokenizer: text to the word pieces it reads, one text at a time, unpadded."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported when the model is loaded, not when the API imports this package
    from tokenizers import Tokenizer


def load_tokenizer(path: Path, max_tokens: int) -> Tokenizer:
    """The tokenizer at `path`, truncating at `max_tokens` word pieces (longer input is cut, not
    rejected) and padding nothing: `MiniLM` pads each batch to its own longest text."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.enable_truncation(max_length=max_tokens)
    tokenizer.no_padding()
    return tokenizer
