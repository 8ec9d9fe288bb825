"""Whom and where a staff member may act on: the candidate's current session and seat, and the
rooms an invigilator was drawn to (art. 20, 31). The chief examiner acts on every room; an
invigilator only on theirs (`Forbidden` not-your-room, naming the rooms they have)."""

from __future__ import annotations

from typing import Any

from sqlite_utils import Database

from server.errors import Forbidden, NotFound


def current_session(db: Database, ticket: str) -> tuple[str, dict[str, Any]]:
    """The session the candidate `ticket` sits now (not ended), or `NotFound`."""
    row = db.execute(
        "SELECT c.session_id FROM candidates c JOIN sessions s USING (session_id) "
        "WHERE c.ticket = ? AND s.status != 'ended' ORDER BY s.starts_at LIMIT 1",
        [ticket],
    ).fetchone()
    if row is None:
        raise NotFound("unknown-candidate", f"no candidate with ticket {ticket} in a session")
    attempt = db.execute(
        "SELECT * FROM attempts WHERE session_id = ? AND ticket = ?", [row[0], ticket]
    ).fetchone()
    columns = [d[0] for d in db.execute("SELECT * FROM attempts LIMIT 0").description]
    return row[0], dict(zip(columns, attempt, strict=True)) if attempt else {}


def check_room(db: Database, staff: Any, session_id: str, room_id: str | None) -> None:
    """An invigilator acts only on the rooms they were drawn to for the session (art. 20,
    31); the chief examiner on every room. `Forbidden` (not-your-room) otherwise."""
    if staff.role != "invigilator":
        return
    drawn = [
        r[0]
        for r in db.execute(
            "SELECT room_id FROM invigilator_assignments WHERE session_id = ? AND staff_id = ?",
            [session_id, staff.staff_id],
        )
    ]
    if room_id is None or room_id not in drawn:
        where = f"room {room_id}" if room_id else "the whole venue"
        raise Forbidden(
            "not-your-room",
            f"{where} is not yours: you were drawn to {', '.join(drawn) or 'no room'} for"
            f" session {session_id}; ask that room's invigilators or the chief examiner",
            rooms=drawn,
        )


def candidate_room(db: Database, session_id: str, ticket: str) -> str | None:
    row = db.execute(
        "SELECT room_id FROM seats WHERE session_id = ? AND ticket = ?", [session_id, ticket]
    ).fetchone()
    return None if row is None else str(row[0])


def check_candidate_room(db: Database, staff: Any, ticket: str) -> tuple[str, str | None]:
    """The candidate's session and room, once `check_room` allows `staff` to act there."""
    session_id, _ = current_session(db, ticket)
    room_id = candidate_room(db, session_id, ticket)
    check_room(db, staff, session_id, room_id)
    return session_id, room_id
