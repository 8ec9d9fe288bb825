"""A session ends once its time is over and no attempt is open; ended sessions go home."""

from __future__ import annotations

from datetime import timedelta

from server.venue.closer import close_due_attempts
from server.venue.export import sessions_to_export
from server.venue.workspace import open_venue_db
from tests.server.conftest import SESSION_ID, START, VenueKit, id_number, ticket


def session_status(kit: VenueKit) -> str:
    db = open_venue_db(kit.directory)
    try:
        row = db.execute("SELECT status FROM sessions WHERE session_id = ?", (SESSION_ID,))
        return str(row.fetchone()[0])
    finally:
        db.close()


async def test_the_closer_ends_a_finished_session_for_the_outbox(venue_kit: VenueKit) -> None:
    """Before the end nothing ends; past it, open attempts close, then the session ends and
    is listed for export; a time grant keeps the session running until that candidate's end."""
    await venue_kit.unlock()
    venue_kit.clock.set(START + timedelta(minutes=1))
    await venue_kit.login_candidate(1)
    staff = await venue_kit.as_staff("inv1")
    resp = await venue_kit.client.post(
        "/api/v1/staff/candidates/T0001/time-grants",
        json={"granted_ms": 10 * 60_000, "reason": "PC failed"},
        headers=staff,
    )
    assert resp.status == 200, await resp.text()
    duration = timedelta(minutes=venue_kit.template.duration_minutes)

    venue_kit.clock.set(START + duration - timedelta(seconds=1))
    await close_due_attempts(venue_kit.app)
    assert session_status(venue_kit) == "unlocked"

    venue_kit.clock.set(START + duration + timedelta(minutes=5))  # T0001 still has 5 minutes
    await close_due_attempts(venue_kit.app)
    assert session_status(venue_kit) == "unlocked"
    assert sessions_to_export(venue_kit.directory) == []

    venue_kit.clock.set(START + duration + timedelta(minutes=10, seconds=1))
    assert await close_due_attempts(venue_kit.app) == 1
    assert session_status(venue_kit) == "ended"
    assert sessions_to_export(venue_kit.directory) == [SESSION_ID]


async def test_after_the_end_the_monitor_keeps_the_room_and_a_login_says_it_ended(
    venue_kit: VenueKit,
) -> None:
    """Once the session has ended, room and venue status still list every candidate with the
    final state and the counts to reconcile with; a candidate's login says the exam ended."""
    await venue_kit.unlock()
    venue_kit.clock.set(START + timedelta(minutes=1))
    await venue_kit.login_candidate(1)
    staff = await venue_kit.as_staff("inv1")
    resp = await venue_kit.client.post(
        "/api/v1/staff/candidates/T0001/incidents",
        json={"kind": "machine_failure", "text": "screen went dark"},
        headers=staff,
    )
    assert resp.status == 201, await resp.text()
    duration = timedelta(minutes=venue_kit.template.duration_minutes)
    venue_kit.clock.set(START + duration + timedelta(seconds=1))
    await close_due_attempts(venue_kit.app)
    assert session_status(venue_kit) == "ended"

    status = await (await venue_kit.client.get("/api/v1/staff/status", headers=staff)).json()
    assert status["ended"] is True and status["session_ids"] == [SESSION_ID]
    by_ticket = {c["ticket"]: c for c in status["candidates"]}
    assert len(by_ticket) == status["summary"]["candidates"] > 1
    assert by_ticket["T0001"]["incidents"] == 1
    assert by_ticket["T0001"]["status"] == "closed"  # time ran out: the server collected it
    assert status["summary"]["incidents"] == 1
    summary = status["summary"]
    assert summary["closed"] == 1 and summary["not_logged_in"] == len(by_ticket) - 1
    assert summary["submitted"] + summary["absent"] + summary["moved"] == 0
    room = by_ticket["T0001"]["room_id"]
    one = await (
        await venue_kit.client.get(f"/api/v1/staff/rooms/{room}/status", headers=staff)
    ).json()
    assert "T0001" in {c["ticket"] for c in one["candidates"]} and one["ended"] is True

    resp = await venue_kit.client.post(
        "/api/v1/candidate/login", json={"ticket": ticket(2), "id_number": id_number(2)}
    )
    assert resp.status == 403, await resp.text()
    body = await resp.json()
    assert body["type"].endswith("/exam-ended") and body["ended_at"]
    resp = await venue_kit.client.post(
        "/api/v1/candidate/login", json={"ticket": ticket(2), "id_number": "X" * 18}
    )
    assert (await resp.json())["type"].endswith("/login-failed")  # a wrong ID still says so
