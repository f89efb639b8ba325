"""The input policy (core.inputs), as properties: anything it passes PostgreSQL can store as text and jsonb,
anything it refuses is named by its path, and text cleaned for storage keeps everything else."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ragapi.core import inputs
from ragapi.core.errors import InvalidInput

# Every code point Python strings can hold, lone surrogates and NUL included.
any_text = st.text(alphabet=st.characters(codec=None, min_codepoint=0), max_size=40)
any_number = st.one_of(st.integers(min_value=-(2**70), max_value=2**70), st.floats(allow_nan=True))
json_like = st.recursive(
    st.none() | st.booleans() | any_number | any_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(any_text, inner, max_size=4),
    max_leaves=20,
)


def storable(value: Any) -> bool:
    """What PostgreSQL accepts: UTF-8 without NUL (text and jsonb), finite numbers, 64-bit integers."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return "\x00" not in value
    if isinstance(value, bool) or value is None:
        return True
    if isinstance(value, int):
        return -(2**63) <= value < 2**63
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(storable(k) and storable(v) for k, v in value.items())
    return all(storable(v) for v in value)


@settings(max_examples=400, deadline=None)
@given(json_like)
def test_the_policy_passes_exactly_what_postgres_can_store(value: Any) -> None:
    assert (inputs.problem(value) is None) == storable(value)


plain_keys = st.recursive(
    st.none() | st.booleans() | any_number | any_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from("abc"), inner, max_size=3),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from("abc"), plain_keys, min_size=1, max_size=3))
def test_a_refusal_names_the_path_to_the_bad_value(value: dict[str, Any]) -> None:
    found = inputs.problem(value)
    if found is None:
        return
    where, _ = found
    node: Any = value
    for step in where.split("."):
        node = node[int(step)] if isinstance(node, list) else node[step]
    assert not storable(node)
    with pytest.raises(InvalidInput) as refused:
        inputs.check(value, "metadata")
    assert refused.value.detail.startswith(f"metadata.{where} ")


@settings(max_examples=300, deadline=None)
@given(any_text)
def test_cleaned_text_is_storable_and_keeps_every_other_character(text: str) -> None:
    cleaned, removed = inputs.strip_text(text)
    assert storable(cleaned)
    assert removed == len(text) - len(cleaned)
    assert cleaned == "".join(c for c in text if c != "\x00" and not 0xD800 <= ord(c) <= 0xDFFF)


def test_nesting_is_bounded() -> None:
    deep: Any = "leaf"
    for _ in range(inputs.MAX_DEPTH + 1):
        deep = {"k": deep}
    found = inputs.problem(deep)
    assert found is not None and "nested more than" in found[1]
    shallow: Any = "leaf"
    for _ in range(inputs.MAX_DEPTH):
        shallow = [shallow]
    assert inputs.problem(shallow) is None


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ('{"a": "x\\u0000y"}', "NUL"),
        ('{"a": ["ok", "\\ud800"]}', "lone surrogate"),
        ('{"a": NaN}', "not a finite number"),
        ('{"a": -Infinity}', "not a finite number"),
        ('{"a": 1e400}', "not a finite number"),
        ('{"a": 99999999999999999999}', "64-bit"),
        ('{"\\u0000": 1}', "key"),
    ],
)
def test_what_json_decoders_accept_and_postgres_does_not(raw: str, reason: str) -> None:
    with pytest.raises(InvalidInput, match=reason):
        inputs.check(json.loads(raw), "body")
