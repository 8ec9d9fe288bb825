"""Time for a whole room: pauses, room-wide grants and the sum of every time change (art. 31).

- `POST /api/v1/staff/pauses` / `.../pauses/resume` ({"room_id"}, null: the whole venue, the
  chief examiner only): a pause always starts (it is for safety); resuming counts its time
  towards the session's time changes, so past the limit it needs the centre's approval
  ({"approval": code}) and the room stays paused until it is entered.

- `POST /api/v1/staff/rooms/{room_id}/time-grants` ({"granted_ms", "reason", "approval"?}):
  one action gives every open attempt seated in the room the same time (a power cut), and
  only them; it counts towards the session's time changes, so past the limit it needs the
  centre's approval (`server.venue.time_bounds`). An invigilator acts only on a room they were
  drawn to. Audited once for the room, each attempt's share recorded in `time_grants`.
- `GET /api/v1/staff/time-changes`: per running session its limit, the approval in force,
  the start delay, pauses and room-wide grants per room, and each candidate's total.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from aiohttp import web
from sqlite_utils import Database

from server import audit
from server.clock import iso
from server.errors import Conflict, Invalid, NotFound
from server.http import read_json_object, require_field
from server.venue import keys
from server.venue.invigilate import (
    ACTION_ROLES,
    MAX_BODY,
    MAX_GRANT_MS,
    STAFF_ROLES,
    _text,
    actor_of,
    monitored_sessions,
)
from server.venue.journal import CLOSED_STATUSES
from server.venue.staff import require_role
from server.venue.staff_rooms import check_room
from server.venue.time_bounds import Bound, check_bound, time_changes
from server.venue.workspace import load_venue

routes = web.RouteTableDef()
MAX_APPROVAL = 4096  # paperpack.approval.MAX_CODE_CHARS


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


# --- pauses -------------------------------------------------------------------------------


def pause(
    db: Database, room_id: str | None, reason: str, staff: Any, now: datetime
) -> dict[str, Any]:
    """Pause a room (or the venue, room_id None) in every running session. A pause always
    starts (it is for safety); its length counts when the room is resumed (`resume`)."""
    actor = actor_of(staff)
    for session_id in running_sessions(db):
        check_room(db, staff, session_id, room_id)
    open_pause = db.execute(
        "SELECT pause_id FROM pauses WHERE resumed_at IS NULL AND room_id IS ?", [room_id]
    ).fetchone()
    if open_pause is not None:
        raise Conflict("already-paused", f"{_scope(room_id)} is already paused")
    sessions = [r[0] for r in db.execute("SELECT session_id FROM sessions WHERE status != 'ended'")]
    for session_id in sessions:
        db.execute(
            "INSERT INTO pauses (session_id, room_id, reason, paused_by, paused_at)"
            " VALUES (?, ?, ?, ?, ?)",
            [session_id, room_id, reason, actor, iso(now)],
        )
    audit.record(db, actor, "exam.paused", _scope(room_id), {"reason": reason}, now=now)
    return {"room_id": room_id, "paused": True, "paused_at": iso(now)}


def running_sessions(db: Database) -> list[str]:
    return [r[0] for r in db.execute("SELECT session_id FROM sessions WHERE status != 'ended'")]


def resume(
    db: Database, room_id: str | None, staff: Any, bound: Bound, now: datetime
) -> dict[str, Any]:
    """Resume a room or the venue. The pause's time counts towards each session's time
    changes (art. 31): past the limit the resume needs the centre's approval, and the room
    stays paused until it is entered."""
    actor = actor_of(staff)
    for session_id in running_sessions(db):
        check_room(db, staff, session_id, room_id)
        paused = db.execute(
            "SELECT 1 FROM pauses WHERE session_id = ? AND resumed_at IS NULL AND room_id IS ?",
            [session_id, room_id],
        ).fetchone()
        if paused:
            total = time_changes(db, session_id, now)["total_ms"]
            check_bound(db, session_id, total, bound, actor, now, f"resuming {_scope(room_id)}")
    changed = db.execute(
        "UPDATE pauses SET resumed_by = ?, resumed_at = ?"
        " WHERE resumed_at IS NULL AND room_id IS ?",
        [actor, iso(now), room_id],
    ).rowcount
    if not changed:
        raise Conflict("not-paused", f"{_scope(room_id)} is not paused")
    audit.record(db, actor, "exam.resumed", _scope(room_id), {}, now=now)
    return {"room_id": room_id, "paused": False, "resumed_at": iso(now)}


def _scope(room_id: str | None) -> str:
    return f"room:{room_id}" if room_id else "venue"


def _room_field(body: Mapping[str, Any]) -> str | None:
    room_id = body.get("room_id")
    if room_id is not None and not isinstance(room_id, str):
        raise Invalid("invalid-field", "field 'room_id' must be a string or null (venue)")
    return room_id


@routes.post("/api/v1/staff/pauses", name="pause")
async def post_pause(request: web.Request) -> web.Response:
    """Pause a room ({"room_id": "R1", "reason"}) or the whole venue (room_id null)."""
    staff = await require_role(request, "chief_examiner", "invigilator")
    body = await read_json_object(request, MAX_BODY)
    room_id, reason = _room_field(body), _text(body, "reason")
    if room_id is None:  # pausing the whole venue is the chief examiner's decision
        await require_role(request, "chief_examiner")
    now = request.app[keys.CLOCK].now()
    result = await request.app[keys.STORE].write(pause, room_id, reason, staff, now)
    return web.json_response(result)


@routes.post("/api/v1/staff/pauses/resume", name="resume")
async def post_resume(request: web.Request) -> web.Response:
    """Resume a paused room ({"room_id": "R1"}) or the venue (room_id null); past the time
    changes' limit with {"approval": the centre's code} (art. 31)."""
    staff = await require_role(request, "chief_examiner", "invigilator")
    body = await read_json_object(request, MAX_BODY)
    room_id = _room_field(body)
    if room_id is None:
        await require_role(request, "chief_examiner")
    now = request.app[keys.CLOCK].now()
    bound = bound_of(request, body)
    result = await request.app[keys.STORE].write(resume, room_id, staff, bound, now)
    return web.json_response(result)


def bound_of(request: web.Request, body: Mapping[str, Any]) -> Bound:
    """The pinned authority key, this venue and the approval code in `body`, if any."""
    code = body.get("approval")
    if code is not None and (not isinstance(code, str) or len(code) > MAX_APPROVAL):
        raise Invalid(
            "invalid-field",
            f"field 'approval' must be the centre's code (a string of at most {MAX_APPROVAL})",
        )
    return Bound(load_venue(request.app[keys.SETTINGS].venue_dir), code or None)
