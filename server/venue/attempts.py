"""Candidates' attempts: status, heartbeat and the paper; the candidate API's map.

The candidate HTTP API of ARCHITECTURE.md, and where each part lives:

- `POST /api/v1/candidate/login`: `server.venue.login` (ticket + ID number, entry cut-off,
  moving to another machine), limited per address by `server.venue.login_limiter`.
- Every other request authenticates with its bearer token: `server.venue.candidate_auth`
  (tokens, the attempt behind one, and its cache).
- `GET /api/v1/attempt`, `POST /api/v1/attempt/heartbeat`: here; status with the server's time.
- `GET /api/v1/attempt/paper`: here; this candidate's variant (opaque tokens), after unlock
  and start.
- `PUT /api/v1/attempt/responses`: `server.venue.saves`; a batch with a `seq`, acknowledged
  only after the group commit that holds it.
- `POST /api/v1/attempt/submit`: `server.venue.submission`; refused in the sealed period.
- Closing every attempt whose time is up: `server.venue.closer`, a background task.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web
from sqlite_utils import Database

from server.clock import iso
from server.errors import Conflict
from server.problems import Problem
from server.venue import keys, rules
from server.venue.background import run_in_background
from server.venue.candidate_auth import AttemptAuth, authenticate
from server.venue.identity import require_checked
from server.venue.journal import CLOSED_STATUSES

routes = web.RouteTableDef()


def paper_ready(app: web.Application, session_id: str) -> bool:
    exam = app[keys.LIVE].exam
    return exam is not None and exam.session_id == session_id


def attempt_view(auth: AttemptAuth, now: datetime, ready: bool) -> dict[str, Any]:
    """The attempt as the candidate sees it (ARCHITECTURE.md: status and times)."""
    line = auth.timeline
    return {
        "status": auth.status(now, ready),
        "server_time": iso(now),
        "starts_at": iso(line.starts_at),
        "ends_at": iso(line.ends_at),
        "submit_opens_at": iso(line.submit_opens_at),
        "entry_closes_at": iso(line.entry_closes_at),
        "time_left_ms": rules.time_left_ms(now, line),
        "paper_ready": ready,
        # Why the clock stands still: "restart" (the server is reopening the paper after a
        # restart; answers wait on the candidate's computer), "staff" (a pause), or null.
        "paused_reason": auth.paused_reason(now),
        "acked_seq": auth.last_seq,
        "submitted_at": auth.submitted_at,
        "ticket": auth.ticket,
        "name": auth.name,
        "room_id": auth.room_id,
        "seat_no": auth.seat_no,
    }


# --- status and heartbeat -----------------------------------------------------------------


@routes.get("/api/v1/attempt", name="attempt")
async def get_attempt(request: web.Request) -> web.Response:
    """The attempt's status and times, with the server's time."""
    auth = await authenticate(request)
    now = request.app[keys.CLOCK].now()
    return web.json_response(attempt_view(auth, now, paper_ready(request.app, auth.session_id)))


@routes.post("/api/v1/attempt/heartbeat", name="heartbeat")
async def heartbeat(request: web.Request) -> web.Response:
    """Record that the candidate's computer is alive; returns the status like GET attempt.

    "Last seen" is monitoring, not evidence: it is kept in memory and written with the
    closer's next pass, so a heartbeat does not wait for a commit."""
    auth = await authenticate(request)
    now = request.app[keys.CLOCK].now()
    request.app[keys.LIVE].seen[auth.attempt_id] = iso(now)
    return web.json_response(attempt_view(auth, now, paper_ready(request.app, auth.session_id)))


# --- the paper ----------------------------------------------------------------------------


def mark_started(db: Database, attempt_id: str, now: str) -> None:
    db.execute(
        "UPDATE attempts SET started_at = COALESCE(started_at, ?), status = 'answering', "
        "last_seen_at = ? WHERE attempt_id = ? AND status = 'logged_in'",
        [now, now, attempt_id],
    )


@routes.get("/api/v1/attempt/paper", name="paper")
async def get_paper(request: web.Request) -> web.Response:
    """This candidate's variant of the paper (opaque ids only), once unlocked and started."""
    auth = await authenticate(request)
    app = request.app
    now = app[keys.CLOCK].now()
    check_open(auth, now)
    check_not_reopening(auth)
    require_checked(auth.identity_ok)
    exam = app[keys.LIVE].exam
    if exam is None or exam.session_id != auth.session_id:
        raise Problem(409, "paper-locked", "the paper has not been unlocked yet; please wait")
    if now < auth.timeline.starts_at:
        raise Problem(
            409,
            "not-started",
            f"the exam starts at {iso(auth.timeline.starts_at)}; please wait",
            starts_at=iso(auth.timeline.starts_at),
        )
    if auth.started_at is None:
        # Recording the first serving is evidence, not a condition of this reply: it is queued
        # for the next group commit without holding the paper back (the store drains its
        # queue on shutdown).
        run_in_background(app, app[keys.STORE].write(mark_started, auth.attempt_id, iso(now)))
    return web.Response(body=exam.paper_body(auth.ticket), content_type="application/json")


def check_not_reopening(auth: AttemptAuth) -> None:
    """`Conflict` (exam-paused) while the server reopens the paper after a restart."""
    if auth.reopening:
        raise Conflict(
            "exam-paused",
            "the exam is paused while the venue server reopens the paper after a restart; the "
            "clock is stopped and your answers are kept on this computer until it resumes",
        )


def check_open(auth: AttemptAuth, now: datetime) -> None:
    """`Conflict` if the attempt no longer takes answers (submitted, closed, time up)."""
    if auth.db_status in CLOSED_STATUSES:
        raise Conflict(
            "attempt-submitted",
            f"this attempt was {auth.db_status} at "
            f"{auth.submitted_at}; nothing more can be changed",
        )
    if now >= auth.timeline.ends_at:
        raise Conflict(
            "time-up",
            f"time ran out at {iso(auth.timeline.ends_at)}; your acknowledged answers are kept",
            ends_at=iso(auth.timeline.ends_at),
        )
