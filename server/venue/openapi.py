"""The OpenAPI 3.1 document of the venue server's JSON API, served at /api/v1/openapi.json.

The document is a checked-in file (`openapi.json` beside this module), written for people and
client generators; a test compares its paths and methods with the app's routes, so a route
cannot be added or removed without the document following.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from aiohttp import web

DOCUMENT = Path(__file__).with_name("openapi.json")
routes = web.RouteTableDef()


@cache
def document() -> dict[str, Any]:
    """The parsed OpenAPI document (read once)."""
    value: dict[str, Any] = json.loads(DOCUMENT.read_text(encoding="utf-8"))
    return value


@routes.get("/api/v1/openapi.json", name="openapi")
async def get_openapi(request: web.Request) -> web.Response:
    """The OpenAPI document of this server's API."""
    return web.json_response(document())
