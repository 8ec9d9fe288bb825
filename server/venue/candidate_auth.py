"""Candidate authentication: bearer tokens, the attempt behind one, and its in-memory cache.

Tokens are `<expiry unix seconds>.<43 random url-safe characters>`, stored as SHA-256 hashes:
the expiry is covered by the hash, so it cannot be altered, and is checked before any lookup.
Every candidate request authenticates (`authenticate`) and gets an `AttemptAuth`: the attempt
with its timeline, read in one snapshot.

The attempt behind a token is kept in memory (`AttemptCache`) for as long as the store's
`generation` stands still: any committed write that changes rows (a login elsewhere, a
submission, a close at time, a pause, a grant, a seat move, a session ending, a roster change,
another process writing the file) moves it on and empties the cache before its caller hears of
the commit. Only autosaves and heartbeats are `routine_write`s: they leave the cache alone, and
a save updates its entry's acked seq itself. An attempt while paused is never cached (its end
moves with the clock). Whatever the cache holds, a save is accepted only if, inside its own
write transaction, the attempt is still open and still held by this token (`server.venue.saves`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import secrets
from dataclasses import dataclass, replace
from datetime import datetime

from aiohttp import web
from sqlite_utils import Database

from server.errors import Unauthenticated
from server.problems import Problem
from server.store import Store
from server.venue import keys
from server.venue.journal import CLOSED_STATUSES
from server.venue.rules import RoomPolicy, Timeline
from server.venue.timelines import candidate_timeline, outage_open

# --- tokens -------------------------------------------------------------------------------

# What `new_token` makes, in ASCII only: "²".isdigit() is true and int() refuses 5,000 digits,
# and both were 500s (issue 16, F7). Twelve digits reach the year 33658.
_TOKEN = re.compile(r"[0-9]{1,12}\.[A-Za-z0-9_-]{1,128}", re.ASCII)


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
    if not _TOKEN.fullmatch(token):
        raise Problem(401, "bad-token", "the token is not one this server issued; log in again")
    if now.timestamp() >= int(token.partition(".")[0]):
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
    paused: bool  # the room or venue is paused now, or the server is reopening the paper
    reopening: bool = False  # the server restarted and the paper is not open again yet
    identity_ok: bool = True  # verified by an invigilator, or the session does not ask (art. 30)

    def status(self, now: datetime, paper_ready: bool) -> str:
        """What the candidate is doing: waiting, answering, paused, time_up, submitted, closed.

        After a restart, until the paper is open again, a started exam is `paused` (the clock
        is stopped), never `waiting`: the candidate has started and keeps their answers."""
        if self.db_status in CLOSED_STATUSES:
            return self.db_status
        if now >= self.timeline.ends_at:
            return "time_up"
        if not self.identity_ok:
            return "identity_check"
        if now < self.timeline.starts_at:
            return "waiting"
        if self.reopening:
            return "paused"
        if not paper_ready:
            return "waiting"
        return "paused" if self.paused else "answering"

    def paused_reason(self, now: datetime) -> str | None:
        """Why the clock stands still: 'restart' (the server reopens the paper), 'staff'."""
        if now < self.timeline.starts_at or not self.paused:
            return None
        return "restart" if self.reopening else "staff"


_AUTH_COLUMNS = (
    "attempt_id", "session_id", "ticket", "status", "last_seq", "started_at", "submitted_at",
    "time_granted_ms", "name", "room_id", "seat_no",
    "starts_at", "start_delay_ms", "duration_ms", "paper_kind", "rules",
    "identity_checked_by", "package_kind",
)  # fmt: skip
_AUTH_SQL = """
SELECT a.attempt_id, a.session_id, a.ticket, a.status, a.last_seq, a.started_at,
       a.submitted_at, a.time_granted_ms, c.name, st.room_id, st.seat_no,
       s.starts_at, s.start_delay_ms, s.duration_ms, s.paper_kind, s.rules,
       a.identity_checked_by, (SELECT kind FROM packages p WHERE p.package_id = s.package_id)
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
    reopening = paused and outage_open(db, a["session_id"])
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
        reopening=reopening,
        identity_ok=a["identity_checked_by"] is not None
        or not _policy(a["rules"], a["package_kind"] == "practice").identity_check,
    )


@functools.lru_cache(maxsize=64)
def _policy(rules_json: str, practice: bool) -> RoomPolicy:
    return RoomPolicy.for_session(json.loads(rules_json or "{}"), practice)


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
        raise token_ended()
    request[keys.ATTEMPT] = auth
    request[keys.TOKEN_HASH] = hashed
    return auth


def token_ended() -> Unauthenticated:
    return Unauthenticated(
        "token-ended",
        "this login has ended (you logged in on another computer, or were logged out); "
        "log in again",
    )
