"""The invigilator API: room status and the actions staff take on candidates during an exam.

Room status (logged in, answering, last seen, items answered, submitted); mark absent; record
an incident or a violation (a type from a fixed list plus text); grant lost time with a
reason; move a candidate to a spare seat (answers and time left are kept: the attempt does
not change, only its seat). Pauses, room-wide grants and the time changes' sums are
`server.venue.room_time`; the identity check `server.venue.identity`. Every action is
role-checked and CSRF-checked (`server.venue.staff.require_role`), refused for an invigilator
outside the rooms they were drawn to (`server.venue.staff_rooms`), and audited in the same
transaction as the change. An invigilator's grants to one candidate stop at the session's cap
(art. 31).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from aiohttp import web
from sqlite_utils import Database

from server import audit
from server.clock import iso, parse_time
from server.errors import Conflict, Forbidden, Invalid
from server.http import read_json_object, require_field
from server.problems import Problem
from server.protocol.violation_rules import KINDS as VIOLATION_RULES
from server.venue import keys, seats
from server.venue.identity_view import identity_states, identity_view
from server.venue.journal import CLOSED_STATUSES
from server.venue.live import ExamState
from server.venue.rooms import SeatsError
from server.venue.staff import require_role
from server.venue.staff_rooms import check_candidate_room, check_room, current_session
from server.venue.time_bounds import own_grants_ms, session_policy, time_changes

routes = web.RouteTableDef()

STAFF_ROLES = ("chief_examiner", "invigilator", "system_administrator")
ACTION_ROLES = ("chief_examiner", "invigilator")
INCIDENT_KINDS = (
    "machine_failure",
    "network_failure",
    "power_cut",
    "candidate_illness",
    "disturbance",
    "paper_display",
    "other",
)
VIOLATION_KINDS = tuple(VIOLATION_RULES)  # kinds and their words: the violation rules
MAX_TEXT = 4000
MAX_GRANT_MS = 4 * 3600 * 1000  # one grant cannot exceed four hours
MAX_BODY = 16 * 1024


def actor_of(staff: Any) -> str:
    return str(staff.login)


# --- room status --------------------------------------------------------------------------


def monitored_sessions(db: Database) -> tuple[list[str], bool]:
    """The sessions the monitor shows, and whether they are over: every session not ended,
    or, once all have ended, the one that ended last, kept for reconciling the rooms."""
    running = [r[0] for r in db.execute("SELECT session_id FROM sessions WHERE status != 'ended'")]
    if running:
        return running, False
    last = db.execute(
        "SELECT session_id FROM sessions WHERE status = 'ended' ORDER BY ended_at DESC LIMIT 1"
    ).fetchone()
    return ([last[0]] if last else []), last is not None


def room_status(
    db: Database,
    room_id: str | None,
    now: datetime,
    stale_s: int,
    seen: Mapping[str, str] | None = None,
    photos_dir: Path | None = None,
) -> dict[str, Any]:
    """Each candidate of the room (or the venue) with what the monitor shows; after the end,
    each one's final state (submitted, absent, moved, incidents, time changes) stays."""
    sessions, ended = monitored_sessions(db)
    chosen = json.dumps(sessions)  # one parameter: SQLite's json_each lists the ids
    rows = db.query(
        "SELECT c.session_id, c.ticket, c.name, c.photo, st.room_id, st.seat_no, a.status,"
        " a.attempt_id, a.last_seen_at, a.submitted_at, a.time_granted_ms, a.client,"
        " a.identity_checked_by,"
        " (SELECT COUNT(*) FROM responses r WHERE r.attempt_id = a.attempt_id) AS answered,"
        " EXISTS (SELECT 1 FROM absences ab WHERE ab.session_id = c.session_id"
        "   AND ab.ticket = c.ticket) AS absent,"
        " (SELECT COUNT(*) FROM seat_moves m WHERE m.session_id = c.session_id"
        "   AND m.ticket = c.ticket) AS moves,"
        " (SELECT COUNT(*) FROM incidents i WHERE i.session_id = c.session_id"
        "   AND i.ticket = c.ticket) AS incidents,"
        " (SELECT COUNT(*) FROM violations v WHERE v.session_id = c.session_id"
        "   AND v.ticket = c.ticket) AS violations"
        " FROM candidates c JOIN sessions s ON s.session_id = c.session_id"
        "   AND s.session_id IN (SELECT value FROM json_each(?))"
        " LEFT JOIN seats st ON st.session_id = c.session_id AND st.ticket = c.ticket"
        " LEFT JOIN attempts a ON a.session_id = c.session_id AND a.ticket = c.ticket"
        " WHERE ? IS NULL OR st.room_id = ?"
        " ORDER BY st.room_id, st.seat_no, c.ticket",
        [chosen, room_id, room_id],
    )
    candidates = []
    identity = identity_states(db, sessions)
    changes = {s: time_changes(db, s, now) for s in sessions}
    totals = {
        (s, c["ticket"]): c["total_ms"] for s, ch in changes.items() for c in ch["candidates"]
    }
    for r in rows:
        last = max(r["last_seen_at"] or "", (seen or {}).get(r["attempt_id"] or "", "")) or None
        stale = last is None or (now - parse_time(last)).total_seconds() > stale_s
        candidates.append(
            {
                "ticket": r["ticket"],
                "name": r["name"],
                "room_id": r["room_id"],
                "seat_no": r["seat_no"],
                "status": "absent" if r["absent"] else (r["status"] or "not_logged_in"),
                "logged_in": r["attempt_id"] is not None,
                "last_seen_at": last,
                "seen_recently": not stale,
                "items_answered": r["answered"],
                "submitted_at": r["submitted_at"],
                "time_granted_ms": r["time_granted_ms"] or 0,
                "seat_moves": r["moves"],
                "incidents": r["incidents"],
                "violations": r["violations"],
                **identity_view(r, identity.get((r["session_id"], r["ticket"])), photos_dir),
                "time_changes_ms": totals.get((r["session_id"], r["ticket"]), 0),
            }
        )
    paused = db.execute(
        "SELECT COUNT(*) FROM pauses WHERE resumed_at IS NULL AND (room_id IS NULL OR room_id = ?)",
        [room_id],
    ).fetchone()[0]
    room_incidents = db.execute(
        "SELECT COUNT(*) FROM incidents WHERE session_id IN (SELECT value FROM json_each(?))"
        " AND ticket IS NULL"
        " AND (? IS NULL OR room_id IS NULL OR room_id = ?)",
        [chosen, room_id, room_id],
    ).fetchone()[0]
    paused_total = db.execute(
        "SELECT COUNT(*) FROM pauses"
        " WHERE session_id IN (SELECT value FROM json_each(?))"
        " AND (? IS NULL OR room_id IS NULL OR room_id = ?)",
        [chosen, room_id, room_id],
    ).fetchone()[0]
    room_changes = [
        next((x["total_ms"] for x in c["rooms"] if x["room_id"] == room_id), c["total_ms"])
        if room_id
        else c["total_ms"]
        for c in changes.values()
    ]
    return {
        "room_id": room_id,
        "server_time": iso(now),
        "time_changes_ms": max(room_changes, default=0),
        "identity_check": any(session_policy(db, s).identity_check for s in sessions),
        "time_limits": [
            {k: v for k, v in c.items() if k not in ("candidates", "rooms")}
            for c in changes.values()
        ],
        "paused": bool(paused),
        "ended": ended,
        "session_ids": sessions,
        "summary": reconciliation(candidates, room_incidents, paused_total),
        "candidates": candidates,
    }


def reconciliation(
    candidates: list[dict[str, Any]], room_incidents: int, pauses: int
) -> dict[str, int]:
    """The counts staff reconcile a room with (art. 35): who submitted, whose attempt the
    server closed at the end of their time, who was absent or never logged in, who moved,
    incidents (of candidates and of the room), violations, time changes and identities
    verified (art. 30)."""

    def count(status: str) -> int:
        return sum(1 for c in candidates if c["status"] == status)

    return {
        "candidates": len(candidates),
        "submitted": count("submitted"),
        "closed": count("closed"),
        "absent": count("absent"),
        "not_logged_in": count("not_logged_in"),
        "moved": sum(1 for c in candidates if c["seat_moves"]),
        "incidents": sum(c["incidents"] for c in candidates) + room_incidents,
        "violations": sum(c["violations"] for c in candidates),
        "time_grants": sum(1 for c in candidates if c["time_granted_ms"]),
        "pauses": pauses,
        "identity_verified": sum(1 for c in candidates if c["identity"] == "verified"),
    }


@routes.get("/api/v1/staff/status", name="venue_status")
async def get_venue_status(request: web.Request) -> web.Response:
    """Every candidate of the venue with their status (the chief examiner's view)."""
    await require_role(request, *STAFF_ROLES)
    app = request.app
    now = app[keys.CLOCK].now()
    stale_s, seen = app[keys.SETTINGS].stale_after_s, dict(app[keys.LIVE].seen)
    photos = app[keys.SETTINGS].venue_dir / "photos"
    body = await app[keys.STORE].read(room_status, None, now, stale_s, seen, photos)
    return web.json_response(body)


@routes.get("/api/v1/staff/rooms/{room_id}/status", name="room_status")
async def get_room_status(request: web.Request) -> web.Response:
    """The candidates of one room: logged in, answering, last seen, items answered, submitted."""
    await require_role(request, *STAFF_ROLES)
    app = request.app
    now = app[keys.CLOCK].now()
    room_id = request.match_info["room_id"]
    stale_s, seen = app[keys.SETTINGS].stale_after_s, dict(app[keys.LIVE].seen)
    photos = app[keys.SETTINGS].venue_dir / "photos"
    body = await app[keys.STORE].read(room_status, room_id, now, stale_s, seen, photos)
    return web.json_response(body)


# --- actions on one candidate -------------------------------------------------------------


def _text(body: Mapping[str, Any], name: str, *, required: bool = True) -> str:
    value = body.get(name, "" if not required else None)
    if not isinstance(value, str) or (required and not value.strip()):
        raise Invalid("invalid-field", f"field {name!r} must be a non-empty string")
    if len(value) > MAX_TEXT:
        raise Invalid("invalid-field", f"field {name!r} is longer than {MAX_TEXT} characters")
    return value.strip()


def _kind(body: Mapping[str, Any], allowed: tuple[str, ...]) -> str:
    kind = body.get("kind")
    if kind not in allowed:
        raise Invalid("invalid-field", f"field 'kind' must be one of: {', '.join(allowed)}")
    return str(kind)


def mark_absent(db: Database, ticket: str, actor: str, now: datetime) -> dict[str, Any]:
    session_id, attempt = current_session(db, ticket)
    if attempt:
        raise Conflict(
            "candidate-present", f"candidate {ticket} has logged in and cannot be absent"
        )
    db.execute(
        "INSERT OR IGNORE INTO absences (session_id, ticket, marked_by, marked_at) "
        "VALUES (?, ?, ?, ?)",
        [session_id, ticket, actor, iso(now)],
    )
    audit.record(
        db, actor, "candidate.absent", f"session:{session_id}/ticket:{ticket}", {}, now=now
    )
    return {"ticket": ticket, "absent": True}


def record_incident(
    db: Database, ticket: str, kind: str, text: str, actor: str, now: datetime
) -> dict[str, Any]:
    session_id, _ = current_session(db, ticket)
    room = db.execute(
        "SELECT room_id FROM seats WHERE session_id = ? AND ticket = ?", [session_id, ticket]
    ).fetchone()
    cursor = db.execute(
        "INSERT INTO incidents (session_id, ticket, room_id, kind, text, recorded_by, recorded_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        [session_id, ticket, room[0] if room else None, kind, text, actor, iso(now)],
    )
    incident_id = cursor.lastrowid
    audit.record(
        db,
        actor,
        "incident.recorded",
        f"session:{session_id}/ticket:{ticket}",
        {"incident_id": incident_id, "kind": kind},
        now=now,
    )
    return {"incident_id": incident_id, "ticket": ticket, "kind": kind}


def record_violation(
    db: Database, ticket: str, kind: str, text: str, actor: str, now: datetime
) -> dict[str, Any]:
    session_id, _ = current_session(db, ticket)
    cursor = db.execute(
        "INSERT INTO violations (session_id, ticket, kind, text, recorded_by, recorded_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        [session_id, ticket, kind, text, actor, iso(now)],
    )
    violation_id = cursor.lastrowid
    audit.record(
        db,
        actor,
        "violation.recorded",
        f"session:{session_id}/ticket:{ticket}",
        {"violation_id": violation_id, "kind": kind},
        now=now,
    )
    return {"violation_id": violation_id, "ticket": ticket, "kind": kind}


def grant_time(
    db: Database, ticket: str, granted_ms: int, reason: str, staff: Any, now: datetime
) -> dict[str, Any]:
    """Add lost time to one candidate's attempt; moves only that candidate's end. An
    invigilator's grants to one candidate stop at the session's cap (art. 31); beyond it only
    the chief examiner grants, under their own login."""
    actor = actor_of(staff)
    session_id, room_id = check_candidate_room(db, staff, ticket)
    _, attempt = current_session(db, ticket)
    if not attempt:
        raise Conflict("not-logged-in", f"candidate {ticket} has not logged in yet")
    if attempt["status"] in CLOSED_STATUSES:
        raise Conflict("attempt-submitted", f"candidate {ticket}'s attempt is already closed")
    cap = session_policy(db, session_id).grant_cap_ms
    before = own_grants_ms(db, attempt["attempt_id"])
    over_cap = before + granted_ms > cap
    if over_cap and staff.role != "chief_examiner":
        raise Forbidden(
            "grant-over-cap",
            f"candidate {ticket} has {before // 60_000} min granted; {granted_ms // 60_000} min"
            f" more passes the cap of {cap // 60_000} min per candidate (art. 31): the chief"
            " examiner must grant it under their own login",
            granted_minutes=before // 60_000,
            cap_minutes=cap // 60_000,
        )
    db.execute(
        "INSERT INTO time_grants (attempt_id, granted_ms, reason, granted_by, granted_at)"
        " VALUES (?, ?, ?, ?, ?)",
        [attempt["attempt_id"], granted_ms, reason, actor, iso(now)],
    )
    db.execute(
        "UPDATE attempts SET time_granted_ms = time_granted_ms + ? WHERE attempt_id = ?",
        [granted_ms, attempt["attempt_id"]],
    )
    audit.record(
        db,
        actor,
        "time.granted",
        f"session:{session_id}/ticket:{ticket}",
        {
            "attempt_id": attempt["attempt_id"],
            "granted_ms": granted_ms,
            "reason": reason,
            "room_id": room_id,
            "over_cap": over_cap,
            "own_grants_ms": before + granted_ms,
        },
        now=now,
    )
    return {
        "ticket": ticket,
        "time_granted_ms": attempt["time_granted_ms"] + granted_ms,
        "own_grants_ms": before + granted_ms,
        "over_cap": over_cap,
    }


def move_seat(
    db: Database,
    ticket: str,
    room_id: str,
    seat_no: int,
    reason: str,
    actor: str,
    now: datetime,
    exam: ExamState | None = None,
) -> dict[str, Any]:
    """Move a candidate to a free seat; the attempt (answers, time) stays as it is. The new
    seat's form and order (art. 20) become the candidate's: with the paper open, their variant
    is rebuilt (answers are kept by item, so none is lost) and its digest recorded."""
    session_id, _ = current_session(db, ticket)
    try:
        seats.move_seat(db, session_id, ticket, room_id, seat_no, reason, actor=actor, now=now)
    except SeatsError as exc:
        kind = Conflict if exc.slug in ("seat-taken", "no-seat") else Invalid
        raise kind(exc.slug, str(exc)) from None
    layout = seats.seat_layout(db, session_id, ticket)
    if exam is not None and exam.session_id == session_id and exam.forms.get(ticket) != layout:
        variant = exam.reseat(ticket, layout)
        db.execute(
            "UPDATE variants SET form_id = ?, digest = ? WHERE session_id = ? AND ticket = ?",
            (layout, variant.digest, session_id, ticket),
        )
    return {"ticket": ticket, "room_id": room_id, "seat_no": seat_no, "form": layout}


async def _candidate_action(request: web.Request, roles: tuple[str, ...]) -> tuple[Any, str]:
    staff = await require_role(request, *roles)
    return staff, request.match_info["ticket"]


def in_room(db: Database, staff: Any, ticket: str, action: Any, *args: Any) -> Any:
    """`action(db, ticket, *args)` once `staff` may act on the candidate's room, in one
    transaction (a move checks the room it goes to as well)."""
    session_id, _ = check_candidate_room(db, staff, ticket)
    if (
        action is move_seat
        and db.execute("SELECT 1 FROM rooms WHERE room_id = ?", [args[0]]).fetchone()
    ):  # an unknown room is refused by the move itself
        check_room(db, staff, session_id, args[0])
    return action(db, ticket, *args)


@routes.post("/api/v1/staff/candidates/{ticket}/absent", name="mark_absent")
async def post_absent(request: web.Request) -> web.Response:
    """Mark a candidate who has not logged in as absent."""
    staff, ticket = await _candidate_action(request, ACTION_ROLES)
    now = request.app[keys.CLOCK].now()
    result = await request.app[keys.STORE].write(
        in_room, staff, ticket, mark_absent, actor_of(staff), now
    )
    return web.json_response(result)


@routes.post("/api/v1/staff/candidates/{ticket}/incidents", name="record_incident")
async def post_incident(request: web.Request) -> web.Response:
    """Record an incident for a candidate: a kind from INCIDENT_KINDS plus text."""
    staff, ticket = await _candidate_action(request, ACTION_ROLES)
    body = await read_json_object(request, MAX_BODY)
    kind, text = _kind(body, INCIDENT_KINDS), _text(body, "text", required=False)
    now = request.app[keys.CLOCK].now()
    result = await request.app[keys.STORE].write(
        in_room, staff, ticket, record_incident, kind, text, actor_of(staff), now
    )
    return web.json_response(result, status=201)


@routes.post("/api/v1/staff/candidates/{ticket}/violations", name="record_violation")
async def post_violation(request: web.Request) -> web.Response:
    """Record a violation (art. 32): a kind from VIOLATION_KINDS plus text."""
    staff, ticket = await _candidate_action(request, ACTION_ROLES)
    body = await read_json_object(request, MAX_BODY)
    kind, text = _kind(body, VIOLATION_KINDS), _text(body, "text")
    now = request.app[keys.CLOCK].now()
    result = await request.app[keys.STORE].write(
        in_room, staff, ticket, record_violation, kind, text, actor_of(staff), now
    )
    return web.json_response(result, status=201)


@routes.post("/api/v1/staff/candidates/{ticket}/time-grants", name="grant_time")
async def post_time_grant(request: web.Request) -> web.Response:
    """Grant lost time to one candidate: {"granted_ms": N, "reason": "..."}."""
    staff, ticket = await _candidate_action(request, ACTION_ROLES)
    body = await read_json_object(request, MAX_BODY)
    granted = require_field(body, "granted_ms", int)
    if not 0 < granted <= MAX_GRANT_MS:
        raise Problem(422, "invalid-field", f"granted_ms must be from 1 to {MAX_GRANT_MS}")
    reason = _text(body, "reason")
    now = request.app[keys.CLOCK].now()
    result = await request.app[keys.STORE].write(grant_time, ticket, granted, reason, staff, now)
    return web.json_response(result)


@routes.post("/api/v1/staff/candidates/{ticket}/seat", name="move_seat")
async def post_seat_move(request: web.Request) -> web.Response:
    """Move a candidate to a spare seat: {"room_id", "seat_no", "reason"}."""
    staff, ticket = await _candidate_action(request, ACTION_ROLES)
    body = await read_json_object(request, MAX_BODY)
    room_id = require_field(body, "room_id", str)
    seat_no = require_field(body, "seat_no", int)
    reason = _text(body, "reason")
    now = request.app[keys.CLOCK].now()
    exam = request.app[keys.LIVE].exam
    result = await request.app[keys.STORE].write(
        in_room, staff, ticket, move_seat, room_id, seat_no, reason, actor_of(staff), now, exam
    )
    return web.json_response(result)
