"""The HTTP edge's request parsing, shared by every handler of both servers.

A handler reads its body with `read_json_object` and its fields with `require_field`; both
raise `Problem` (the edge's own error: 400, 413 or 422 with a slug), which the problem
middleware turns into problem+json. Domain code never sees a request, so it never needs these.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from paperpack.canonical import strict_loads
from server.problems import Problem

# A lone surrogate is not Unicode (no store can encode it) and PostgreSQL text cannot hold NUL;
# neither belongs in anything a person types. Both were 500s (found by schemathesis).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def parse_json(body: bytes | bytearray | str) -> Any:
    """`json.loads(body)`, or ValueError also when a string in it (a key or a value) holds a
    lone surrogate or NUL, it nests deeper than the parser can follow, or an object names a key
    twice (`DuplicateKey`: issue 16, F11)."""
    try:
        value = strict_loads(body)
    except RecursionError:
        raise ValueError("the JSON nests too deeply") from None
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _UNSTORABLE.search(item):
                raise ValueError("a string holds a lone surrogate or NUL: send plain text")
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return value


async def read_json_object(request: web.Request, max_bytes: int) -> dict[str, Any]:
    """The request body as a JSON object, or a Problem: 413 if larger than `max_bytes`,
    400 if not JSON or not an object."""
    length = request.content_length
    if length is not None and length > max_bytes:
        raise _too_large(max_bytes)
    body: bytes | bytearray
    if length is not None:  # the parser holds the body to exactly this length
        body = await request.read()
    else:  # chunked: count as it arrives
        body = bytearray()
        async for chunk in request.content.iter_chunked(65536):
            body += chunk
            if len(body) > max_bytes:
                raise _too_large(max_bytes)
    try:
        value = parse_json(body)
    except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise Problem(400, "malformed-json", f"the body is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise Problem(400, "malformed-json", "the body must be a JSON object")
    return value


def _too_large(max_bytes: int) -> Problem:
    return Problem(
        413, "too-large", f"the body is larger than {max_bytes} bytes; send smaller batches"
    )


def require_field(body: Mapping[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    """`body[name]` if it has the JSON type `kind`, else a Problem 422 naming the field."""
    value = body.get(name)
    if value is None or not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise Problem(422, "invalid-field", f"field {name!r} is missing or not a {names}")
    return value
