"""Candidate login: `POST /api/v1/candidate/login` with ticket and ID number.

The ticket and the ID number must match the roster (the ID compared after removing spaces
and in upper case, in constant time); a candidate marked absent is refused; a first login is
refused after the entry cut-off (`rules.check_entry`). Once the exam is over (the session
ended, or its end passed before this candidate ever logged in) a matching ticket and ID are
told that the exam has ended, not that they do not match the roster. A login from another
machine moves the candidate there and ends the old token; every login is audited. Failed
logins count towards the limits per ticket and per address (`server.venue.login_limiter`).
"""

from __future__ import annotations

import hmac
import secrets
from datetime import datetime
from typing import Any

from aiohttp import web
from sqlite_utils import Database

from server import audit
from server.clock import iso
from server.errors import Forbidden, Unauthenticated
from server.http import read_json_object, require_field
from server.venue import keys, rules
from server.venue.attempts import attempt_view, paper_ready
from server.venue.candidate_auth import new_token, token_hash
from server.venue.id_protect import id_hash, id_key_for
from server.venue.rules import RuleViolation
from server.venue.timelines import session_rules

routes = web.RouteTableDef()

MAX_LOGIN_BODY = 4096


_CANDIDATE_COLUMNS = (
    "session_id", "ticket", "id_hash", "starts_at", "start_delay_ms", "duration_ms",
    "paper_kind", "rules",
)  # fmt: skip


def find_candidate(db: Database, ticket: str) -> dict[str, Any] | None:
    """The roster row for `ticket` in the session that is not over yet (earliest first), else
    in the session that ended last (with `ended` set), else None."""
    return _find_candidate(db, ticket, ended=False) or _find_candidate(db, ticket, ended=True)


def _find_candidate(db: Database, ticket: str, *, ended: bool) -> dict[str, Any] | None:
    found = db.conn.execute(
        "SELECT c.session_id, c.ticket, c.id_hash, s.starts_at, s.start_delay_ms,"
        " s.duration_ms, s.paper_kind, s.rules,"
        " EXISTS (SELECT 1 FROM attempts a"
        "         WHERE a.session_id = c.session_id AND a.ticket = c.ticket),"
        " EXISTS (SELECT 1 FROM absences b"
        "         WHERE b.session_id = c.session_id AND b.ticket = c.ticket)"
        " FROM candidates c LEFT JOIN sessions s ON s.session_id = c.session_id"
        " WHERE c.ticket = ? AND (COALESCE(s.status, 'scheduled') = 'ended') = ?"
        # Not ended: the earliest session first; ended: the latest.
        " ORDER BY CASE WHEN ? THEN s.starts_at END DESC, s.starts_at LIMIT 1",
        (ticket, ended, ended),
    ).fetchone()
    if found is None:
        return None
    return dict(zip(_CANDIDATE_COLUMNS, found[:-2], strict=True)) | {
        "id_key": id_key_for(db),  # to hash what the candidate typed (F12)
        "has_attempt": bool(found[-2]),
        "absent": bool(found[-1]),
        "ended": ended,
    }


def record_login(
    db: Database, session_id: str, ticket: str, hashed: str, client: str, at: datetime
) -> str:
    """Create the attempt or move it to this machine with a new token (the old one ends)."""
    now = iso(at)
    existing = db.execute(
        "SELECT attempt_id, client FROM attempts WHERE session_id = ? AND ticket = ?",
        [session_id, ticket],
    ).fetchone()
    if existing is None:
        attempt_id = secrets.token_hex(16)
        # A plain INSERT: sqlite-utils' insert() reads the table's schema on every call, and
        # the exam-start herd makes thousands of these within seconds.
        db.conn.execute(
            "INSERT INTO attempts (attempt_id, session_id, ticket, token_hash, client, status,"
            " logged_in_at, last_seen_at) VALUES (?, ?, ?, ?, ?, 'logged_in', ?, ?)",
            (attempt_id, session_id, ticket, hashed, client, now, now),
        )
        action = "attempt.login"
    else:
        attempt_id = existing[0]
        db.execute(
            "UPDATE attempts SET token_hash = ?, client = ?, last_seen_at = ? WHERE attempt_id = ?",
            [hashed, client, now, attempt_id],
        )
        action = "attempt.relogin"
    audit.record(
        db,
        f"candidate:{ticket}",
        action,
        f"session:{session_id}/ticket:{ticket}",
        {"attempt_id": attempt_id, "client": client},
        now=at,
    )
    return str(attempt_id)


def check_login(row: dict[str, Any] | None, id_number: str, now: datetime) -> dict[str, Any]:
    """Raise unless the ticket exists, the ID matches and the candidate may (still) enter."""
    # The roster keeps only the keyed hash of the ID number (F12): compare hashes.
    expected = row["id_hash"] if row else ""
    given = id_hash(row["id_key"], id_number) if row else ""
    if row is None or not expected or not hmac.compare_digest(expected, given):
        raise Unauthenticated(
            "login-failed",
            "the ticket number and ID number do not match the roster; "
            "check both and try again, or ask an invigilator",
        )
    if row["absent"]:
        raise Forbidden(
            "marked-absent", "you have been marked absent; please see the chief examiner"
        )
    start, exam_rules = session_rules(row)
    ends_at = rules.timeline(start, exam_rules).ends_at
    if row["ended"] or (not row["has_attempt"] and now >= ends_at):
        raise Forbidden(
            "exam-ended",
            f"the exam ended at {iso(ends_at)}: logins are closed; "
            "if you sat it, your answers were collected",
            ended_at=iso(ends_at),
        )
    if not row["has_attempt"]:
        try:
            rules.check_entry(now, start, exam_rules)
        except RuleViolation as exc:
            raise Forbidden(exc.slug, str(exc), **exc.extra) from None
    return row


@routes.post("/api/v1/candidate/login", name="candidate_login")
async def login(request: web.Request) -> web.Response:
    """Log a candidate in with ticket and ID number; returns a bearer token and the attempt."""
    app = request.app
    client = request.remote or ""
    body = await read_json_object(request, MAX_LOGIN_BODY)
    ticket = require_field(body, "ticket", str).strip()
    id_number = require_field(body, "id_number", str)
    limiter = app[keys.LOGIN_LIMITER]
    limiter.check(client, ticket)  # before the ID is compared: a waiting guess learns nothing
    now = app[keys.CLOCK].now()
    store = app[keys.STORE]
    found = store.read_now(find_candidate, ticket)  # indexed lookups, like authentication's
    try:
        row = check_login(found, id_number, now)
    except Unauthenticated:
        limiter.failed(client, ticket if found is not None else None)
        raise
    limiter.succeeded(client, row["ticket"])
    token = new_token(now, app[keys.SETTINGS].token_ttl_s)
    hashed = token_hash(token)
    await store.write(record_login, row["session_id"], ticket, hashed, client, now)
    auth = app[keys.ATTEMPT_CACHE].lookup(store, hashed, now)
    assert auth is not None  # just written and committed
    ready = paper_ready(app, auth.session_id)
    return web.json_response({"token": token, "attempt": attempt_view(auth, now, ready)})
