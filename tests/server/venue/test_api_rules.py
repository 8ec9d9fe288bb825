"""The exam rules through the candidate and invigilator API, with the clock moved by hand."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from server.store import transaction
from server.venue import closer
from server.venue.workspace import open_venue_db
from tests.server.conftest import START, Candidate, VenueKit, id_number, ticket

SECOND = timedelta(seconds=1)


async def status(kit: VenueKit, c: Candidate) -> dict[str, Any]:
    resp = await kit.client.get("/api/v1/attempt", headers=c.auth)
    assert resp.status == 200, await resp.text()
    return dict(await resp.json())


async def first_item(kit: VenueKit, c: Candidate) -> dict[str, Any]:
    resp = await kit.client.get("/api/v1/attempt/paper", headers=c.auth)
    assert resp.status == 200, await resp.text()
    paper = await resp.json()
    return next(i for s in paper["sections"] for i in s["items"] if i["type"] == "single_choice")


async def save(kit: VenueKit, c: Candidate, seq: int, item: dict[str, Any], option: int) -> int:
    resp = await kit.client.put(
        "/api/v1/attempt/responses",
        json={"seq": seq, "responses": {item["id"]: [item["options"][option]["id"]]}},
        headers=c.auth,
    )
    return resp.status


async def test_entry_closes_five_minutes_after_the_start_to_the_second(venue_kit: VenueKit) -> None:
    """A first login at 09:04:59 passes, at 09:05:00 it is refused with the reason; a candidate
    already in may log in again after the cut-off."""
    kit = venue_kit
    await kit.unlock()
    early = await kit.login_candidate(1)
    kit.clock.set(START + timedelta(minutes=5) - SECOND)
    await kit.login_candidate(2)
    kit.clock.set(START + timedelta(minutes=5))
    resp = await kit.client.post(
        "/api/v1/candidate/login", json={"ticket": ticket(3), "id_number": id_number(3)}
    )
    assert resp.status == 403
    body = await resp.json()
    assert body["type"].endswith("/entry-closed")
    assert "5 minutes after the start" in body["detail"]
    # The values pages need to say it in their language, the time in machine form.
    assert (body["closed_at"], body["cutoff_minutes"]) == ("2026-06-01T09:05:00.000Z", 5)
    again = await kit.login_candidate(1)
    assert again.token != early.token


async def test_submission_opens_fifteen_minutes_before_the_end_to_the_second(
    venue_kit: VenueKit,
) -> None:
    """For a 120-minute paper a submit at 10:44:59 is refused (sealed), at 10:45:00 accepted."""
    kit = venue_kit
    await kit.unlock()
    c = await kit.login_candidate(1)
    assert c.attempt["submit_opens_at"] == "2026-06-01T10:45:00.000Z"
    kit.clock.set(START + timedelta(minutes=105) - SECOND)
    resp = await kit.client.post("/api/v1/attempt/submit", headers=c.auth)
    assert resp.status == 409
    body = await resp.json()
    assert body["type"].endswith("/sealed-period")
    assert body["submit_opens_at"] == "2026-06-01T10:45:00.000Z"
    kit.clock.set(START + timedelta(minutes=105))
    resp = await kit.client.post("/api/v1/attempt/submit", headers=c.auth)
    assert resp.status == 200, await resp.text()


async def test_time_grant_moves_only_that_candidates_end(venue_kit: VenueKit) -> None:
    """Ten minutes granted to one candidate move their end and sealed period, nobody else's."""
    kit = venue_kit
    await kit.unlock()
    a, b = await kit.login_candidate(1), await kit.login_candidate(2)
    before_a, before_b = await status(kit, a), await status(kit, b)
    resp = await kit.client.post(
        f"/api/v1/staff/candidates/{a.ticket}/time-grants",
        json={"granted_ms": 600_000, "reason": "machine failure at seat 1"},
        headers=await kit.as_staff("inv1"),
    )
    assert resp.status == 200, await resp.text()
    after_a, after_b = await status(kit, a), await status(kit, b)
    assert after_a["ends_at"] == "2026-06-01T11:10:00.000Z" != before_a["ends_at"]
    assert after_a["time_left_ms"] == before_a["time_left_ms"] + 600_000
    assert after_b == before_b


async def test_seat_move_keeps_answers_and_time_left(venue_kit: VenueKit) -> None:
    """Moving a candidate to a spare seat keeps their acknowledged answers and time left; their
    login on the new machine ends the old token."""
    kit = venue_kit
    await kit.unlock()
    c = await kit.login_candidate(1)
    kit.clock.set(START + timedelta(minutes=20))
    item = await first_item(kit, c)
    assert await save(kit, c, 1, item, 2) == 200
    before = await status(kit, c)
    resp = await kit.client.post(
        f"/api/v1/staff/candidates/{c.ticket}/seat",
        json={"room_id": "R1", "seat_no": 55, "reason": "screen failed"},
        headers=await kit.as_staff("inv2"),
    )
    assert resp.status == 200, await resp.text()
    moved = await kit.login_candidate(1)
    after = await status(kit, moved)
    assert (after["seat_no"], before["seat_no"]) == (55, 1)
    assert after["time_left_ms"] == before["time_left_ms"]
    assert after["acked_seq"] == before["acked_seq"] == 1
    old = await kit.client.get("/api/v1/attempt", headers=c.auth)
    assert old.status == 401
    assert (await old.json())["type"].endswith("/token-ended")
    # The same seq with the same answer is acknowledged again from the new machine.
    assert await save(kit, moved, 1, item, 2) == 200


async def test_attempts_close_at_the_end_with_what_was_acknowledged(venue_kit: VenueKit) -> None:
    """At the end of time the closer closes the attempt with its acknowledged answers."""
    kit = venue_kit
    await kit.unlock()
    c = await kit.login_candidate(1)
    kit.clock.set(START + timedelta(minutes=30))
    item = await first_item(kit, c)
    assert await save(kit, c, 1, item, 0) == 200
    kit.clock.set(START + timedelta(minutes=120) - SECOND)
    assert await closer.close_due_attempts(kit.app) == 0
    kit.clock.set(START + timedelta(minutes=120))
    assert await save(kit, c, 2, item, 1) == 409
    assert await closer.close_due_attempts(kit.app) == 1
    db = open_venue_db(kit.directory)
    with transaction(db):
        how, answers = db.execute("SELECT how, answers FROM submissions").fetchone()
    db.close()
    assert how == "time_up"
    assert len(json.loads(answers)) == 1
    assert (await status(kit, c))["status"] == "closed"


async def test_venue_pause_freezes_time_left(venue_kit: VenueKit) -> None:
    """While the venue is paused, time left does not go down; after resuming it does."""
    kit = venue_kit
    await kit.unlock()
    c = await kit.login_candidate(1)
    kit.clock.set(START + timedelta(minutes=10))
    chief = await kit.as_staff("chief")
    resp = await kit.client.post(
        "/api/v1/staff/pauses", json={"reason": "power cut"}, headers=chief
    )
    assert resp.status == 200, await resp.text()
    paused = await status(kit, c)
    kit.clock.advance(minutes=7)
    still = await status(kit, c)
    assert still["time_left_ms"] == paused["time_left_ms"] == 110 * 60_000
    assert still["status"] == "paused"
    resp = await kit.client.post("/api/v1/staff/pauses/resume", json={}, headers=chief)
    assert resp.status == 200, await resp.text()
    kit.clock.advance(minutes=1)
    assert (await status(kit, c))["time_left_ms"] == 109 * 60_000
