"""The OpenAPI document served at /api/v1/openapi.json matches the app's routes."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import jsonschema

from tests.server.conftest import START, VenueKit
from tests.server.openapi_checks import (
    check_bodies,
    document_paths,
    documented_operations,
    route_operations,
    schema,
)


async def test_document_lists_exactly_the_routes(venue_kit: VenueKit) -> None:
    """Every API route is in the document with its method, and nothing else is."""
    resp = await venue_kit.client.get("/api/v1/openapi.json")
    assert resp.status == 200
    doc = await resp.json()
    assert doc["openapi"].startswith("3.1")
    documented = documented_operations(doc)
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


async def test_request_bodies_are_what_the_handlers_accept(venue_kit: VenueKit) -> None:
    """Each documented body's examples pass the handler's checks; a body without a required
    field, with a field of the wrong type or past a documented limit is refused with a 4xx
    problem."""
    kit = venue_kit
    doc = await (await kit.client.get("/api/v1/openapi.json")).json()
    await kit.unlock()
    candidate = await kit.login_candidate(1)
    kit.clock.set(START + timedelta(minutes=2))
    admin_paths = ("/api/v1/staff/ceremony", "/api/v1/staff/packages")

    async def headers_for(path: str) -> dict[str, str]:
        kit.client.session.cookie_jar.clear()  # a staff login example sets a cookie
        if path.startswith("/api/v1/attempt/"):
            return candidate.auth
        if not path.startswith("/api/v1/staff/") or path == "/api/v1/staff/login":
            return {}
        shares = path == "/api/v1/staff/ceremony/shares"
        return await kit.as_staff(
            "admin" if path.startswith(admin_paths) and not shares else "chief"
        )

    sent = await check_bodies(
        kit.client,
        doc,
        headers_for,
        {"ticket": "T0001", "session_id": "S1", "room_id": "R1", "violation_id": "999"},
    )
    assert sent > 60


async def test_staff_replies_match_their_documented_schemas(venue_kit: VenueKit) -> None:
    """The ceremony, dashboard, status, audit and invigilation replies validate against the
    document, as every staff reply has a schema of its own (no bare object)."""
    kit = venue_kit
    doc = await (await kit.client.get("/api/v1/openapi.json")).json()
    bare = [
        (path, method)
        for path, ops in doc["paths"].items()
        for method, op in ops.items()
        for reply in op["responses"].values()
        for spec in reply.get("content", {}).values()
        if spec.get("schema") == {"type": "object"} and path != "/api/v1/openapi.json"
    ]
    assert bare == []
    admin, chief = await kit.as_staff("admin"), await kit.as_staff("chief")
    await kit.unlock()
    await kit.login_candidate(1)
    kit.clock.set(START + timedelta(minutes=2))
    paths = document_paths(doc)

    async def check(method: str, path: str, headers: dict[str, str], body: Any = None) -> None:
        resp = await kit.client.request(method, path, headers=headers, json=body)
        assert resp.status < 300, (path, await resp.text())
        operation = paths[(path, method.lower())]
        spec = operation["responses"][str(resp.status)]["content"]["application/json"]
        jsonschema.validate(await resp.json(), {**spec["schema"], "components": doc["components"]})

    await check("GET", "/api/v1/staff/ceremony", admin)
    await check("GET", "/api/v1/staff/dashboard", admin)
    await check("GET", "/api/v1/staff/packages", admin)
    await check("GET", "/api/v1/staff/rooms", chief)
    await check("GET", "/api/v1/staff/status", chief)
    await check("GET", "/api/v1/staff/rooms/R1/status", chief)
    await check("GET", "/api/v1/staff/audit", chief)
    await check("GET", "/api/v1/staff/me", chief)
    await check("POST", "/api/v1/staff/candidates/T0001/incidents", chief, {"kind": "other"})
    await check("POST", "/api/v1/staff/candidates/T0001/violations", chief,
                {"kind": "other", "text": "x"})  # fmt: skip
    await check("POST", "/api/v1/staff/candidates/T0001/time-grants", chief,
                {"granted_ms": 1000, "reason": "x"})  # fmt: skip
    await check("POST", "/api/v1/staff/candidates/T0002/seat", chief,
                {"room_id": "R1", "seat_no": 55, "reason": "x"})  # fmt: skip
    await check("POST", "/api/v1/staff/candidates/T0003/absent", chief)
    await check("POST", "/api/v1/staff/pauses", chief, {"room_id": "R1", "reason": "x"})
    await check("POST", "/api/v1/staff/pauses/resume", chief, {"room_id": "R1"})
    await check("GET", "/ping", {})
    await check("POST", "/api/v1/staff/logout", chief)
