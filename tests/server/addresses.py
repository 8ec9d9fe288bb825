"""Requests from other client addresses than the test client's 127.0.0.1 (issue 16, F2/F3).

Linux routes all of 127.0.0.0/8 to loopback, so a connection bound to 127.0.0.2 really comes
from that address: the server's `request.remote` says so, with no header to trust.
"""

from __future__ import annotations

from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient


async def post_from(
    client: TestClient[Any, Any], address: str, path: str, **kwargs: Any
) -> tuple[int, dict[str, str], Any]:
    """POST `path` to the test server from `address`; (status, headers, JSON body or None)."""
    connector = aiohttp.TCPConnector(local_addr=(address, 0), force_close=True)
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.post(client.make_url(path), **kwargs) as resp,
    ):
        body = await resp.json(content_type=None) if resp.content_length != 0 else None
        return resp.status, dict(resp.headers), body
