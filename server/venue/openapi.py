"""The OpenAPI 3.1 document of the venue server's JSON API, served at /api/v1/openapi.json.

The document is a checked-in file (`openapi.json` beside this module), written for people and
client generators; a test compares its paths and methods with the app's routes, so a route
cannot be added or removed without the document following (`server.openapi` serves it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from server.openapi import document_routes, load_document

DOCUMENT = Path(__file__).with_name("openapi.json")
routes = document_routes(DOCUMENT)


def document() -> dict[str, Any]:
    """The parsed OpenAPI document (read once)."""
    return load_document(DOCUMENT)
