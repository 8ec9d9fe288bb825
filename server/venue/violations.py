"""The chief examiner confirms a recorded violation and proposes its handling (art. 32).

    POST /api/v1/staff/violations/{violation_id}/confirm   {"handling": "cancel_subject"}

Chief examiner only, under their own login; audited (`violation.confirmed`) with who and when
in the same transaction; a violation is confirmed once. The handling is a proposal: the export
carries it, and only the centre's determination, approved by a second person, changes a score
(`server.protocol.violation_rules`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web
from sqlite_utils import Database

from server import audit
from server.clock import iso
from server.errors import Conflict, Invalid, NotFound
from server.http import read_json_object, require_field
from server.protocol.violation_rules import HANDLINGS
from server.venue import keys
from server.venue.staff import require_role

routes = web.RouteTableDef()
CHIEF = "chief_examiner"
MAX_BODY = 4 * 1024


def confirm_violation(
    db: Database, violation_id: int, handling: str, actor: str, now: datetime
) -> dict[str, Any]:
    row = db.execute(
        "SELECT session_id, ticket, kind, confirmed_by FROM violations WHERE violation_id = ?",
        [violation_id],
    ).fetchone()
    if row is None:
        raise NotFound(
            "unknown-violation",
            f"no violation number {violation_id} at this venue",
            violation_id=violation_id,
        )
    session_id, ticket, kind, confirmed_by = row
    if confirmed_by is not None:
        raise Conflict(
            "violation-confirmed",
            f"violation {violation_id} was confirmed already by {confirmed_by}; a change now is"
            " the centre's to determine",
            violation_id=violation_id,
            confirmed_by=confirmed_by,
        )
    db.execute(
        "UPDATE violations SET handling = ?, confirmed_by = ?, confirmed_at = ?"
        " WHERE violation_id = ?",
        [handling, actor, iso(now), violation_id],
    )
    audit.record(
        db,
        actor,
        "violation.confirmed",
        f"session:{session_id}/ticket:{ticket}",
        {"violation_id": violation_id, "kind": kind, "handling": handling},
        now=now,
    )
    return {"violation_id": violation_id, "ticket": ticket, "kind": kind, "handling": handling,
            "confirmed_by": actor, "confirmed_at": iso(now)}  # fmt: skip


@routes.post("/api/v1/staff/violations/{violation_id}/confirm", name="confirm_violation")
async def post_confirm(request: web.Request) -> web.Response:
    """Confirm a violation and propose its handling (chief examiner)."""
    staff = await require_role(request, CHIEF)
    try:
        violation_id = int(request.match_info["violation_id"])
    except ValueError:
        raise NotFound(
            "unknown-violation", "a violation number is a whole number", violation_id=0
        ) from None
    body = await read_json_object(request, MAX_BODY)
    handling = require_field(body, "handling", str)
    if handling not in HANDLINGS:
        raise Invalid(
            "invalid-field", f"handling must be one of {', '.join(HANDLINGS)} (the violation rules)"
        )
    now = request.app[keys.CLOCK].now()
    result = await request.app[keys.STORE].write(
        confirm_violation, violation_id, handling, staff.login, now
    )
    return web.json_response(result)
