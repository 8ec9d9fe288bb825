"""The inspection before the exam and the dry run (art. 21(3)).

The centre signs a checklist into the real session's manifest (the session file's
`inspection:`); two staff members, each under their own login, sign it off at the venue
(`inspection_signoffs`, one row per person, with the SHA-256 of the checklist they saw). A dry
run has passed when a practice package (its manifest says `practice`, signed by the centre)
was unlocked here and at least one of its attempts was submitted. Whether the real unlock
needs both is the session rule `inspection_required` (1: refused without them; 0, the default:
the ceremony screen shows a warning).

Routes: GET /api/v1/staff/inspection?session_id=S (the checklist and its state),
POST /api/v1/staff/inspection {"session_id": S} (sign it off under one's own login).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from aiohttp import web
from sqlite_utils import Database

from paperpack.canonical import canonical_hash
from server import audit
from server.clock import iso
from server.errors import Conflict
from server.http import read_json_object, require_field
from server.problems import Problem
from server.venue import keys
from server.venue.staff import ROLES, StaffIdentity, require_role

routes = web.RouteTableDef()

SIGNERS_NEEDED = 2
MAX_BODY = 4 * 1024


def in_force(db: Database, session_id: str) -> dict[str, Any]:
    """The session's package in force: its kind and manifest; Conflict when none."""
    row = db.execute(
        "SELECT p.kind, p.manifest FROM sessions s JOIN packages p ON p.package_id = s.package_id"
        " WHERE s.session_id = ?",
        [session_id],
    ).fetchone()
    if row is None:
        raise Conflict(
            "no-package", f"no package is in force for session {session_id}: import it first"
        )
    return {"kind": row[0], "manifest": json.loads(row[1])}


def dry_run_passed(db: Database) -> dict[str, Any] | None:
    """The latest passed dry run at this venue: a practice session unlocked here with at least
    one submitted attempt; None when there is none."""
    row = db.execute(
        "SELECT s.session_id, s.unlocked_at, COUNT(sub.attempt_id) FROM sessions s"
        " JOIN packages p ON p.package_id = s.package_id"
        " JOIN attempts a ON a.session_id = s.session_id"
        " JOIN submissions sub ON sub.attempt_id = a.attempt_id"
        " WHERE p.kind = 'practice' AND s.unlocked_at IS NOT NULL"
        " GROUP BY s.session_id ORDER BY s.unlocked_at DESC LIMIT 1"
    ).fetchone()
    if row is None:
        return None
    return {"session_id": row[0], "unlocked_at": row[1], "submitted": row[2]}


def inspection_state(db: Database, session_id: str) -> dict[str, Any]:
    """The checklist, who signed it off, the dry run, and whether the unlock needs them."""
    package = in_force(db, session_id)
    manifest = package["manifest"]
    checklist = list(manifest.get("inspection") or [])
    digest = canonical_hash(checklist)
    signers = [
        {"login": r[0], "signed_at": r[1]}
        for r in db.execute(
            "SELECT login, signed_at FROM inspection_signoffs WHERE session_id = ?"
            " AND checklist_hash = ? ORDER BY signed_at, rowid",
            [session_id, digest],
        )
    ]
    dry_run = dry_run_passed(db)
    signed_off = len(signers) >= SIGNERS_NEEDED
    return {
        "session_id": session_id,
        "practice": package["kind"] == "practice",
        "checklist": checklist,
        "checklist_hash": digest,
        "signed_off_by": signers,
        "signers_needed": SIGNERS_NEEDED,
        "signed_off": signed_off,
        "dry_run": dry_run,
        "required": bool((manifest.get("rules") or {}).get("inspection_required", 0)),
        "complete": signed_off and dry_run is not None,
    }


def sign_off(db: Database, session_id: str, staff: StaffIdentity, now: datetime) -> dict[str, Any]:
    """One staff member signs the checklist off under their own login; audited."""
    state = inspection_state(db, session_id)
    if state["practice"]:
        raise Conflict(
            "inspection-practice",
            f"session {session_id} is a dry run: the inspection is signed off for the real "
            "session it prepares",
        )
    if any(s["login"] == staff.login for s in state["signed_off_by"]):
        raise Conflict(
            "same-person",
            f"{staff.login} has already signed this inspection off: the second sign-off comes "
            "from another staff member under their own login (art. 21(3))",
        )
    db.execute(
        "INSERT OR REPLACE INTO inspection_signoffs (session_id, staff_id, login,"
        " checklist_hash, signed_at) VALUES (?, ?, ?, ?, ?)",
        [session_id, staff.staff_id, staff.login, state["checklist_hash"], iso(now)],
    )
    audit.record(
        db,
        staff.login,
        "inspection.signed_off",
        f"session:{session_id}",
        {"checklist_hash": state["checklist_hash"], "lines": len(state["checklist"])},
        now=now,
    )
    return inspection_state(db, session_id)


def unlock_gate(db: Database, session_id: str) -> dict[str, Any] | None:
    """Before a real unlock: None when the inspection and a dry run are done; else the state
    (shown as a warning), or Conflict when the session rule requires them."""
    state = inspection_state(db, session_id)
    if state["practice"] or state["complete"]:
        return None
    if state["required"]:
        missing = []
        if not state["signed_off"]:
            missing.append(
                f"the inspection sign-off ({len(state['signed_off_by'])} of {SIGNERS_NEEDED})"
            )
        if state["dry_run"] is None:
            missing.append("a passed dry run")
        raise Conflict(
            "inspection-required",
            f"session {session_id} may be unlocked only after {' and '.join(missing)} "
            "(art. 21(3); the centre's rule inspection_required)",
            signed=len(state["signed_off_by"]),
            needed=SIGNERS_NEEDED,
            dry_run_passed=state["dry_run"] is not None,
        )
    return state


@routes.get("/api/v1/staff/inspection", name="inspection")
async def get_inspection(request: web.Request) -> web.Response:
    """The session's inspection checklist, its sign-offs and the dry run."""
    await require_role(request, *ROLES)
    session_id = request.query.get("session_id", "")
    if not session_id:
        raise Problem(422, "invalid-field", "pass the session: ?session_id=S")
    return web.json_response(await request.app[keys.STORE].read(inspection_state, session_id))


@routes.post("/api/v1/staff/inspection", name="sign_off_inspection")
async def post_inspection(request: web.Request) -> web.Response:
    """Sign the inspection off under one's own login; two different logins complete it."""
    staff = await require_role(request, "chief_examiner", "system_administrator")
    body = await read_json_object(request, MAX_BODY)
    session_id = require_field(body, "session_id", str)
    now = request.app[keys.CLOCK].now()
    return web.json_response(await request.app[keys.STORE].write(sign_off, session_id, staff, now))
