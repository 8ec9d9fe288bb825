"""The session schedule's one change at the venue: a start delay (art. 31).

A venue may delay its start by up to 30 minutes on its own authority (the chief examiner);
more needs an approval code from the centre (`paperpack approve-delay`): a document signed by
the pinned authority key for exactly this delay of this session's current package, with an
expiry (`paperpack.approval.check_delay_approval`). Every delay is
recorded in `start_delays` and audited; attempts' times follow `sessions.start_delay_ms`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web
from sqlite_utils import Database

from paperpack.approval import check_delay_approval
from server import audit
from server.clock import iso
from server.errors import NotFound
from server.http import read_json_object, require_field
from server.problems import Problem
from server.venue import keys
from server.venue.packages import authority_key
from server.venue.rules import RuleViolation, check_start_delay
from server.venue.staff import require_role
from server.venue.time_bounds import Bound, check_bound, time_changes
from server.venue.workspace import load_venue

routes = web.RouteTableDef()
MAX_BODY = 16 * 1024


# --- start delays (art. 31) ---------------------------------------------------------------


def set_delay(
    db: Database,
    session_id: str,
    delay_ms: int,
    reason: str,
    approval: str | None,
    actor: str,
    now: datetime,
    bound: Bound | None = None,
) -> dict[str, Any]:
    if bound is not None:  # the delay with the session's pauses and room grants (art. 31)
        changes = time_changes(db, session_id, now)
        projected = changes["total_ms"] - changes["start_delay_ms"] + delay_ms
        check_bound(
            db,
            session_id,
            projected,
            bound,
            actor,
            now,
            f"a start delay of {delay_ms // 60_000} min",
        )
    changed = db.execute(
        "UPDATE sessions SET start_delay_ms = ? WHERE session_id = ?", [delay_ms, session_id]
    ).rowcount
    if not changed:
        raise NotFound("unknown-session", f"there is no session {session_id}")
    db.execute(
        "INSERT INTO start_delays (session_id, delay_ms, reason, approval, decided_by,"
        " decided_at) VALUES (?, ?, ?, ?, ?, ?)",
        [session_id, delay_ms, reason, approval, actor, iso(now)],
    )
    audit.record(
        db,
        actor,
        "session.delayed",
        f"session:{session_id}",
        {"delay_ms": delay_ms, "reason": reason, "approved_by_centre": approval is not None},
        now=now,
    )
    return {"session_id": session_id, "start_delay_ms": delay_ms}


@routes.post("/api/v1/staff/sessions/{session_id}/delay", name="delay_start")
async def post_delay(request: web.Request) -> web.Response:
    """Delay the start: {"delay_minutes", "reason", "approval"?}; over 30 min needs the
    centre's approval code for this delay and package, unexpired (paperpack approve-delay)."""
    staff = await require_role(request, "chief_examiner")
    app = request.app
    session_id = request.match_info["session_id"]
    body = await read_json_object(request, MAX_BODY)
    minutes = require_field(body, "delay_minutes", int)
    reason = require_field(body, "reason", str)
    approval = body.get("approval")
    if approval is not None and not isinstance(approval, str):
        raise Problem(422, "invalid-field", "field 'approval' must be a string")
    venue = load_venue(app[keys.SETTINGS].venue_dir)
    now = app[keys.CLOCK].now()
    package_id = await app[keys.STORE].read(session_package, session_id)

    def check(code: str) -> None:
        if package_id is None:
            raise NotFound("unknown-session", f"there is no session {session_id}")
        check_delay_approval(
            code,
            authority_key(venue),
            session_id=session_id,
            venue_id=venue.venue_id,
            package_id=package_id,
            delay_minutes=minutes,
            now=now,
        )

    try:
        check_start_delay(minutes, approval, check)
    except RuleViolation as exc:
        raise Problem(403, exc.slug, str(exc), **exc.extra) from None
    result = await app[keys.STORE].write(
        set_delay,
        session_id,
        minutes * 60_000,
        reason,
        approval,
        staff.login,
        now,
        Bound(venue, approval),
    )
    return web.json_response(result)


def session_package(db: Database, session_id: str) -> str | None:
    """The package the session runs (the one imported last), or None for an unknown session."""
    row = db.execute(
        "SELECT package_id FROM sessions WHERE session_id = ?", [session_id]
    ).fetchone()
    return None if row is None else str(row[0])
