"""Time for a whole room, and the sum of every time change (art. 31).

- `POST /api/v1/staff/rooms/{room_id}/time-grants` ({"granted_ms", "reason", "approval"?}):
  one action gives every open attempt seated in the room the same time (a power cut), and
  only them; it counts towards the session's time changes, so past the limit it needs the
  centre's approval (`server.venue.time_bounds`). An invigilator acts only on a room they were
  drawn to. Audited once for the room, each attempt's share recorded in `time_grants`.
- `GET /api/v1/staff/time-changes`: per running session its limit, the approval in force,
  the start delay, pauses and room-wide grants per room, and each candidate's total.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web
from sqlite_utils import Database

from server import audit
from server.clock import iso
from server.errors import Invalid, NotFound
from server.http import read_json_object, require_field
from server.venue import keys
from server.venue.invigilate import (
    ACTION_ROLES,
    MAX_BODY,
    MAX_GRANT_MS,
    STAFF_ROLES,
    _text,
    actor_of,
    bound_of,
    check_room,
    monitored_sessions,
    running_sessions,
)
from server.venue.journal import CLOSED_STATUSES
from server.venue.staff import require_role
from server.venue.time_bounds import Bound, check_bound, time_changes

routes = web.RouteTableDef()


def grant_room(
    db: Database,
    room_id: str,
    granted_ms: int,
    reason: str,
    staff: Any,
    bound: Bound,
    now: datetime,
) -> dict[str, Any]:
    """Give `granted_ms` to every open attempt seated in `room_id`, in each running session."""
    if db.execute("SELECT 1 FROM rooms WHERE room_id = ?", [room_id]).fetchone() is None:
        raise NotFound("unknown-room", f"there is no room {room_id}")
    actor = actor_of(staff)
    sessions = running_sessions(db)
    if not sessions:
        raise Invalid("no-session", "no session is running: there is nobody to give time to")
    result: dict[str, Any] = {"room_id": room_id, "granted_ms": granted_ms, "tickets": []}
    for session_id in sessions:
        check_room(db, staff, session_id, room_id)
        changes = time_changes(db, session_id, now)
        room_total = next(
            (r["total_ms"] for r in changes["rooms"] if r["room_id"] == room_id),
            changes["start_delay_ms"] + changes["venue_pauses_ms"],
        )
        projected = max(changes["total_ms"], room_total + granted_ms)
        check_bound(
            db,
            session_id,
            projected,
            bound,
            actor,
            now,
            f"{granted_ms // 60_000} min for room {room_id}",
        )
        attempts = db.execute(
            "SELECT a.attempt_id, a.ticket, a.status FROM attempts a JOIN seats st"
            " ON st.session_id = a.session_id AND st.ticket = a.ticket"
            " WHERE a.session_id = ? AND st.room_id = ? ORDER BY st.seat_no",
            [session_id, room_id],
        ).fetchall()
        open_ones = [(a, t) for a, t, status in attempts if status not in CLOSED_STATUSES]
        cursor = db.execute(
            "INSERT INTO room_grants (session_id, room_id, granted_ms, reason, attempts,"
            " granted_by, granted_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [session_id, room_id, granted_ms, reason, len(open_ones), actor, iso(now)],
        )
        room_grant_id = cursor.lastrowid
        for attempt_id, _ in open_ones:
            grant = db.execute(
                "INSERT INTO time_grants (attempt_id, granted_ms, reason, granted_by,"
                " granted_at) VALUES (?, ?, ?, ?, ?)",
                [attempt_id, granted_ms, f"room {room_id}: {reason}", actor, iso(now)],
            )
            db.execute(
                "INSERT INTO room_grant_members (room_grant_id, grant_id) VALUES (?, ?)",
                [room_grant_id, grant.lastrowid],
            )
            db.execute(
                "UPDATE attempts SET time_granted_ms = time_granted_ms + ? WHERE attempt_id = ?",
                [granted_ms, attempt_id],
            )
        audit.record(
            db,
            actor,
            "time.granted_room",
            f"session:{session_id}/room:{room_id}",
            {
                "room_grant_id": room_grant_id,
                "granted_ms": granted_ms,
                "reason": reason,
                "attempts": len(open_ones),
                "total_ms": projected,
            },
            now=now,
        )
        result["tickets"] += [t for _, t in open_ones]
    return result


@routes.post("/api/v1/staff/rooms/{room_id}/time-grants", name="grant_room_time")
async def post_room_grant(request: web.Request) -> web.Response:
    """Give every candidate of a room the same time: {"granted_ms", "reason", "approval"?}."""
    staff = await require_role(request, *ACTION_ROLES)
    body = await read_json_object(request, MAX_BODY)
    granted = require_field(body, "granted_ms", int)
    if not 0 < granted <= MAX_GRANT_MS:
        raise Invalid("invalid-field", f"granted_ms must be from 1 to {MAX_GRANT_MS}")
    reason = _text(body, "reason")
    now = request.app[keys.CLOCK].now()
    result = await request.app[keys.STORE].write(
        grant_room,
        request.match_info["room_id"],
        granted,
        reason,
        staff,
        bound_of(request, body),
        now,
    )
    return web.json_response(result)


def all_time_changes(db: Database, now: datetime) -> dict[str, Any]:
    sessions, _ = monitored_sessions(db)
    return {"server_time": iso(now), "sessions": [time_changes(db, s, now) for s in sessions]}


@routes.get("/api/v1/staff/time-changes", name="time_changes")
async def get_time_changes(request: web.Request) -> web.Response:
    """Every time change per session, room and candidate, with the limit and the approval."""
    await require_role(request, *STAFF_ROLES)
    now = request.app[keys.CLOCK].now()
    return web.json_response(await request.app[keys.STORE].read(all_time_changes, now))
