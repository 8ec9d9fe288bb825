"""The OpenAPI document served at /api/v1/openapi.json matches the app's routes."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import jsonschema
from aiohttp import web

from tests.server.conftest import START, VenueKit


def route_operations(app: web.Application) -> set[tuple[str, str]]:
    return {
        (r.resource.canonical, r.method.lower())
        for r in app.router.routes()
        if r.method != "HEAD"
        and r.resource is not None
        and (r.resource.canonical.startswith("/api/") or r.resource.canonical == "/ping")
    }


def schema(doc: dict[str, Any], name: str) -> dict[str, Any]:
    """A component schema with its references resolvable (the whole document as root)."""
    return {"$ref": f"#/components/schemas/{name}", "components": doc["components"]}


async def test_document_lists_exactly_the_routes(venue_kit: VenueKit) -> None:
    """Every API route is in the document with its method, and nothing else is."""
    resp = await venue_kit.client.get("/api/v1/openapi.json")
    assert resp.status == 200
    doc = await resp.json()
    assert doc["openapi"].startswith("3.1")
    documented = {(path, method) for path, ops in doc["paths"].items() for method in ops}
    assert documented == route_operations(venue_kit.app)
    names = {op["operationId"] for ops in doc["paths"].values() for op in ops.values()}
    assert len(names) == len(documented)


async def test_candidate_replies_match_their_documented_schemas(venue_kit: VenueKit) -> None:
    """Login, status, paper, save, submit and an error reply validate against the document."""
    kit = venue_kit
    doc = await (await kit.client.get("/api/v1/openapi.json")).json()
    await kit.unlock()
    resp = await kit.client.post(
        "/api/v1/candidate/login", json={"ticket": "T0001", "id_number": "110101199001010001"}
    )
    login = await resp.json()
    jsonschema.validate(login, schema(doc, "LoginResult"))
    auth = {"Authorization": f"Bearer {login['token']}"}
    kit.clock.set(START + timedelta(minutes=106))
    paper = await (await kit.client.get("/api/v1/attempt/paper", headers=auth)).json()
    jsonschema.validate(paper, schema(doc, "Paper"))
    item = paper["sections"][0]["items"][0]
    answer = [o["id"] for o in item.get("options", [])][:1] if "options" in item else "text"
    if item["type"] == "fill_blank":
        answer = ["x"] * len(item["blanks"])
    ack = await kit.client.put(
        "/api/v1/attempt/responses",
        json={"seq": 1, "responses": {item["id"]: answer}},
        headers=auth,
    )
    jsonschema.validate(await ack.json(), schema(doc, "Ack"))
    status = await (await kit.client.get("/api/v1/attempt", headers=auth)).json()
    jsonschema.validate(status, schema(doc, "Attempt"))
    receipt = await (await kit.client.post("/api/v1/attempt/submit", headers=auth)).json()
    jsonschema.validate(receipt, schema(doc, "Receipt"))
    problem = await (await kit.client.post("/api/v1/attempt/submit", headers=auth)).json()
    jsonschema.validate(problem, schema(doc, "Problem"))
