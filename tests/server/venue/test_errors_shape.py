"""Every error of the venue API has the one RFC 9457 shape, with the security headers."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aiohttp import ClientResponse

from server.problems import PROBLEM_TYPE_BASE
from server.venue.app import SECURITY_HEADERS
from tests.server.conftest import START, VenueKit, id_number


async def check_problem(resp: ClientResponse, status: int, secrets: tuple[str, ...] = ()) -> None:
    text = await resp.text()
    assert resp.status == status, text
    assert resp.content_type == "application/problem+json"
    body: dict[str, Any] = await resp.json()
    assert {"type", "title", "status", "detail"} <= set(body)
    assert body["status"] == status
    assert body["type"].startswith(PROBLEM_TYPE_BASE)
    assert body["title"] and body["detail"].strip()
    for name in SECURITY_HEADERS:
        assert name in resp.headers, name
    if resp.url.path.startswith("/api/"):
        assert resp.headers["Cache-Control"] == "no-store"
    for secret in secrets:
        assert secret not in text


async def test_error_paths_share_one_shape(venue_kit: VenueKit) -> None:
    """404, 405, 400, 401, 403, 409, 413, 422 and 429 replies are problem+json, never leak
    the token or ID number, and carry the security headers."""
    kit = venue_kit
    client = kit.client
    await check_problem(await client.get("/api/v1/nothing-here"), 404)
    await check_problem(await client.delete("/api/v1/attempt"), 405)
    await check_problem(await client.get("/api/v1/attempt"), 401)
    await check_problem(await client.post("/api/v1/staff/ceremony", json={}), 401)
    await check_problem(
        await client.post(
            "/api/v1/candidate/login", data=b"{nope", headers={"Content-Type": "application/json"}
        ),
        400,
    )
    # Before the import the session is not ready: 409.
    resp = await client.post(
        "/api/v1/candidate/login", json={"ticket": "T0001", "id_number": id_number(1)}
    )
    await check_problem(resp, 409, (id_number(1),))
    await kit.unlock()
    c = await kit.login_candidate(1)
    await check_problem(await client.get("/api/v1/attempt/paper", headers=c.auth), 409, (c.token,))
    kit.clock.set(START + timedelta(minutes=2))
    await check_problem(
        await client.put("/api/v1/attempt/responses", data=b"x" * 300_000, headers=c.auth), 413
    )
    await check_problem(
        await client.put("/api/v1/attempt/responses", json={"seq": "a"}, headers=c.auth), 422
    )
    inv = await kit.as_staff("inv1")
    await check_problem(
        await client.post("/api/v1/staff/ceremony", json={"session_id": "S1"}, headers=inv), 403
    )
    for _ in range(20):
        await client.post("/api/v1/candidate/login", json={"ticket": "T0002", "id_number": "0"})
    await check_problem(
        await client.post("/api/v1/candidate/login", json={"ticket": "T0002", "id_number": "0"}),
        429,
    )


async def test_success_replies_carry_the_security_headers(venue_kit: VenueKit) -> None:
    """Replies set a CSP without inline script, and API data is never cached."""
    resp = await venue_kit.client.get("/ping")
    csp = resp.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert resp.headers["X-Frame-Options"] == "DENY"
    api = await venue_kit.client.get("/api/v1/openapi.json")
    assert api.headers["Cache-Control"] == "no-store"
