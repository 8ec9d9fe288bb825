"""The identity check (art. 30), through the real HTTP API, on a session packed with the
regulation's default (`identity_check`: checked before answering): until an invigilator
verifies the candidate, the paper, saves and submission are refused with a typed problem;
the verification is audited with who and when, and a new login or a move keeps it. A
refusal ends the login at the seat. The roster's photos are imported from beside the CSV."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from server.errors import CbtError
from server.store import transaction
from server.venue.photos import import_photos
from server.venue.workspace import open_venue_db
from tests.server.conftest import (
    SESSION_ID,
    START,
    VenueKit,
    VenueTemplate,
    build_template,
    id_number,
    start_venue,
)

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


@pytest.fixture(scope="module")
def checked_template(tmp_path_factory: pytest.TempPathFactory) -> VenueTemplate:
    """The shared template's venue, packed without rule overrides (the identity check on)."""
    return build_template(tmp_path_factory.mktemp("identity-template"), rules={})


@pytest.fixture
async def kit(checked_template: VenueTemplate, tmp_path: Path, aiohttp_client: Any) -> VenueKit:
    return await start_venue(checked_template, tmp_path, aiohttp_client)


def rows(kit: VenueKit, sql: str, *params: Any) -> list[Any]:
    db = open_venue_db(kit.directory)
    with transaction(db):
        found = db.execute(sql, params).fetchall()
    db.close()
    return found


async def slug_of(resp: Any) -> str:
    return str((await resp.json())["type"]).rsplit("/", 1)[-1]


async def test_art30_no_answer_before_an_invigilator_verifies_the_candidate(
    kit: VenueKit,
) -> None:
    """Logged in and the exam started: the status is identity_check and the paper, a save and
    the submission are refused (identity-not-checked); inv2 verifies (audited: who, when,
    attempts.identity_checked_by); then the candidate answers, and a new login keeps it."""
    await kit.unlock()
    c = await kit.login_candidate(5)
    assert c.attempt["status"] == "identity_check"
    kit.clock.set(START + timedelta(minutes=1))
    status = await (await kit.client.get("/api/v1/attempt", headers=c.auth)).json()
    assert status["status"] == "identity_check"
    save = {"seq": 1, "responses": {}}
    refused = [
        await kit.client.get("/api/v1/attempt/paper", headers=c.auth),
        await kit.client.put("/api/v1/attempt/responses", json=save, headers=c.auth),
        await kit.client.post("/api/v1/attempt/submit", json={}, headers=c.auth),
    ]
    for resp in refused:
        assert resp.status == 403 and await slug_of(resp) == "identity-not-checked"
    assert rows(kit, "SELECT COUNT(*) FROM journal") == [(0,)]

    inv = await kit.as_staff("inv2")
    monitor = await (await kit.client.get("/api/v1/staff/rooms/R1/status", headers=inv)).json()
    seat = next(x for x in monitor["candidates"] if x["ticket"] == c.ticket)
    assert seat["identity"] == "pending"
    assert seat["id_masked"] == "110***********0005" and id_number(5) not in str(monitor)
    resp = await kit.client.post(
        f"/api/v1/staff/candidates/{c.ticket}/identity/verify", json={}, headers=inv
    )
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["identity_checked_at"] == "2026-06-01T09:01:00.000Z"
    assert rows(kit, "SELECT identity_checked_by FROM attempts WHERE ticket = ?", c.ticket) == [
        ("inv2",)
    ]
    assert rows(
        kit,
        "SELECT actor, at, object FROM audit_events WHERE action = 'identity.verified'",
    ) == [("inv2", "2026-06-01T09:01:00.000Z", f"session:{SESSION_ID}/ticket:{c.ticket}")]

    paper = await kit.client.get("/api/v1/attempt/paper", headers=c.auth)
    assert paper.status == 200
    resp = await kit.client.put("/api/v1/attempt/responses", json=save, headers=c.auth)
    assert resp.status == 200, await resp.text()
    again = await kit.login_candidate(5)  # another machine: the check stays with the attempt
    assert again.attempt["status"] == "answering"
    monitor = await (await kit.client.get("/api/v1/staff/rooms/R1/status", headers=inv)).json()
    seat = next(x for x in monitor["candidates"] if x["ticket"] == c.ticket)
    assert (seat["identity"], seat["identity_checked_by"]) == ("verified", "inv2")
    assert monitor["summary"]["identity_verified"] == 1  # the room's count, for reconciling


async def test_art30_a_move_keeps_the_check_and_a_refusal_ends_the_login(kit: VenueKit) -> None:
    """A verified candidate moved to a spare seat still answers; a refusal needs a note, is
    audited, ends the login at that seat and leaves the candidate unverified."""
    await kit.unlock()
    kit.clock.set(START + timedelta(minutes=2))
    c = await kit.login_candidate(6)
    chief = await kit.as_staff("chief")
    staff_path = f"/api/v1/staff/candidates/{c.ticket}"
    resp = await kit.client.post(f"{staff_path}/identity/verify", json={}, headers=chief)
    assert resp.status == 200
    resp = await kit.client.post(
        f"{staff_path}/seat", json={"room_id": "R1", "seat_no": 55, "reason": "PC"}, headers=chief
    )
    assert resp.status == 200, await resp.text()
    status = await (await kit.client.get("/api/v1/attempt", headers=c.auth)).json()
    assert status["status"] == "answering"

    other = await kit.login_candidate(7)
    path = f"/api/v1/staff/candidates/{other.ticket}/identity/refuse"
    resp = await kit.client.post(path, json={}, headers=chief)
    assert resp.status == 422
    resp = await kit.client.post(path, json={"note": "face does not match"}, headers=chief)
    assert resp.status == 200, await resp.text()
    resp = await kit.client.get("/api/v1/attempt", headers=other.auth)
    assert resp.status == 401 and await slug_of(resp) == "token-ended"
    assert rows(
        kit,
        "SELECT actor, json_extract(details, '$.note') FROM audit_events"
        " WHERE action = 'identity.refused'",
    ) == [("chief", "face does not match")]
    again = await kit.login_candidate(7)
    assert again.attempt["status"] == "identity_check"


async def test_art30_the_roster_photo_is_imported_and_shown_to_staff(
    kit: VenueKit, tmp_path: Path
) -> None:
    """Photos named in the roster are copied from beside the CSV (a missing one is named by
    row and nothing is copied); staff fetch a candidate's photo, candidates cannot."""
    folder = tmp_path / "roster"
    folder.mkdir()
    (folder / "T0008.png").write_bytes(PNG)
    photos = kit.directory / "photos"
    with pytest.raises(CbtError, match=r"row 3, column photo: T0009.png is not in"):
        import_photos([(2, "T0008.png"), (3, "T0009.png")], folder, photos, SESSION_ID)
    assert not (photos / SESSION_ID / "T0008.png").exists()
    assert import_photos([(9, "T0008.png"), (10, "")], folder, photos, SESSION_ID) == 1
    db = open_venue_db(kit.directory)
    with transaction(db):
        db.execute("UPDATE candidates SET photo = 'T0008.png' WHERE ticket = 'T0008'")
    db.close()
    await kit.import_package()
    c = await kit.login_candidate(8)
    inv = await kit.as_staff("inv1")
    resp = await kit.client.get("/api/v1/staff/candidates/T0008/photo", headers=inv)
    assert resp.status == 200 and resp.content_type == "image/png"
    assert await resp.read() == PNG
    resp = await kit.client.get("/api/v1/staff/candidates/T0008/photo", headers=c.auth)
    assert resp.status == 401
    resp = await kit.client.get("/api/v1/staff/candidates/T0009/photo", headers=inv)
    assert resp.status == 404 and await slug_of(resp) == "no-photo"


async def test_art30_a_note_of_the_documented_length_is_read_whatever_its_characters(
    kit: VenueKit,
) -> None:
    """The note may be 2000 characters (the OpenAPI maxLength); 2000 characters outside the
    BMP, sent as JSON escapes (12 bytes each), are read and kept, and one more is refused by
    the note's own check (invalid-field), not as a body too large (schemathesis found it)."""
    await kit.unlock()
    kit.clock.set(START + timedelta(minutes=2))
    chief = await kit.as_staff("chief")
    c = await kit.login_candidate(8)
    path = f"/api/v1/staff/candidates/{c.ticket}/identity/refuse"
    headers = {**chief, "Content-Type": "application/json"}
    over = json.dumps({"note": "\U00016ca9" * 2001})
    assert len(over.encode()) > 16 * 1024
    resp = await kit.client.post(path, data=over, headers=headers)
    assert resp.status == 422 and await slug_of(resp) == "invalid-field", await resp.text()
    note = "\U00016ca9" * 2000
    resp = await kit.client.post(path, data=json.dumps({"note": note}), headers=headers)
    assert resp.status == 200, await resp.text()
    assert rows(
        kit,
        "SELECT json_extract(details, '$.note') FROM audit_events"
        " WHERE action = 'identity.refused'",
    ) == [(note,)]
