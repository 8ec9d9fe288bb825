"""Canonical JSON: the one byte form that is hashed and signed.

Sorted keys, no insignificant whitespace, UTF-8 (not \\u escapes), no NaN/Infinity.
Two equal documents always give the same bytes, so a hash or signature over them is stable.

`strict_loads` is how a signed or parsed document is read: a key twice in one object is refused
(`DuplicateKey`), since readers that keep the first and readers that keep the last would see two
different documents behind one signature (issue 16, F11).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import orjson


def canonical_json(value: Any) -> bytes:
    """Serialise `value` to canonical JSON bytes."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def canonical_hash(value: Any) -> str:
    """Hex SHA-256 of the canonical JSON of `value`."""
    return hashlib.sha256(canonical_json(value)).hexdigest()


def quick_canonical_json(value: Any) -> bytes:
    """`canonical_json` written with orjson, several times faster on answers and journals.

    The bytes are the same as `canonical_json`'s for every value made of dicts with string
    keys, lists, strings, integers, booleans and null (answers, tokens, journal links: a
    property test pins it). Floats may be written differently (orjson writes 1e16 where json
    writes 1e+16), so a caller that finds a mismatch must confirm it with the definition.
    """
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # a shape orjson refuses (orjson.JSONEncodeError too): the definition
        return canonical_json(value)


def quick_canonical_hash(value: Any) -> str:
    """`canonical_hash` over `quick_canonical_json` (same caveat: confirm a mismatch)."""
    return hashlib.sha256(quick_canonical_json(value)).hexdigest()


class DuplicateKey(ValueError):
    """A JSON object names the same key twice. A ValueError, so every reader's handler of
    malformed JSON catches it; readers name the key in their own typed error."""

    def __init__(self, key: str) -> None:
        super().__init__(f"the key {key!r} appears twice in one object")
        self.key = key


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise DuplicateKey(key)
            seen.add(key)
    return out


_STRICT = json.JSONDecoder(object_pairs_hook=_unique)  # built once: every request body uses it


def strict_loads(data: str | bytes | bytearray) -> Any:
    """`json.loads(data)`, but DuplicateKey when an object names a key twice."""
    if not isinstance(data, str):  # as json.loads decodes bytes
        data = bytes(data).decode(json.detect_encoding(data), "surrogatepass")
    elif data.startswith("\ufeff"):  # as json.loads refuses it
        raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", data, 0)
    return _STRICT.decode(data)
