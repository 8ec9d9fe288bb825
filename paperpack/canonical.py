"""Canonical JSON: the one byte form that is hashed and signed.

Sorted keys, no insignificant whitespace, UTF-8 (not \\u escapes), no NaN/Infinity.
Two equal documents always give the same bytes, so a hash or signature over them is stable.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical_json(value: Any) -> bytes:
    """Serialise `value` to canonical JSON bytes."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def canonical_hash(value: Any) -> str:
    """Hex SHA-256 of the canonical JSON of `value`."""
    return hashlib.sha256(canonical_json(value)).hexdigest()
