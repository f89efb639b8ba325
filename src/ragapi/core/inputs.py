"""The input policy: what a value from outside may hold, wherever it enters (JSON bodies, forms, query
parameters, filters, multipart fields, LangServe inputs, the CLI).

JSON and Python accept values that PostgreSQL cannot store, and a statement that meets one fails as a
whole; so they are refused at the edge, naming where they were:
- text without NUL (U+0000: `text` and `jsonb` refuse it) and without lone UTF-16 surrogates
  (U+D800-U+DFFF: `\\ud800` is valid JSON but has no UTF-8 encoding);
- numbers finite (`NaN`, `Infinity` and `1e400`, which parses as infinity, have no `jsonb` form) and
  integers within 64 bits (the `bigint` columns);
- nesting at most MAX_DEPTH levels deep.

Text extracted from uploaded files is not refused for this: `strip_text` removes those characters and
says how many it removed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from ragapi.core.errors import InvalidInput

MAX_DEPTH = 32
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def text_problem(value: str) -> str | None:
    """Why `value` cannot be stored, or None."""
    found = _UNSTORABLE.search(value)
    if found is None:
        return None
    if found.group() == "\x00":
        return "contains a NUL character (\\u0000)"
    return f"contains a lone surrogate (\\u{ord(found.group()):04x})"


def problem(value: Any, depth: int = 0) -> tuple[str, str] | None:
    """The first place in `value` (a path such as `a.b.0`, empty for the value itself) that breaks the
    policy and why, or None. Values other than text, numbers, mappings and sequences (models already
    validated, dates, UUIDs) are left to their own validation."""
    if isinstance(value, str):
        reason = text_problem(value)
        return ("", reason) if reason else None
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return None if INT64_MIN <= value <= INT64_MAX else ("", "is an integer outside the 64-bit range")
    if isinstance(value, float):
        return None if math.isfinite(value) else ("", "is not a finite number")
    if isinstance(value, Mapping | list | tuple):
        if depth >= MAX_DEPTH:
            return ("", f"is nested more than {MAX_DEPTH} levels deep")
        for key, item in _children(value):
            key_reason = text_problem(key) if isinstance(key, str) else None
            if key_reason:
                return (shown(key), f"has a key that {key_reason}")
            found = problem(item, depth + 1)
            if found is not None:
                where, reason = found
                return (f"{shown(key)}.{where}" if where else shown(key), reason)
    return None


def shown(key: object) -> str:
    """A key as a message may quote it: what cannot be stored (or even encoded) as an escape."""
    return _UNSTORABLE.sub(lambda found: f"\\u{ord(found.group()):04x}", str(key))


def _children(value: Mapping[Any, Any] | Sequence[Any]) -> list[tuple[Any, Any]]:
    return list(value.items()) if isinstance(value, Mapping) else list(enumerate(value))


def describe(where: str, found: tuple[str, str]) -> str:
    """`field.inner.path contains ...`: the message for a problem found inside `where`."""
    inner, reason = found
    path = ".".join(p for p in (where, inner) if p)
    return f"{path} {reason}" if path else reason


def check(value: Any, where: str) -> Any:
    """`value` if it follows the policy; else InvalidInput naming the place (`where` is the field)."""
    found = problem(value)
    if found is not None:
        raise InvalidInput(describe(where, found), where)
    return value


def strip_text(value: str) -> tuple[str, int]:
    """`value` without the characters PostgreSQL cannot store, and how many there were."""
    cleaned, removed = _UNSTORABLE.subn("", value)
    return cleaned, removed
