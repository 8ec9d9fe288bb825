"""Bounded time (art. 31), through the real HTTP API: one total of a session's time changes
(start delay, venue and room pauses, room-wide grants) past 30 minutes needs the centre's
signed, unexpired approval for the package; an invigilator's grants to one candidate stop at
the cap (the chief examiner grants beyond it under their own login); invigilators act only on
the rooms they were drawn to; a room-wide grant moves every candidate of the room and only
them; every change is audited and summed per candidate and per room."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from paperpack.approval import issue_delay_approval
from paperpack.authority import load_authority
from server.clock import parse_time
from server.store import transaction
from server.venue.workspace import open_venue_db
from tests.server.conftest import SESSION_ID, START, VENUE_ID, Candidate, VenueKit, ticket

MIN = 60_000
R2_TICKETS = [ticket(n) for n in range(46, 51)]  # seated in room R2 by `two_rooms`


def rows(kit: VenueKit, sql: str, *params: Any) -> list[Any]:
    db = open_venue_db(kit.directory)
    with transaction(db):
        found = db.execute(sql, params).fetchall()
    db.close()
    return found


def two_rooms(kit: VenueKit) -> None:
    """Room R2 with candidates 46-50 (the last row of R1 before), and invigilator inv3, a new
    account, drawn to R2 only; inv1 and inv2 are drawn to R1 (the template)."""
    from server.staffauth import hash_password
    from server.venue.staff import add_staff
    from tests.server.conftest import PASSWORD

    db = open_venue_db(kit.directory)
    with transaction(db):
        db.execute(
            "INSERT INTO rooms (room_id, name, rows, columns, spare_seats) VALUES"
            " ('R2', 'Room 2', 2, 5, 2)"
        )
        for seat, t in enumerate(R2_TICKETS, start=1):
            db.execute(
                "UPDATE seats SET room_id = 'R2', seat_no = ?, row_no = 1, column_no = ?"
                " WHERE session_id = ? AND ticket = ?",
                (seat, seat, SESSION_ID, t),
            )
        add_staff(
            db, "inv3", "Inv3", "invigilator", hash_password(PASSWORD), actor="cli:t", now=START
        )
        db.execute(
            "INSERT INTO invigilator_assignments (session_id, staff_id, room_id, seed_id)"
            " SELECT ?, staff_id, 'R2', 1 FROM staff WHERE login = 'inv3'",
            (SESSION_ID,),
        )
    db.close()


async def ends_at(kit: VenueKit, c: Candidate) -> str:
    resp = await kit.client.get("/api/v1/attempt", headers=c.auth)
    assert resp.status == 200, await resp.text()
    return str((await resp.json())["ends_at"])


async def slug_of(resp: Any) -> str:
    return str((await resp.json())["type"]).rsplit("/", 1)[-1]


def approval(kit: VenueKit, minutes: int, **kwargs: Any) -> str:
    authority = load_authority(kit.template.authority_dir)
    kwargs.setdefault("now", kit.clock.now())
    return issue_delay_approval(authority, SESSION_ID, VENUE_ID, minutes, **kwargs)


async def test_art31_ninety_minutes_of_pause_needs_the_centres_approval(
    venue_kit: VenueKit,
) -> None:
    """The chief pauses the venue for 90 minutes: resuming is refused without the centre's
    approval (the venue stays paused), refused with an expired one or one of 60 minutes, and
    accepted with one of 90; the time changes say 90 minutes, and it is all audited."""
    kit = venue_kit
    await kit.unlock()
    c = await kit.login_candidate(1)
    chief = await kit.as_staff("chief")
    kit.clock.set(START + timedelta(minutes=10))
    resp = await kit.client.post(
        "/api/v1/staff/pauses", json={"room_id": None, "reason": "power cut"}, headers=chief
    )
    assert resp.status == 200, await resp.text()
    kit.clock.set(START + timedelta(minutes=100))
    resume = "/api/v1/staff/pauses/resume"
    resp = await kit.client.post(resume, json={"room_id": None}, headers=chief)
    assert resp.status == 403
    body = await resp.json()
    assert body["type"].endswith("/time-changes-need-approval")
    assert body["total_minutes"] == 90 and body["limit_minutes"] == 30
    status = await (await kit.client.get("/api/v1/attempt", headers=c.auth)).json()
    assert status["status"] == "paused"  # refused: the venue stays paused, the clock stopped

    expired = approval(
        kit, 90, valid_for=timedelta(hours=1), now=kit.clock.now() - timedelta(hours=2)
    )
    resp = await kit.client.post(resume, json={"room_id": None, "approval": expired}, headers=chief)
    assert resp.status == 403 and await slug_of(resp) == "delay-approval-expired"
    short = approval(kit, 60)
    resp = await kit.client.post(resume, json={"room_id": None, "approval": short}, headers=chief)
    assert resp.status == 403 and await slug_of(resp) == "delay-approval-too-short"

    resp = await kit.client.post(
        resume, json={"room_id": None, "approval": approval(kit, 90)}, headers=chief
    )
    assert resp.status == 200, await resp.text()
    status = await (await kit.client.get("/api/v1/attempt", headers=c.auth)).json()
    assert status["status"] == "answering"
    assert parse_time(status["ends_at"]) == START + timedelta(minutes=120 + 90)
    changes = await (await kit.client.get("/api/v1/staff/time-changes", headers=chief)).json()
    (session,) = changes["sessions"]
    assert session["total_ms"] == 90 * MIN and session["venue_pauses_ms"] == 90 * MIN
    assert session["approved_ms"] == 90 * MIN and not session["needs_approval"]
    mine = next(x for x in session["candidates"] if x["ticket"] == c.ticket)
    assert mine["total_ms"] == 90 * MIN
    actions = [r[0] for r in rows(kit, "SELECT action FROM audit_events ORDER BY event_id")]
    assert actions[-3:] == ["exam.paused", "time.approval_entered", "exam.resumed"]


async def test_art31_delay_and_pauses_count_towards_one_total(venue_kit: VenueKit) -> None:
    """A 20-minute start delay (the venue's own authority) and a 15-minute room pause come to
    35 minutes: resuming needs the centre's approval of at least 35."""
    kit = venue_kit
    await kit.import_package()
    chief = await kit.as_staff("chief")
    resp = await kit.client.post(
        f"/api/v1/staff/sessions/{SESSION_ID}/delay",
        json={"delay_minutes": 20, "reason": "late bus"},
        headers=chief,
    )
    assert resp.status == 200, await resp.text()
    await kit.unlock()
    inv = await kit.as_staff("inv1")
    kit.clock.set(START + timedelta(minutes=30))
    resp = await kit.client.post(
        "/api/v1/staff/pauses", json={"room_id": "R1", "reason": "fire alarm"}, headers=inv
    )
    assert resp.status == 200, await resp.text()
    kit.clock.set(START + timedelta(minutes=45))
    resume = "/api/v1/staff/pauses/resume"
    resp = await kit.client.post(resume, json={"room_id": "R1"}, headers=inv)
    assert resp.status == 403 and (await resp.json())["total_minutes"] == 35
    resp = await kit.client.post(
        resume, json={"room_id": "R1", "approval": approval(kit, 35)}, headers=inv
    )
    assert resp.status == 200, await resp.text()
    status = await (await kit.client.get("/api/v1/staff/rooms/R1/status", headers=inv)).json()
    assert status["time_changes_ms"] == 35 * MIN
    assert {c["time_changes_ms"] for c in status["candidates"]} == {35 * MIN}


async def test_art31_invigilator_grant_past_the_cap_needs_the_chief(venue_kit: VenueKit) -> None:
    """An invigilator grants 20 minutes, then 15 more passes the 30-minute cap and is refused;
    the chief examiner, under their own login, grants it (audited as over the cap)."""
    kit = venue_kit
    await kit.unlock()
    c = await kit.login_candidate(3)
    inv = await kit.as_staff("inv1")
    kit.clock.set(START + timedelta(minutes=20))
    path = f"/api/v1/staff/candidates/{c.ticket}/time-grants"
    resp = await kit.client.post(
        path, json={"granted_ms": 20 * MIN, "reason": "machine froze"}, headers=inv
    )
    assert resp.status == 200, await resp.text()
    resp = await kit.client.post(
        path, json={"granted_ms": 15 * MIN, "reason": "froze again"}, headers=inv
    )
    assert resp.status == 403
    body = await resp.json()
    assert body["type"].endswith("/grant-over-cap") and body["cap_minutes"] == 30
    assert "chief examiner" in body["detail"]
    chief = await kit.as_staff("chief")
    resp = await kit.client.post(
        path, json={"granted_ms": 15 * MIN, "reason": "froze again"}, headers=chief
    )
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["over_cap"] is True
    assert parse_time(await ends_at(kit, c)) == START + timedelta(minutes=120 + 35)
    grants = rows(
        kit,
        "SELECT actor, json_extract(details, '$.over_cap') FROM audit_events"
        " WHERE action = 'time.granted' ORDER BY event_id",
    )
    assert grants == [("inv1", 0), ("chief", 1)]


async def test_f4_one_invigilator_cannot_grant_unlimited_time(venue_kit: VenueKit) -> None:
    """Issue 16, F4: five 4-hour grants by one invigilator to one candidate are all refused
    past the cap; the candidate's end does not move and nothing is granted or audited."""
    kit = venue_kit
    await kit.unlock()
    c = await kit.login_candidate(4)
    before = await ends_at(kit, c)
    inv = await kit.as_staff("inv2")
    kit.clock.set(START + timedelta(minutes=5))
    for _ in range(5):
        resp = await kit.client.post(
            f"/api/v1/staff/candidates/{c.ticket}/time-grants",
            json={"granted_ms": 4 * 60 * MIN, "reason": "lost time"},
            headers=inv,
        )
        assert resp.status == 403 and await slug_of(resp) == "grant-over-cap"
    assert await ends_at(kit, c) == before
    assert rows(kit, "SELECT COUNT(*) FROM time_grants") == [(0,)]
    assert rows(kit, "SELECT COUNT(*) FROM audit_events WHERE action LIKE 'time.%'") == [(0,)]


async def test_art31_a_grant_in_another_room_is_refused(venue_kit: VenueKit) -> None:
    """inv1 was drawn to R1: a grant, a pause, a room-wide grant or an identity check for R2
    is refused naming their room; inv3 (drawn to R2) and the chief may."""
    kit = venue_kit
    two_rooms(kit)
    await kit.unlock()
    c = await kit.login_candidate(48)  # in R2
    kit.clock.set(START + timedelta(minutes=5))
    inv1 = await kit.as_staff("inv1")
    grant = {"granted_ms": 5 * MIN, "reason": "machine froze"}
    path = f"/api/v1/staff/candidates/{c.ticket}/time-grants"
    for method_path, body in (
        (path, grant),
        ("/api/v1/staff/rooms/R2/time-grants", grant),
        ("/api/v1/staff/pauses", {"room_id": "R2", "reason": "noise"}),
        (f"/api/v1/staff/candidates/{c.ticket}/identity/verify", {}),
    ):
        resp = await kit.client.post(method_path, json=body, headers=inv1)
        assert resp.status == 403, method_path
        refusal = await resp.json()
        assert refusal["type"].endswith("/not-your-room") and refusal["rooms"] == ["R1"]
    assert rows(kit, "SELECT COUNT(*) FROM time_grants") == [(0,)]
    resp = await kit.client.post(path, json=grant, headers=await kit.as_staff("inv3"))
    assert resp.status == 200, await resp.text()
    resp = await kit.client.post(path, json=grant, headers=await kit.as_staff("chief"))
    assert resp.status == 200, await resp.text()


async def test_art31_a_room_wide_grant_moves_every_candidate_of_the_room_and_only_them(
    venue_kit: VenueKit,
) -> None:
    """One action gives every open attempt in R1 ten minutes (a power cut): each R1
    candidate's end moves by ten minutes, no R2 candidate's does; it is audited once, counts
    towards the session's time changes (40 minutes more then needs the centre) and the sums
    per room and per candidate say so."""
    kit = venue_kit
    two_rooms(kit)
    await kit.unlock()
    in_r1 = [await kit.login_candidate(n) for n in (1, 2, 17, 45)]
    in_r2 = [await kit.login_candidate(n) for n in (46, 50)]
    before = {c.ticket: await ends_at(kit, c) for c in in_r1 + in_r2}
    kit.clock.set(START + timedelta(minutes=40))
    inv = await kit.as_staff("inv1")
    resp = await kit.client.post(
        "/api/v1/staff/rooms/R1/time-grants",
        json={"granted_ms": 10 * MIN, "reason": "power cut in R1"},
        headers=inv,
    )
    assert resp.status == 200, await resp.text()
    assert sorted((await resp.json())["tickets"]) == sorted(c.ticket for c in in_r1)
    for c in in_r1:
        moved = parse_time(await ends_at(kit, c)) - parse_time(before[c.ticket])
        assert moved == timedelta(minutes=10), c.ticket
    for c in in_r2:
        assert await ends_at(kit, c) == before[c.ticket], c.ticket
    audited = rows(
        kit,
        "SELECT actor, object, json_extract(details, '$.attempts') FROM audit_events"
        " WHERE action = 'time.granted_room'",
    )
    assert audited == [("inv1", f"session:{SESSION_ID}/room:R1", 4)]
    changes = await (await kit.client.get("/api/v1/staff/time-changes", headers=inv)).json()
    (session,) = changes["sessions"]
    by_room = {r["room_id"]: r for r in session["rooms"]}
    assert by_room["R1"]["room_grants_ms"] == 10 * MIN and by_room["R2"]["total_ms"] == 0
    totals = {x["ticket"]: x["total_ms"] for x in session["candidates"]}
    assert totals[ticket(1)] == 10 * MIN and totals[ticket(46)] == 0
    assert totals[ticket(3)] == 10 * MIN  # seated in R1, not logged in: the room's sum shows
    # The room's sum is part of the session's: 25 more minutes would make 35.
    resp = await kit.client.post(
        "/api/v1/staff/rooms/R1/time-grants",
        json={"granted_ms": 25 * MIN, "reason": "power cut again"},
        headers=inv,
    )
    assert resp.status == 403 and await slug_of(resp) == "time-changes-need-approval"


def test_art31_the_limit_can_only_be_made_stricter() -> None:
    """The regulation's 30 minutes is 'always': a session file asking for more is refused at
    pack time naming the rule, and a venue reading such a rule still holds 30; a stricter
    limit, the cap and the identity rule pass; practice sessions default to no check."""
    from paperpack.errors import SessionInvalid
    from paperpack.session import session_from_dict
    from server.venue.rules import RoomPolicy

    base = {"session_id": "S1", "subject": {"code": "27", "name": "x"}, "start": "bad"}
    with pytest.raises(SessionInvalid) as caught:
        session_from_dict(
            {**base, "rules": {"time_changes_limit_minutes": 90, "identity_check": 2}}
        )
    problems = "\n".join(caught.value.problems)
    assert "rules.time_changes_limit_minutes: cannot be over 30" in problems
    assert "rules.identity_check: must be 1" in problems
    assert RoomPolicy.for_session({"time_changes_limit_minutes": 90}, False) == RoomPolicy()
    strict = RoomPolicy.for_session(
        {"time_changes_limit_minutes": 10, "grant_cap_minutes": 5}, False
    )
    assert (strict.time_changes_limit_ms, strict.grant_cap_ms) == (10 * MIN, 5 * MIN)
    assert RoomPolicy.for_session({}, True).identity_check is False
    assert RoomPolicy.for_session({}, False).identity_check is True
