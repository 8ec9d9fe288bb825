"""The central server's OpenAPI document (/api/v1/openapi.json) matches its routes, its
request bodies are what the handlers accept, and its replies validate against it."""

from __future__ import annotations

import hashlib
from typing import Any

import jsonschema

from paperpack.authority import Authority
from tests.server.central.conftest import Central, make_package, new_venue
from tests.server.openapi_checks import (
    check_bodies,
    documented_operations,
    route_operations,
    schema,
)


async def document(central: Central) -> dict[str, Any]:
    resp = await central.client.get("/api/v1/openapi.json")
    assert resp.status == 200
    return dict(await resp.json())


async def test_document_lists_exactly_the_routes(central: Central) -> None:
    """Every API route is in the document with its method (the upload's own HEAD too), and
    nothing else is."""
    doc = await document(central)
    assert doc["openapi"].startswith("3.1")
    documented = documented_operations(doc)
    assert documented == route_operations(central.app)
    assert ("/api/v1/uploads/{upload_id}", "head") in documented
    names = {op["operationId"] for ops in doc["paths"].values() for op in ops.values()}
    assert len(names) == len(documented)


async def test_request_bodies_are_what_the_handlers_accept(central: Central) -> None:
    """Each documented body's examples pass the handler's checks; a body without a required
    field, with a field of the wrong type or past a documented limit is refused with a 4xx
    problem."""
    venue = new_venue("V001")
    await central.register(venue)
    doc = await document(central)

    async def no_headers(path: str) -> dict[str, str]:
        return {}

    def sign(method: str, path: str, body: bytes) -> dict[str, str]:
        if not path.startswith(("/api/v1/uploads", "/api/v1/heartbeat")):
            return {}  # the release request is signed inside its body
        return central.signed(venue, method, path, hashlib.sha256(body).hexdigest())

    assert await check_bodies(central.client, doc, no_headers, {}, sign) > 20


async def test_replies_match_their_documented_schemas(
    central: Central, authority: Authority
) -> None:
    """An upload (create, chunk, offset, finish, state), the release refusal, the staff login,
    me, status and audit replies validate against the document."""
    doc = await document(central)
    client = central.client
    venue = new_venue("V001")
    await central.register(venue)
    data = make_package(venue, authority)
    digest = hashlib.sha256(data).hexdigest()
    resp = await central.create(venue, data)
    assert resp.status == 201
    jsonschema.validate(await resp.json(), schema(doc, "UploadState"))
    resp = await central.patch(venue, digest, data, 0)
    assert resp.status == 204 and resp.headers["Upload-Offset"] == str(len(data))
    path = f"/api/v1/uploads/{digest}"
    resp = await central.call(venue, "HEAD", path)
    assert resp.headers["Upload-Length"] == str(len(data))
    receipt = await (await central.call(venue, "POST", path + "/finish")).json()
    jsonschema.validate(receipt, schema(doc, "SignedReceipt"))
    state = await (await central.call(venue, "GET", path)).json()
    jsonschema.validate(state, schema(doc, "UploadState"))
    assert state["receipt"] == receipt
    refused = await client.post(
        "/api/v1/release",
        json={"session_id": "S1", "venue_id": "V9", "requested_at": "x", "signature": "AAAA"},
    )
    jsonschema.validate(await refused.json(), schema(doc, "Problem"))
    await central.add_staff("aud", "auditor")
    resp = await client.post(
        "/api/v1/staff/login", json={"login": "aud", "password": "central-pass-0123"}
    )
    login = await resp.json()
    jsonschema.validate(login, schema(doc, "StaffLoginResult"))
    csrf, cookie = login["csrf_token"], resp.cookies["cbt_central"].value
    client.session.cookie_jar.clear()
    headers = {"Cookie": f"cbt_central={cookie}; cbt_central_csrf={csrf}", "X-CSRF-Token": csrf}
    for path, name in (
        ("/api/v1/staff/me", "Me"),
        ("/api/v1/status", "Status"),
        ("/api/v1/audit", "AuditTrail"),
    ):
        resp = await client.get(path, headers=headers)
        assert resp.status == 200, await resp.text()
        jsonschema.validate(await resp.json(), schema(doc, name))


async def test_text_no_store_can_keep_is_a_400_not_a_500(central: Central) -> None:
    """A lone surrogate or NUL in a string of an upload, a login or a release request is 400
    (on PostgreSQL both were 500s; found by schemathesis)."""
    venue = new_venue("V001")
    await central.register(venue)
    json_type = {"Content-Type": "application/json"}
    for bad in (r"\ud800", r"a\u0000b"):
        for path, template, slug in (
            ("/api/v1/uploads", '{"package_sha256": "%s", "size": 1, "venue_id": "%%s"}'
             % ("ab" * 32), "bad-upload"),
            ("/api/v1/staff/login", '{"login": "%s", "password": "x"}', "malformed-json"),
            ("/api/v1/release", '{"session_id": "S1", "venue_id": "%s", "requested_at": "x",'
             ' "signature": "AAAA"}', "bad-release-request"),
        ):  # fmt: skip
            body = (template % bad).encode()
            signed = central.signed(venue, "POST", path, hashlib.sha256(body).hexdigest())
            resp = await central.client.post(path, data=body, headers={**json_type, **signed})
            assert resp.status == 400, (path, bad, await resp.text())
            assert (await resp.json())["type"].endswith("/" + slug)
