"""The quick canonical hash (orjson) against the definition (json), byte for byte."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from paperpack.canonical import canonical_hash, canonical_json, quick_canonical_hash

# JSON without floats: what answers, tokens and receipts are made of. Text is any Unicode
# without lone surrogates (neither encoder writes those), control characters included.
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)
JSON_WITHOUT_FLOATS = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | TEXT,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(TEXT, inner, max_size=5),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(JSON_WITHOUT_FLOATS)
def test_quick_hash_is_the_canonical_hash_without_floats(value):
    assert quick_canonical_hash(value) == canonical_hash(value)


def test_answers_with_escapes_and_chinese_hash_alike():
    answers = {"q2": ["b", "a"], "q1": '三十\n\t"引号" \\ \u2028 \x01', "q3": None}
    assert quick_canonical_hash(answers) == canonical_hash(answers)


def test_floats_may_differ_so_the_definition_decides():
    """orjson writes 1e16 where json writes 1e+16: a caller confirms mismatches with
    canonical_hash (server.scoring.engine._receipt does)."""
    from server.scoring.engine import _receipt

    value = {"q1": 1e16}
    assert canonical_json(value) == b'{"q1":1e+16}'
    attempt = {"ticket": "T1"}
    assert _receipt(attempt, value, "answers-v1", canonical_hash(value)) == canonical_hash(value)


def test_a_shape_orjson_refuses_falls_back_to_the_definition():
    value = {"q1": 2**70}  # beyond 64 bits: orjson refuses, json writes it
    assert quick_canonical_hash(value) == canonical_hash(value)
