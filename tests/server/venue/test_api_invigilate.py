"""The invigilator API: absences, incidents, violations, start delays and the closing task."""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from paperpack.approval import issue_delay_approval
from paperpack.authority import load_authority
from paperpack.canonical import canonical_json
from paperpack.crypto import sign
from server.store import transaction
from server.venue.workspace import open_venue_db
from tests.server.conftest import (
    SESSION_ID,
    START,
    VENUE_ID,
    VenueKit,
    VenueTemplate,
    id_number,
    start_venue,
    ticket,
)


def rows(kit: VenueKit, sql: str) -> list[Any]:
    db = open_venue_db(kit.directory)
    with transaction(db):
        found = db.execute(sql).fetchall()
    db.close()
    return found


async def test_absent_candidate_cannot_log_in(venue_kit: VenueKit) -> None:
    """A candidate marked absent is refused at login with the reason; a present one cannot be
    marked absent."""
    kit = venue_kit
    await kit.import_package()
    inv = await kit.as_staff("inv1")
    resp = await kit.client.post(f"/api/v1/staff/candidates/{ticket(9)}/absent", headers=inv)
    assert resp.status == 200, await resp.text()
    login = await kit.client.post(
        "/api/v1/candidate/login", json={"ticket": ticket(9), "id_number": id_number(9)}
    )
    assert login.status == 403
    assert (await login.json())["type"].endswith("/marked-absent")
    await kit.login_candidate(1)
    resp = await kit.client.post(f"/api/v1/staff/candidates/{ticket(1)}/absent", headers=inv)
    assert resp.status == 409


async def test_incidents_and_violations_take_a_kind_from_the_list(venue_kit: VenueKit) -> None:
    """An incident or violation of a listed kind is recorded and audited; others are refused."""
    kit = venue_kit
    await kit.import_package()
    chief = await kit.as_staff("chief")
    path = f"/api/v1/staff/candidates/{ticket(2)}"
    bad = await kit.client.post(
        f"{path}/violations", json={"kind": "cheating?", "text": "x"}, headers=chief
    )
    assert bad.status == 422
    assert "copying" in (await bad.json())["detail"]
    ok = await kit.client.post(
        f"{path}/violations",
        json={"kind": "copying", "text": "looked at neighbour"},
        headers=chief,
    )
    assert ok.status == 201
    ok = await kit.client.post(
        f"{path}/incidents", json={"kind": "machine_failure", "text": "froze"}, headers=chief
    )
    assert ok.status == 201
    assert rows(kit, "SELECT ticket, kind FROM violations") == [(ticket(2), "copying")]
    assert rows(kit, "SELECT room_id, kind FROM incidents") == [("R1", "machine_failure")]
    actions = {r[0] for r in rows(kit, "SELECT action FROM audit_events")}
    assert {"violation.recorded", "incident.recorded"} <= actions


async def test_start_delay_over_thirty_minutes_needs_the_centres_approval(
    venue_kit: VenueKit,
) -> None:
    """30 minutes on the venue's authority moves the start; 45 needs the centre's approval
    code (forged, expired or for another delay: refused), and with it the start moves again."""
    kit = venue_kit
    await kit.import_package()
    chief = await kit.as_staff("chief")
    path = f"/api/v1/staff/sessions/{SESSION_ID}/delay"
    resp = await kit.client.post(path, json={"delay_minutes": 30, "reason": "r"}, headers=chief)
    assert resp.status == 200
    c = await kit.login_candidate(1)
    assert c.attempt["starts_at"] == "2026-06-01T09:30:00.000Z"
    resp = await kit.client.post(path, json={"delay_minutes": 45, "reason": "r"}, headers=chief)
    assert resp.status == 403
    assert (await resp.json())["type"].endswith("/delay-needs-approval")
    authority = load_authority(kit.template.authority_dir)
    now = kit.clock.now()
    code = issue_delay_approval(authority, SESSION_ID, VENUE_ID, 45, now=now)
    forged = base64.b64encode(bytes(64)).decode()
    resp = await kit.client.post(
        path, json={"delay_minutes": 45, "reason": "r", "approval": forged}, headers=chief
    )
    assert (await resp.json())["type"].endswith("/delay-approval-invalid")
    expired = issue_delay_approval(
        authority,
        SESSION_ID,
        VENUE_ID,
        45,
        valid_for=timedelta(minutes=1),
        now=now - timedelta(minutes=1),
    )
    resp = await kit.client.post(
        path, json={"delay_minutes": 45, "reason": "r", "approval": expired}, headers=chief
    )
    assert resp.status == 403
    assert (await resp.json())["type"].endswith("/delay-approval-expired")
    other_delay = issue_delay_approval(authority, SESSION_ID, VENUE_ID, 60, now=now)
    resp = await kit.client.post(
        path, json={"delay_minutes": 45, "reason": "r", "approval": other_delay}, headers=chief
    )
    assert (await resp.json())["type"].endswith("/delay-approval-mismatch")
    # An approval the centre signed for another package (an earlier pack of this session).
    document = json.loads(base64.b64decode(code)) | {"package_id": "ab" * 16}
    del document["signature"]
    signature = sign(authority.signing_key, "delay-approval", canonical_json(document))
    document["signature"] = base64.b64encode(signature).decode()
    other_package = base64.b64encode(canonical_json(document)).decode()
    resp = await kit.client.post(
        path, json={"delay_minutes": 45, "reason": "r", "approval": other_package}, headers=chief
    )
    assert resp.status == 403
    problem = await resp.json()
    assert problem["type"].endswith("/delay-approval-mismatch")
    assert "for package abababababab..." in problem["detail"]
    resp = await kit.client.post(
        path, json={"delay_minutes": 45, "reason": "r", "approval": code}, headers=chief
    )
    assert resp.status == 200, await resp.text()
    status = await (await kit.client.get("/api/v1/attempt", headers=c.auth)).json()
    assert status["starts_at"] == "2026-06-01T09:45:00.000Z"


async def test_the_closing_task_runs_in_the_background(
    venue_template: VenueTemplate, tmp_path: Path, aiohttp_client: Any
) -> None:
    """With the server's closer running, an attempt is closed soon after its end."""
    kit = await start_venue(venue_template, tmp_path, aiohttp_client, close_interval_s=0.05)
    await kit.unlock()
    c = await kit.login_candidate(1)
    kit.clock.set(START + timedelta(minutes=120))
    for _ in range(100):
        status = await (await kit.client.get("/api/v1/attempt", headers=c.auth)).json()
        if status["status"] == "closed":
            break
        await asyncio.sleep(0.05)
    assert status["status"] == "closed"
    assert rows(kit, "SELECT how FROM submissions") == [("time_up",)]
