"""Every error of the venue API has the one RFC 9457 shape, with the security headers."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aiohttp import ClientResponse

from server.problems import PROBLEM_TYPE_BASE
from server.venue.app import SECURITY_HEADERS
from tests.server.conftest import SESSION_ID, START, VenueKit, id_number


async def check_problem(
    resp: ClientResponse, status: int, secrets: tuple[str, ...] = (), slug: str | None = None
) -> None:
    text = await resp.text()
    assert resp.status == status, text
    assert resp.content_type == "application/problem+json"
    body: dict[str, Any] = await resp.json()
    assert {"type", "title", "status", "detail"} <= set(body)
    assert body["status"] == status
    assert body["type"].startswith(PROBLEM_TYPE_BASE)
    if slug is not None:
        assert body["type"] == PROBLEM_TYPE_BASE + slug, body
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
    not_allowed = await client.delete("/api/v1/attempt")
    await check_problem(not_allowed, 405)
    assert "GET" in not_allowed.headers["Allow"]  # RFC 9110: a 405 lists the methods
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
        slug="too-many-attempts",
    )


async def test_success_replies_carry_the_security_headers(venue_kit: VenueKit) -> None:
    """Replies set a CSP without inline script, and API data is never cached."""
    resp = await venue_kit.client.get("/ping")
    csp = resp.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert resp.headers["X-Frame-Options"] == "DENY"
    api = await venue_kit.client.get("/api/v1/openapi.json")
    assert api.headers["Cache-Control"] == "no-store"


async def test_domain_refusals_reach_the_client_with_their_status_and_slug(
    venue_kit: VenueKit,
) -> None:
    """Refusals raised as typed domain errors below the handlers (session not ready, no
    package, unknown candidate, not logged in, not paused, a bad answer, an unknown token,
    a failed login, a submitted attempt) come out of the one middleware as problem+json with
    the status and slug clients have always seen."""
    kit = venue_kit
    client = kit.client
    login = "/api/v1/candidate/login"
    first = {"ticket": "T0001", "id_number": id_number(1)}
    await check_problem(await client.post(login, json=first), 409, slug="session-not-ready")
    admin = await kit.as_staff("admin")
    await check_problem(
        await client.post("/api/v1/staff/ceremony", json={"session_id": SESSION_ID}, headers=admin),
        409,
        slug="no-package",
    )
    await kit.unlock()
    inv = await kit.as_staff("inv1")
    staff_api = "/api/v1/staff/candidates"
    grant = {"granted_ms": 60_000, "reason": "machine failure"}
    await check_problem(
        await client.post(f"{staff_api}/T9999/time-grants", json=grant, headers=inv),
        404,
        slug="unknown-candidate",
    )
    await check_problem(
        await client.post(f"{staff_api}/T0002/time-grants", json=grant, headers=inv),
        409,
        slug="not-logged-in",
    )
    await check_problem(
        await client.post("/api/v1/staff/pauses/resume", json={"room_id": "R1"}, headers=inv),
        409,
        slug="not-paused",
    )
    await check_problem(
        await client.post(f"{staff_api}/T0002/incidents", json={"kind": "x"}, headers=inv),
        422,
        slug="invalid-field",
    )
    move = {"room_id": "R1", "seat_no": 3, "reason": "machine failure"}
    await check_problem(
        await client.post(f"{staff_api}/T0002/seat", json=move, headers=inv),
        409,
        slug="seat-taken",
    )
    await check_problem(
        await client.post(f"{staff_api}/T0002/seat", json={**move, "room_id": "R9"}, headers=inv),
        422,
        slug="unknown-room",
    )
    pause = {"room_id": "R1", "reason": "fire alarm"}
    assert (await client.post("/api/v1/staff/pauses", json=pause, headers=inv)).status == 200
    await check_problem(
        await client.post("/api/v1/staff/pauses", json=pause, headers=inv),
        409,
        slug="already-paused",
    )
    resume = await client.post("/api/v1/staff/pauses/resume", json=pause, headers=inv)
    assert resume.status == 200
    chief = await kit.as_staff("chief")
    await check_problem(
        await client.post(
            "/api/v1/staff/sessions/NOPE/delay",
            json={"delay_minutes": 5, "reason": "late bus"},
            headers=chief,
        ),
        404,
        slug="unknown-session",
    )
    wrong = {"ticket": "T0002", "id_number": "nope"}
    await check_problem(await client.post(login, json=wrong), 401, slug="login-failed")
    c = await kit.login_candidate(1)
    kit.clock.set(START + timedelta(minutes=2))
    save = "/api/v1/attempt/responses"
    await check_problem(
        await client.put(save, json={"seq": 1, "responses": {"x": 5}}, headers=c.auth),
        422,
        (c.token,),
        slug="invalid-answer",
    )
    await check_problem(
        await client.put(save, json={"seq": 1, "responses": {"x": ["y"]}}, headers=c.auth),
        422,
        (c.token,),
        slug="unknown-item",
    )
    await check_problem(
        await client.post(f"{staff_api}/T0001/absent", headers=inv), 409, slug="candidate-present"
    )
    kit.clock.set(START + timedelta(hours=10))  # past the sealed period and the end
    await check_problem(
        await client.put(save, json={"seq": 1, "responses": {}}, headers=c.auth),
        409,
        (c.token,),
        slug="time-up",
    )
