"""The authorization matrix: every API endpoint x every kind of caller, allowed or refused.

Callers: anonymous, a candidate (bearer token), the system administrator, the chief examiner
and an invigilator (cookie + CSRF). A new route without a row here fails the test, so no
endpoint ships unchecked. Candidates never name an attempt: each sees only their own.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aiohttp import web

from tests.server.conftest import SESSION_ID, START, VenueKit

ANON, CAND, ADMIN, CHIEF, INV = "anonymous", "candidate", "admin", "chief", "inv1"
STAFF_ALL = {ADMIN, CHIEF, INV}
EVERYONE = {ANON, CAND, ADMIN, CHIEF, INV}

# route name -> (method, path, JSON body, callers allowed)
MATRIX: dict[str, tuple[str, str, Any, set[str]]] = {
    "ping": ("GET", "/ping", None, EVERYONE),
    "openapi": ("GET", "/api/v1/openapi.json", None, EVERYONE),
    "staff_login": ("POST", "/api/v1/staff/login", {"login": "x", "password": "y"}, EVERYONE),
    "candidate_login": (
        "POST",
        "/api/v1/candidate/login",
        {"ticket": "T0009", "id_number": "1"},
        EVERYONE,
    ),
    "staff_me": ("GET", "/api/v1/staff/me", None, STAFF_ALL),
    "staff_logout": ("POST", "/api/v1/staff/logout", {}, STAFF_ALL),
    "attempt": ("GET", "/api/v1/attempt", None, {CAND}),
    "heartbeat": ("POST", "/api/v1/attempt/heartbeat", {}, {CAND}),
    "paper": ("GET", "/api/v1/attempt/paper", None, {CAND}),
    "responses": ("PUT", "/api/v1/attempt/responses", {"seq": 1, "responses": {}}, {CAND}),
    "submit": ("POST", "/api/v1/attempt/submit", {}, {CAND}),
    "saved_responses": ("GET", "/api/v1/attempt/responses", None, {CAND}),
    "attempt_asset": ("GET", "/api/v1/attempt/assets/none.png", None, {CAND}),
    "venue_status": ("GET", "/api/v1/staff/status", None, STAFF_ALL),
    "room_status": ("GET", "/api/v1/staff/rooms/R1/status", None, STAFF_ALL),
    "mark_absent": ("POST", "/api/v1/staff/candidates/T0050/absent", {}, {CHIEF, INV}),
    "record_incident": (
        "POST",
        "/api/v1/staff/candidates/T0001/incidents",
        {"kind": "other", "text": "t"},
        {CHIEF, INV},
    ),
    "record_violation": (
        "POST",
        "/api/v1/staff/candidates/T0001/violations",
        {"kind": "other", "text": "t"},
        {CHIEF, INV},
    ),
    "confirm_violation": (
        "POST",
        "/api/v1/staff/violations/999/confirm",
        {"handling": "record_only"},
        {CHIEF},
    ),
    "grant_time": (
        "POST",
        "/api/v1/staff/candidates/T0001/time-grants",
        {"granted_ms": 1000, "reason": "r"},
        {CHIEF, INV},
    ),
    "move_seat": (
        "POST",
        "/api/v1/staff/candidates/T0001/seat",
        {"room_id": "R1", "seat_no": 0, "reason": "r"},
        {CHIEF, INV},
    ),
    "verify_identity": (
        "POST",
        "/api/v1/staff/candidates/T0050/identity/verify",
        {},
        {CHIEF, INV},
    ),
    "refuse_identity": (
        "POST",
        "/api/v1/staff/candidates/T0050/identity/refuse",
        {"note": "n"},
        {CHIEF, INV},
    ),
    "candidate_photo": ("GET", "/api/v1/staff/candidates/T0001/photo", None, STAFF_ALL),
    "grant_room_time": (
        "POST",
        "/api/v1/staff/rooms/R9/time-grants",
        {"granted_ms": 1000, "reason": "r"},
        {CHIEF, INV},
    ),
    "time_changes": ("GET", "/api/v1/staff/time-changes", None, STAFF_ALL),
    "pause": ("POST", "/api/v1/staff/pauses", {"room_id": "R9", "reason": "r"}, {CHIEF, INV}),
    "resume": ("POST", "/api/v1/staff/pauses/resume", {"room_id": "R8"}, {CHIEF, INV}),
    "import_package": ("POST", "/api/v1/staff/packages", {"path": "/nonexistent"}, {ADMIN}),
    "packages": ("GET", "/api/v1/staff/packages", None, STAFF_ALL),
    "confirm_package": ("POST", "/api/v1/staff/packages/00/confirm", None, STAFF_ALL),
    "inspection": ("GET", f"/api/v1/staff/inspection?session_id={SESSION_ID}", None, STAFF_ALL),
    "sign_off_inspection": (
        "POST",
        "/api/v1/staff/inspection",
        {"session_id": "nope"},
        {ADMIN, CHIEF},
    ),
    "open_ceremony": ("POST", "/api/v1/staff/ceremony", {"session_id": "nope"}, {ADMIN}),
    "ceremony": ("GET", "/api/v1/staff/ceremony", None, STAFF_ALL),
    "enter_share": ("POST", "/api/v1/staff/ceremony/shares", {"share": "x"}, {CHIEF, INV}),
    "enter_release": ("POST", "/api/v1/staff/ceremony/release", {"code": "x"}, {ADMIN, CHIEF}),
    "reset_ceremony": ("POST", "/api/v1/staff/ceremony/reset", {}, {ADMIN, CHIEF}),
    "delay_start": (
        "POST",
        f"/api/v1/staff/sessions/{SESSION_ID}/delay",
        {"delay_minutes": 0, "reason": "r"},
        {CHIEF},
    ),
    "staff_dashboard": ("GET", "/api/v1/staff/dashboard", None, STAFF_ALL),
    "staff_rooms": ("GET", "/api/v1/staff/rooms", None, STAFF_ALL),
    "staff_audit": ("GET", "/api/v1/staff/audit", None, {ADMIN, CHIEF}),
}


def api_route_names(app: web.Application) -> set[str]:
    return {
        r.name
        for r in app.router.routes()
        if r.name
        and r.method != "HEAD"
        and r.resource is not None
        and (r.resource.canonical.startswith("/api/") or r.resource.canonical == "/ping")
    }


async def headers_for(kit: VenueKit, caller: str, token: str) -> dict[str, str]:
    if caller == ANON:
        return {}
    if caller == CAND:
        return {"Authorization": f"Bearer {token}"}
    if caller not in kit.staff:  # logout ends a login: a fresh one for each use
        await kit.login_staff(caller)
    return dict(kit.staff[caller].headers)


async def test_every_endpoint_allows_exactly_its_callers(venue_kit: VenueKit) -> None:
    """Each endpoint answers its allowed callers and refuses everyone else with 401 or 403."""
    kit = venue_kit
    await kit.unlock()
    candidate = await kit.login_candidate(1)
    kit.clock.set(START + timedelta(minutes=1))
    assert api_route_names(kit.app) == set(MATRIX), "add new routes to MATRIX"
    wrong: list[str] = []
    for name, (method, path, body, allowed) in MATRIX.items():
        for caller in (ANON, CAND, ADMIN, CHIEF, INV):
            headers = await headers_for(kit, caller, candidate.token)
            resp = await kit.client.request(method, path, json=body, headers=headers)
            refused = resp.status in (401, 403) and (await resp.json())["type"].split("/")[-1] in {
                "not-logged-in",
                "forbidden-role",
                "token-ended",
                "bad-token",
            }
            if refused == (caller in allowed):
                wrong.append(f"{name} as {caller}: {resp.status} {await resp.text()}")
            if name == "staff_logout" and caller in kit.staff:
                del kit.staff[caller]
    assert not wrong, "\n".join(wrong)


async def test_state_changes_without_the_csrf_token_are_refused(venue_kit: VenueKit) -> None:
    """A logged-in invigilator's POST without X-CSRF-Token is refused and changes nothing."""
    kit = venue_kit
    await kit.unlock()
    headers = {"Cookie": (await kit.as_staff(INV))["Cookie"]}
    resp = await kit.client.post(
        "/api/v1/staff/candidates/T0001/incidents",
        json={"kind": "other", "text": "t"},
        headers=headers,
    )
    assert resp.status == 403
    assert (await resp.json())["type"].endswith("/csrf-failed")


async def test_no_candidate_reads_another_candidates_paper_or_answers(venue_kit: VenueKit) -> None:
    """A candidate's token shows only their own attempt and paper; another candidate's item
    tokens mean nothing under it, so nobody can read or write someone else's answers."""
    kit = venue_kit
    await kit.unlock()
    one, two = await kit.login_candidate(1), await kit.login_candidate(2)
    kit.clock.set(START + timedelta(minutes=1))
    paper_one = await (await kit.client.get("/api/v1/attempt/paper", headers=one.auth)).json()
    paper_two = await (await kit.client.get("/api/v1/attempt/paper", headers=two.auth)).json()
    tokens_one = {i["id"] for s in paper_one["sections"] for i in s["items"]}
    tokens_two = {i["id"] for s in paper_two["sections"] for i in s["items"]}
    assert not tokens_one & tokens_two
    status_two = await (await kit.client.get("/api/v1/attempt", headers=two.auth)).json()
    assert status_two["ticket"] == "T0002"
    item = next(i for s in paper_one["sections"] for i in s["items"] if i["type"] == "essay")
    resp = await kit.client.put(
        "/api/v1/attempt/responses",
        json={"seq": 1, "responses": {item["id"]: "x"}},
        headers=two.auth,
    )
    assert resp.status == 422
    assert (await resp.json())["type"].endswith("/unknown-item")
