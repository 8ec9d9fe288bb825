"""Candidates' attempts: login, status, the paper, autosaves, submission and closing at time.

The candidate HTTP API of ARCHITECTURE.md lives here, with the domain functions behind it:

- `POST /api/v1/candidate/login`: ticket + ID number; refused after the entry cut-off (for a
  first login); a login from another machine moves the candidate there and ends the old token.
  Tokens are `<expiry unix seconds>.<43 random url-safe characters>`, stored as SHA-256 hashes:
  the expiry is covered by the hash, so it cannot be altered, and is checked before any lookup.
- `GET /api/v1/attempt`, `POST /api/v1/attempt/heartbeat`: status with the server's time.
- `GET /api/v1/attempt/paper`: this candidate's variant (opaque tokens), after unlock and start.
- `PUT /api/v1/attempt/responses`: a batch with a `seq`, mapped from tokens to canonical ids and
  appended to the journal; acknowledged only after the group commit that holds it.
- `POST /api/v1/attempt/submit`: refused in the sealed period; the receipt is the SHA-256 of
  the canonical JSON of the final answers.
- A background task closes every attempt whose time is up with what was acknowledged.

Every candidate request authenticates. The attempt behind a token is kept in memory
(`AttemptCache`) for as long as the store's `generation` stands still: any committed write
that changes rows (a login elsewhere, a submission, a close at time, a pause, a grant, a seat
move, a session ending, a roster change, another process writing the file) moves it on and
empties the cache before its caller hears of the commit. Only autosaves and heartbeats are
`routine_write`s: they leave the cache alone, and a save updates its entry's acked seq itself.
An attempt while paused is never cached (its end moves with the clock). Whatever the cache
holds, a save is accepted only if, inside its own write transaction, the attempt is still open
and still held by this token.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import hmac
import json
import logging
import secrets
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web
from sqlite_utils import Database

from paperpack.canonical import canonical_hash, canonical_json
from server import audit, keys
from server.clock import iso, parse_time
from server.errors import Conflict, Forbidden, Invalid, RateLimited, Unauthenticated
from server.http import read_json_object, require_field
from server.problems import Problem
from server.store import Store, routine_write
from server.venue import journal, rules
from server.venue.background import run_in_background
from server.venue.rules import ExamRules, RuleViolation, Timeline

log = logging.getLogger(__name__)
routes = web.RouteTableDef()

OPEN_STATUSES = ("logged_in", "answering")
CLOSED_STATUSES = journal.CLOSED_STATUSES
MAX_LOGIN_BODY = 4096


# --- tokens -------------------------------------------------------------------------------


def new_token(now: datetime, ttl_s: int) -> str:
    """A fresh bearer token carrying its own expiry (covered by the stored hash)."""
    return f"{int(now.timestamp()) + ttl_s}.{secrets.token_urlsafe(32)}"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def bearer_token(request: web.Request, now: datetime) -> str:
    """The request's bearer token if present and not expired, else Problem 401."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Problem(
            401, "not-logged-in", "log in with your ticket and ID number first", logged_in=False
        )
    token = token.strip()
    expiry, _, rest = token.partition(".")
    if not expiry.isdigit() or not rest:
        raise Problem(401, "bad-token", "the token is not one this server issued; log in again")
    if now.timestamp() >= int(expiry):
        raise Problem(401, "token-expired", "the login has expired; log in again")
    return token


# --- the attempt as the handlers see it ---------------------------------------------------


@dataclass(frozen=True)
class AttemptAuth:
    """An authenticated candidate's attempt with its timeline, read in one snapshot."""

    attempt_id: str
    session_id: str
    ticket: str
    name: str
    db_status: str  # attempts.status
    room_id: str | None
    seat_no: int | None
    last_seq: int
    started_at: str | None
    submitted_at: str | None
    timeline: Timeline
    paused: bool  # the room or venue is paused now

    def status(self, now: datetime, paper_ready: bool) -> str:
        """What the candidate is doing: waiting, answering, paused, time_up, submitted, closed."""
        if self.db_status in CLOSED_STATUSES:
            return self.db_status
        if now >= self.timeline.ends_at:
            return "time_up"
        if now < self.timeline.starts_at or not paper_ready:
            return "waiting"
        return "paused" if self.paused else "answering"


def session_rules(session: Mapping[str, Any]) -> tuple[datetime, ExamRules]:
    """A session row's actual start (scheduled + delay) and its rules."""
    if not session.get("starts_at") or not session.get("duration_ms"):
        raise Conflict(
            "session-not-ready", "the exam package has not been imported yet; please wait"
        )
    return _session_rules(
        session["starts_at"],
        session.get("start_delay_ms") or 0,
        int(session["duration_ms"]),
        session.get("paper_kind") or "standard",
        session.get("rules") or "{}",
    )


@functools.lru_cache(maxsize=64)
def _session_rules(
    starts_at: str, delay_ms: int, duration_ms: int, kind: str, rules_json: str
) -> tuple[datetime, ExamRules]:
    """`session_rules` on the row's raw values, remembered: every cache miss of candidate
    authentication needs it, and the values (the key) change only when the session does."""
    start = parse_time(starts_at) + timedelta(milliseconds=delay_ms)
    minutes = duration_ms // rules.MINUTE_MS
    return start, ExamRules.for_session(kind, minutes, json.loads(rules_json))


def candidate_timeline(
    db: Database, session: Mapping[str, Any], room_id: str | None, granted_ms: int, now: datetime
) -> tuple[Timeline, bool]:
    """One candidate's timeline (grants, room and venue pauses) and whether paused now."""
    start, exam_rules = session_rules(session)
    pauses = [
        (
            max(parse_time(r[0]), start),
            parse_time(r[1]) if r[1] else None,
        )
        for r in db.conn.execute(
            "SELECT paused_at, resumed_at FROM pauses WHERE session_id = ? "
            "AND (room_id IS NULL OR room_id = ?)",
            (session["session_id"], room_id),
        )
    ]
    paused_now = any(end is None for _, end in pauses)
    paused_total = rules.paused_ms([(b, e) for b, e in pauses if e is None or e > b], now)
    return rules.timeline(start, exam_rules, granted_ms, paused_total), paused_now


_AUTH_COLUMNS = (
    "attempt_id", "session_id", "ticket", "status", "last_seq", "started_at", "submitted_at",
    "time_granted_ms", "name", "room_id", "seat_no",
    "starts_at", "start_delay_ms", "duration_ms", "paper_kind", "rules",
)  # fmt: skip
_AUTH_SQL = """
SELECT a.attempt_id, a.session_id, a.ticket, a.status, a.last_seq, a.started_at,
       a.submitted_at, a.time_granted_ms, c.name, st.room_id, st.seat_no,
       s.starts_at, s.start_delay_ms, s.duration_ms, s.paper_kind, s.rules
FROM attempts a
JOIN candidates c ON c.session_id = a.session_id AND c.ticket = a.ticket
JOIN sessions s ON s.session_id = a.session_id
LEFT JOIN seats st ON st.session_id = a.session_id AND st.ticket = a.ticket
WHERE {where}
"""


def load_attempt(db: Database, where: str, param: str, now: datetime) -> AttemptAuth | None:
    """The attempt matching `where` (by token hash or attempt id) with its session's rules
    and its timeline: two statements (the attempt with its session, then its pauses)."""
    row = db.conn.execute(_AUTH_SQL.format(where=where), (param,)).fetchone()
    if row is None:
        return None
    a = dict(zip(_AUTH_COLUMNS, row, strict=True))
    line, paused = candidate_timeline(db, a, a["room_id"], a["time_granted_ms"], now)
    return AttemptAuth(
        attempt_id=a["attempt_id"],
        session_id=a["session_id"],
        ticket=a["ticket"],
        name=a["name"],
        db_status=a["status"],
        room_id=a["room_id"],
        seat_no=a["seat_no"],
        last_seq=a["last_seq"],
        started_at=a["started_at"],
        submitted_at=a["submitted_at"],
        timeline=line,
        paused=paused,
    )


class AttemptCache:
    """Token hash -> the attempt as last read, valid while `Store.generation` stands still.

    Reads and fills happen on the event loop's thread only. The generation is read *before*
    the database is, so a write committed during the read empties the cache at the next look.
    """

    def __init__(self) -> None:
        self.generation = -1
        self.entries: dict[str, AttemptAuth] = {}
        self.hits = 0
        self.misses = 0

    def lookup(self, store: Store, hashed: str, now: datetime) -> AttemptAuth | None:
        """The attempt holding the token hash `hashed`, from memory if still valid."""
        generation = store.generation
        if generation != self.generation:
            self.entries.clear()
            self.generation = generation
        auth = self.entries.get(hashed)
        if auth is not None:
            self.hits += 1
            return auth
        self.misses += 1
        # A handful of indexed lookups: cheaper on this thread than a hop to the read pool.
        auth = store.read_now(load_attempt, "a.token_hash = ?", hashed, now)
        if auth is not None and not auth.paused:  # a paused timeline moves with the clock
            self.entries[hashed] = auth
        return auth

    def acknowledged(self, hashed: str, seq: int) -> None:
        """Raise the cached acked seq after a save under `hashed` has been committed."""
        auth = self.entries.get(hashed)
        if auth is not None and auth.last_seq < seq:
            self.entries[hashed] = replace(auth, last_seq=seq)


async def authenticate(request: web.Request) -> AttemptAuth:
    """The attempt behind the bearer token, or a 401 (also when the token was ended
    by a login elsewhere)."""
    app = request.app
    now = app[keys.CLOCK].now()
    hashed = token_hash(bearer_token(request, now))
    auth = app[keys.ATTEMPT_CACHE].lookup(app[keys.STORE], hashed, now)
    if auth is None:
        raise _token_ended()
    request[keys.ATTEMPT] = auth
    request[keys.TOKEN_HASH] = hashed
    return auth


def _token_ended() -> Unauthenticated:
    return Unauthenticated(
        "token-ended",
        "this login has ended (you logged in on another computer, or were logged out); "
        "log in again",
    )


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
        "acked_seq": auth.last_seq,
        "submitted_at": auth.submitted_at,
        "ticket": auth.ticket,
        "name": auth.name,
        "room_id": auth.room_id,
        "seat_no": auth.seat_no,
    }


# --- login --------------------------------------------------------------------------------


class LoginLimiter:
    """Failed candidate logins per client address: at most `limit` in `window_s` seconds."""

    def __init__(self, limit: int = 20, window_s: float = 300.0) -> None:
        self.limit = limit
        self.window_s = window_s
        self._failures: dict[str, deque[float]] = {}

    def check(self, client: str) -> None:
        recent = self._recent(client)
        if len(recent) >= self.limit:
            raise RateLimited(
                "too-many-attempts",
                "too many failed logins from this computer; "
                "wait a few minutes or ask an invigilator",
            )

    def failed(self, client: str) -> None:
        self._recent(client).append(time.monotonic())

    def _recent(self, client: str) -> deque[float]:
        recent = self._failures.setdefault(client, deque())
        while recent and recent[0] < time.monotonic() - self.window_s:
            recent.popleft()
        return recent


def normalise_id_number(text: str) -> str:
    return "".join(text.split()).upper()


_CANDIDATE_COLUMNS = (
    "session_id", "ticket", "id_number", "starts_at", "start_delay_ms", "duration_ms",
    "paper_kind", "rules",
)  # fmt: skip


def find_candidate(db: Database, ticket: str) -> dict[str, Any] | None:
    """The roster row for `ticket` in the session that is not over yet (earliest first)."""
    found = db.conn.execute(
        "SELECT c.session_id, c.ticket, c.id_number, s.starts_at, s.start_delay_ms,"
        " s.duration_ms, s.paper_kind, s.rules,"
        " EXISTS (SELECT 1 FROM attempts a"
        "         WHERE a.session_id = c.session_id AND a.ticket = c.ticket),"
        " EXISTS (SELECT 1 FROM absences b"
        "         WHERE b.session_id = c.session_id AND b.ticket = c.ticket)"
        " FROM candidates c LEFT JOIN sessions s ON s.session_id = c.session_id"
        " WHERE c.ticket = ? AND COALESCE(s.status, 'scheduled') != 'ended'"
        " ORDER BY s.starts_at LIMIT 1",
        (ticket,),
    ).fetchone()
    if found is None:
        return None
    return dict(zip(_CANDIDATE_COLUMNS, found[:-2], strict=True)) | {
        "has_attempt": bool(found[-2]),
        "absent": bool(found[-1]),
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
    expected = normalise_id_number(row["id_number"]) if row else ""
    given = normalise_id_number(id_number)
    if row is None or not hmac.compare_digest(expected.encode(), given.encode()):
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
    if not row["has_attempt"]:
        try:
            rules.check_entry(now, start, exam_rules)
        except RuleViolation as exc:
            raise Forbidden(exc.slug, str(exc)) from None
    return row


@routes.post("/api/v1/candidate/login", name="candidate_login")
async def login(request: web.Request) -> web.Response:
    """Log a candidate in with ticket and ID number; returns a bearer token and the attempt."""
    app = request.app
    client = request.remote or ""
    app[keys.LOGIN_LIMITER].check(client)
    body = await read_json_object(request, MAX_LOGIN_BODY)
    ticket = require_field(body, "ticket", str).strip()
    id_number = require_field(body, "id_number", str)
    now = app[keys.CLOCK].now()
    store = app[keys.STORE]
    row = store.read_now(find_candidate, ticket)  # indexed lookups, like authentication's
    try:
        row = check_login(row, id_number, now)
    except Unauthenticated:
        app[keys.LOGIN_LIMITER].failed(client)
        raise
    token = new_token(now, app[keys.SETTINGS].token_ttl_s)
    hashed = token_hash(token)
    await store.write(record_login, row["session_id"], ticket, hashed, client, now)
    auth = app[keys.ATTEMPT_CACHE].lookup(store, hashed, now)
    assert auth is not None  # just written and committed
    ready = paper_ready(app, auth.session_id)
    return web.json_response({"token": token, "attempt": attempt_view(auth, now, ready)})


# --- status and heartbeat -----------------------------------------------------------------


@routes.get("/api/v1/attempt", name="attempt")
async def get_attempt(request: web.Request) -> web.Response:
    """The attempt's status and times, with the server's time."""
    auth = await authenticate(request)
    now = request.app[keys.CLOCK].now()
    return web.json_response(attempt_view(auth, now, paper_ready(request.app, auth.session_id)))


@routine_write  # last seen times are monitoring; no cache holds them
def record_seen(db: Database, seen: list[tuple[str, str]]) -> None:
    """Write heartbeat times (attempt id, ISO time); never move a later time back."""
    db.conn.executemany(
        "UPDATE attempts SET last_seen_at = MAX(COALESCE(last_seen_at, ''), ?)"
        " WHERE attempt_id = ?",
        [(at, attempt_id) for attempt_id, at in seen],
    )


async def flush_seen(app: web.Application) -> int:
    """Write the heartbeats collected in memory in one transaction; returns how many."""
    live = app[keys.LIVE]
    seen, live.seen = live.seen, {}
    if seen:
        await app[keys.STORE].write(record_seen, list(seen.items()))
    return len(seen)


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
    exam = app[keys.LIVE].exam
    if exam is None or exam.session_id != auth.session_id:
        raise Problem(409, "paper-locked", "the paper has not been unlocked yet; please wait")
    if now < auth.timeline.starts_at:
        raise Problem(
            409, "not-started", f"the exam starts at {iso(auth.timeline.starts_at)}; please wait"
        )
    if auth.started_at is None:
        # Recording the first serving is evidence, not a condition of this reply: it is queued
        # for the next group commit without holding the paper back (the store drains its
        # queue on shutdown).
        run_in_background(app, app[keys.STORE].write(mark_started, auth.attempt_id, iso(now)))
    return web.Response(body=exam.paper_body(auth.ticket), content_type="application/json")


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
        )


# --- saves --------------------------------------------------------------------------------


def check_answer_shapes(responses: Mapping[str, Any]) -> None:
    """Each answer is a list of strings (choice, fill-in) or a string (essay)."""
    for token, answer in responses.items():
        if isinstance(answer, str):
            continue
        if isinstance(answer, list) and all(isinstance(a, str) for a in answer):
            continue
        raise Invalid(
            "invalid-answer",
            f"the answer for item {token!r} must be a list of strings or a string",
        )


@routine_write  # the caller raises the cached acked seq; nothing else it changes is cached
def save_batch(
    db: Database, attempt_id: str, hashed: str, seq: int, answers: dict[str, Any], now: datetime
) -> int:
    """Append one save to the journal unless the attempt is closed or no longer held by the
    token hash `hashed` (a login elsewhere); returns the acked seq.

    Both are checked inside the write transaction (`append_save(held_by=...)`), so no
    authentication read before it, cached or not, can let a save in after a submission, a
    close or a move to another PC. `append_save` also records the save's time as the
    attempt's last seen time."""
    try:
        return journal.append_save(db, attempt_id, seq, answers, now, held_by=hashed)
    except journal.AttemptClosed:
        raise Conflict(
            "attempt-submitted", "this attempt is closed; nothing can be saved"
        ) from None
    except journal.TokenEnded:
        raise _token_ended() from None


@routes.put("/api/v1/attempt/responses", name="responses")
async def put_responses(request: web.Request) -> web.Response:
    """Save a batch of answers; the same seq twice is acknowledged once, other content is 409."""
    auth = await authenticate(request)
    app = request.app
    body = await read_json_object(request, app[keys.SETTINGS].max_save_bytes)
    seq = require_field(body, "seq", int)
    if seq < 1:
        raise Problem(422, "invalid-field", "field 'seq' must be 1 or more")
    responses = require_field(body, "responses", dict)
    check_answer_shapes(responses)
    now = app[keys.CLOCK].now()
    check_open(auth, now)
    exam = app[keys.LIVE].exam
    if exam is None or exam.session_id != auth.session_id or now < auth.timeline.starts_at:
        raise Problem(409, "not-started", "answers are taken only once the exam has started")
    answers = exam.to_canonical(auth.ticket, responses)
    hashed = request[keys.TOKEN_HASH]
    try:
        acked = await app[keys.STORE].write(save_batch, auth.attempt_id, hashed, seq, answers, now)
    except journal.SeqConflict as exc:
        raise Problem(409, "seq-conflict", str(exc)) from None
    except journal.SaveTooLarge as exc:
        raise Problem(413, "too-large", str(exc)) from None
    except journal.JournalError as exc:
        raise Problem(422, "invalid-save", str(exc)) from None
    app[keys.ATTEMPT_CACHE].acknowledged(hashed, acked)
    return web.json_response({"acked_seq": acked})


# --- submission and closing ---------------------------------------------------------------


class AlreadyClosed(Conflict):
    """The attempt was submitted or closed already: there is nothing left to finalise."""

    def __init__(self, detail: str) -> None:
        super().__init__("attempt-submitted", detail)


def finalise_attempt(db: Database, attempt_id: str, how: str, at: datetime) -> dict[str, Any]:
    """Freeze the acknowledged answers as the submission; returns receipt and time."""
    now = iso(at)
    row = db.execute(
        "SELECT status, last_seq, session_id, ticket FROM attempts WHERE attempt_id = ?",
        [attempt_id],
    ).fetchone()
    if row is None or row[0] in CLOSED_STATUSES:
        raise AlreadyClosed("this attempt has already been submitted")
    answers = {
        item_id: json.loads(answer)
        for item_id, answer in db.execute(
            "SELECT item_id, answer FROM responses WHERE attempt_id = ? ORDER BY item_id",
            [attempt_id],
        )
    }
    receipt = canonical_hash(answers)
    db.table("submissions").insert(
        {
            "attempt_id": attempt_id,
            "submitted_at": now,
            "how": how,
            "final_seq": row[1],
            "answers": canonical_json(answers).decode("utf-8"),
            "receipt": receipt,
        }
    )
    status = "submitted" if how == "candidate" else "closed"
    db.execute(
        "UPDATE attempts SET status = ?, submitted_at = ? WHERE attempt_id = ?",
        [status, now, attempt_id],
    )
    actor = f"candidate:{row[3]}" if how == "candidate" else "system"
    audit.record(
        db,
        actor,
        f"attempt.{status}",
        f"session:{row[2]}/ticket:{row[3]}",
        {"attempt_id": attempt_id, "how": how, "final_seq": row[1], "receipt": receipt},
        now=at,
    )
    return {"submitted_at": now, "receipt": receipt}


@routes.post("/api/v1/attempt/submit", name="submit")
async def submit(request: web.Request) -> web.Response:
    """Submit the attempt: refused in the sealed period; returns the receipt."""
    auth = await authenticate(request)
    now = request.app[keys.CLOCK].now()
    check_open(auth, now)
    try:
        rules.check_submit(now, auth.timeline)
    except RuleViolation as exc:
        raise Problem(
            409, exc.slug, str(exc), submit_opens_at=iso(auth.timeline.submit_opens_at)
        ) from None
    result = await request.app[keys.STORE].write(
        finalise_attempt, auth.attempt_id, "candidate", now
    )
    return web.json_response(result)


def attempts_due(db: Database, now: datetime) -> list[str]:
    """Ids of open attempts whose time is up.

    Grants and pauses only ever move an end later, so a session whose plain end (start +
    duration) is still ahead has nothing due: its attempts are not even read. This keeps the
    once-a-second pass cheap while 3,000 candidates are answering.
    """
    due = []
    for session in db.query("SELECT * FROM sessions WHERE status != 'ended'"):
        if not session.get("starts_at") or not session.get("duration_ms"):
            continue
        start, exam_rules = session_rules(session)
        if now < start + timedelta(milliseconds=exam_rules.duration_ms):
            continue
        for a in db.query(
            "SELECT a.attempt_id, a.time_granted_ms, st.room_id FROM attempts a "
            "LEFT JOIN seats st ON st.session_id = a.session_id AND st.ticket = a.ticket "
            "WHERE a.session_id = ? AND a.status IN ('logged_in', 'answering')",
            [session["session_id"]],
        ):
            line, _ = candidate_timeline(db, session, a["room_id"], a["time_granted_ms"], now)
            if now >= line.ends_at:
                due.append(a["attempt_id"])
    return due


def close_attempts(db: Database, attempt_ids: list[str], now: datetime) -> int:
    """Close each attempt still open with its acknowledged answers; returns how many."""
    closed = 0
    for attempt_id in attempt_ids:
        with contextlib.suppress(AlreadyClosed):  # submitted meanwhile: nothing to close
            finalise_attempt(db, attempt_id, "time_up", now)
            closed += 1
    return closed


def end_finished_sessions(db: Database, now: datetime) -> list[str]:
    """Mark ended each unlocked session whose plain end has passed with no attempt still open.

    An ended session is what the outbox worker exports and sends home (art. 35(1)). Grants
    and pauses keep attempts open past the plain end, and an open attempt keeps its session
    running, so nobody's extra time is cut short.
    """
    ended = []
    for session in db.query("SELECT * FROM sessions WHERE status = 'unlocked'"):
        if not session.get("starts_at") or not session.get("duration_ms"):
            continue
        start, exam_rules = session_rules(session)
        if now < start + timedelta(milliseconds=exam_rules.duration_ms):
            continue
        still_open = db.execute(
            "SELECT COUNT(*) FROM attempts WHERE session_id = ?"
            " AND status IN ('logged_in', 'answering')",
            [session["session_id"]],
        ).fetchone()[0]
        if still_open:
            continue
        db.execute(
            "UPDATE sessions SET status = 'ended', ended_at = ? WHERE session_id = ?",
            [iso(now), session["session_id"]],
        )
        audit.record(db, "system", "session.ended", f"session:{session['session_id']}", {}, now=now)
        ended.append(session["session_id"])
    return ended


async def close_due_attempts(app: web.Application) -> int:
    """One pass of the closer: close every attempt whose time is up, then end the sessions
    that are over (the outbox worker exports and uploads those)."""
    now = app[keys.CLOCK].now()
    due = await app[keys.STORE].read(attempts_due, now)
    closed = await app[keys.STORE].write(close_attempts, due, now) if due else 0
    if closed:
        log.info("attempt.closed_at_time count=%d", closed)
    for session_id in await app[keys.STORE].write(end_finished_sessions, now):
        log.info("session.ended session=%s", session_id)
    return closed


def start_closer(app: web.Application) -> asyncio.Task[None]:
    async def run() -> None:
        while True:
            await asyncio.sleep(app[keys.SETTINGS].close_interval_s)
            try:
                await flush_seen(app)
                await close_due_attempts(app)
            except Exception:
                log.exception("attempt.closer_failed")

    return asyncio.create_task(run(), name="attempt-closer")


def setup(app: web.Application) -> None:
    app[keys.LOGIN_LIMITER] = LoginLimiter()
    app[keys.ATTEMPT_CACHE] = AttemptCache()
