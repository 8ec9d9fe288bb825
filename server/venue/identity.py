"""The identity check (art. 30): an invigilator compares the person at the seat with the
roster's photo, name and (masked) ID number, then verifies or refuses them, one action each.

- Photos: the roster's `photo` column names a file beside the CSV; `import_photos` copies
  each into DIR/photos/<session>/ when the roster is imported, refusing a missing or unknown
  file (named by row). Staff fetch one with `GET /api/v1/staff/candidates/{ticket}/photo`.
- `POST .../identity/verify` and `POST .../identity/refuse` ({"note"}) record who and when
  (`identity_checks`; a verification also sets `attempts.identity_checked_by`), audited in the
  same transaction. A refusal ends the login at that seat.
- The session rule `identity_check` (`RoomPolicy`; on for real sessions, off for practice)
  decides whether a candidate may answer before being verified: until then the attempt's
  status is `identity_check`, and the paper, saves and submission are refused
  (`identity-not-checked`). The check belongs to the attempt, so moves and new logins keep it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web
from sqlite_utils import Database

from server import audit
from server.clock import iso
from server.errors import Conflict, Forbidden, Invalid, NotFound
from server.http import read_json_object
from server.venue import keys
from server.venue.invigilate import ACTION_ROLES, STAFF_ROLES, actor_of
from server.venue.journal import CLOSED_STATUSES
from server.venue.photos import PHOTO_TYPES, photo_path
from server.venue.staff import require_role
from server.venue.staff_rooms import check_candidate_room, current_session

routes = web.RouteTableDef()
MAX_NOTE = 2000
# A note of MAX_NOTE characters outside the BMP is 12 bytes each as JSON escapes
# (\ud8xx\udcxx): the body limit must hold it, so an over-long note is refused by its own
# check (422 invalid-field), never 413.
MAX_BODY = 64 * 1024


# --- photos -------------------------------------------------------------------------------


@routes.get("/api/v1/staff/candidates/{ticket}/photo", name="candidate_photo")
async def get_photo(request: web.Request) -> web.StreamResponse:
    """The roster photo of a candidate, for the identity check (staff only)."""
    await require_role(request, *STAFF_ROLES)
    ticket = request.match_info["ticket"]
    app = request.app

    def find(db: Database) -> tuple[str, str]:
        session_id, _ = current_session(db, ticket)
        row = db.execute(
            "SELECT photo FROM candidates WHERE session_id = ? AND ticket = ?",
            [session_id, ticket],
        ).fetchone()
        return session_id, str(row[0] if row else "")

    session_id, name = await app[keys.STORE].read(find)
    path = photo_path(app[keys.SETTINGS].venue_dir / "photos", session_id, name)
    if path is None:
        raise NotFound("no-photo", f"the roster has no photo of candidate {ticket}")
    return web.Response(
        body=path.read_bytes(),
        content_type=PHOTO_TYPES.get(path.suffix.lower(), "application/octet-stream"),
        headers={"Cache-Control": "private, max-age=300"},
    )


# --- verify and refuse --------------------------------------------------------------------


def check_identity(
    db: Database, ticket: str, outcome: str, note: str, staff: Any, now: datetime
) -> dict[str, Any]:
    """Record one identity check of the candidate logged in at the seat; audited."""
    actor = actor_of(staff)
    session_id, room_id = check_candidate_room(db, staff, ticket)
    _, attempt = current_session(db, ticket)
    if not attempt:
        raise Conflict(
            "not-logged-in",
            f"candidate {ticket} has not logged in yet: check the person once they have logged"
            " in at their seat",
        )
    if attempt["status"] in CLOSED_STATUSES:
        raise Conflict("attempt-submitted", f"candidate {ticket}'s attempt is already closed")
    db.execute(
        "INSERT INTO identity_checks (session_id, ticket, attempt_id, outcome, note,"
        " checked_by, checked_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [session_id, ticket, attempt["attempt_id"], outcome, note, actor, iso(now)],
    )
    if outcome == "verified":
        db.execute(
            "UPDATE attempts SET identity_checked_by = ? WHERE attempt_id = ?",
            [actor, attempt["attempt_id"]],
        )
    else:  # the person at the seat is not the candidate: their login ends there
        db.execute(
            "UPDATE attempts SET identity_checked_by = NULL, token_hash = NULL"
            " WHERE attempt_id = ?",
            [attempt["attempt_id"]],
        )
    audit.record(
        db,
        actor,
        f"identity.{outcome}",
        f"session:{session_id}/ticket:{ticket}",
        {"attempt_id": attempt["attempt_id"], "room_id": room_id, "note": note},
        now=now,
    )
    return {
        "ticket": ticket,
        "identity": outcome,
        "identity_checked_by": actor,
        "identity_checked_at": iso(now),
    }


async def _check(request: web.Request, outcome: str) -> web.Response:
    staff = await require_role(request, *ACTION_ROLES)
    ticket = request.match_info["ticket"]
    body = await read_json_object(request, MAX_BODY) if request.can_read_body else {}
    note = body.get("note", "")
    if not isinstance(note, str) or len(note) > MAX_NOTE:
        raise Invalid("invalid-field", f"field 'note' must be a string of at most {MAX_NOTE}")
    if outcome == "refused" and not note.strip():
        raise Invalid("invalid-field", "a refusal needs a 'note' saying what did not match")
    now = request.app[keys.CLOCK].now()
    result = await request.app[keys.STORE].write(
        check_identity, ticket, outcome, note.strip(), staff, now
    )
    return web.json_response(result)


@routes.post("/api/v1/staff/candidates/{ticket}/identity/verify", name="verify_identity")
async def post_verify(request: web.Request) -> web.Response:
    """The person at the seat matches the roster's photo, name and ID (art. 30)."""
    return await _check(request, "verified")


@routes.post("/api/v1/staff/candidates/{ticket}/identity/refuse", name="refuse_identity")
async def post_refuse(request: web.Request) -> web.Response:
    """The person at the seat does not match ({"note": what did not}); their login ends."""
    return await _check(request, "refused")


def require_checked(identity_ok: bool) -> None:
    """`Forbidden` (identity-not-checked) while the candidate waits for the identity check."""
    if not identity_ok:
        raise Forbidden(
            "identity-not-checked",
            "an invigilator has not checked your identity yet (art. 30): stay at your seat with"
            " your ID card; the exam opens for you once they have",
        )
