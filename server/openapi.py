"""The OpenAPI 3.1 documents both servers serve at /api/v1/openapi.json.

Each server keeps its document as a checked-in file beside its app (`server/venue/openapi.json`,
`server/central/openapi.json`), written for people and client generators; a test per server
compares its paths and methods with the app's routes, another sends each documented request
body to its handler, so neither the routes nor the bodies can drift from the document.
`docs/gen_api.py` writes docs/api.md from both.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from aiohttp import web

PATH = "/api/v1/openapi.json"


@cache
def load_document(path: Path) -> dict[str, Any]:
    """The parsed OpenAPI document at `path` (read once per process)."""
    value: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return value


def document_routes(path: Path) -> web.RouteTableDef:
    """A route table serving the document at `path` as GET /api/v1/openapi.json."""
    routes = web.RouteTableDef()

    @routes.get(PATH, name="openapi")
    async def get_openapi(request: web.Request) -> web.Response:
        """The OpenAPI document of this server's API."""
        return web.json_response(load_document(path))

    return routes
