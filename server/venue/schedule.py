"""The session schedule's one change at the venue: a start delay (art. 31).

A venue may delay its start by up to 30 minutes on its own authority (the chief examiner);
more needs an approval code from the centre: the base64 Ed25519 signature, by the pinned
authority key, of `rules.delay_approval_message(session, venue, minutes)`. Every delay is
recorded in `start_delays` and audited; attempts' times follow `sessions.start_delay_ms`.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from aiohttp import web
from sqlite_utils import Database

from paperpack import crypto
from server import audit, keys
from server.clock import iso
from server.errors import NotFound
from server.http import read_json_object, require_field
from server.problems import Problem
from server.venue.packages import authority_key
from server.venue.rules import RuleViolation, check_start_delay
from server.venue.staff import require_role
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
) -> dict[str, Any]:
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
    centre's signed approval code (base64 Ed25519 signature, see rules.delay_approval_message)."""
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
    signature = _decode_approval(approval)

    def verify(message: bytes, sig: bytes) -> None:
        crypto.verify_undomained(authority_key(venue), message, sig)

    try:
        check_start_delay(session_id, venue.venue_id, minutes, signature, verify)
    except RuleViolation as exc:
        raise Problem(403, exc.slug, str(exc)) from None
    now = app[keys.CLOCK].now()
    result = await app[keys.STORE].write(
        set_delay, session_id, minutes * 60_000, reason, approval, staff.login, now
    )
    return web.json_response(result)


def _decode_approval(approval: str | None) -> bytes | None:
    if not approval:
        return None
    try:
        return base64.b64decode(approval.strip(), validate=True)
    except ValueError:
        return b"not-base64"
