"""The closer: a background task that closes every attempt whose time is up.

Once every `close_interval_s` seconds it writes the heartbeats collected in memory, closes
each open attempt whose end (with grants and pauses) has passed with what was acknowledged
(`finalise_attempt`, how `time_up`), marks ended each unlocked session that is over with
no attempt still open (the outbox worker exports and sends those home), and tends the sealed
paper key (`server.venue.restart`: kept from the exam's start, destroyed at the end).
`closer_context` runs it for the app's lifetime and writes the last heartbeats on shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

from aiohttp import web
from sqlite_utils import Database

from server import audit
from server.clock import iso
from server.store import routine_write
from server.venue import keys
from server.venue.background import stop_task
from server.venue.restart import tend_paper_key
from server.venue.submission import AlreadyClosed, finalise_attempt
from server.venue.timelines import candidate_timeline, session_rules

log = logging.getLogger(__name__)


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
    ended = await app[keys.STORE].write(end_finished_sessions, now)
    for session_id in ended:
        log.info("session.ended session=%s", session_id)
    # The sealed paper key is kept from the exam's start and destroyed at the session's end.
    await tend_paper_key(app, ended)
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


async def closer_context(app: web.Application) -> AsyncIterator[None]:
    """Run the closer while the app runs; on shutdown stop it and write the last heartbeats."""
    task = start_closer(app)
    app[keys.CLOSER] = task
    try:
        yield
    finally:
        await stop_task(task)
        await flush_seen(app)  # the store is still open: its context exits last
