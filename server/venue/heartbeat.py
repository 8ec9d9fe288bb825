"""The venue's live line to the centre (issue 14, point 4; art. 26, 31).

While the venue server runs with a central URL, `heartbeat_context` runs a background task
that, about every `heartbeat_s` seconds (CBT_HEARTBEAT_S, default 60), queues a heartbeat:
per session its state and the counts the chief examiner sees on the monitor
(`server.venue.invigilate.room_status` and its `reconciliation`), the serious violations
and the time changes (`server.protocol.heartbeat`). A serious violation is queued at once
(the task looks for one every `SERIOUS_POLL_S`).

Messages wait in `heartbeat_queue` (venue DB) and are sent in order, oldest first; the first
one that does not go through stops the round, and the next round tries again, so while the
centre is out of reach they pile up and are delivered later in order. Each carries its row
number as `seq`; the centre stores one message per (venue, seq), so a message sent twice (an
answer lost after the centre stored it) counts once. Calls have short timeouts and run in the
background: the exam never waits on the centre.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import datetime
from typing import Any

import aiohttp
from aiohttp import web
from sqlite_utils import Database

from paperpack import crypto
from server.clock import Clock, iso
from server.protocol import heartbeat as protocol
from server.protocol.upload_auth import sign_upload_request
from server.protocol.violation_rules import SERIOUS_KINDS as SERIOUS_VIOLATION_KINDS
from server.venue import keys
from server.venue.invigilate import reconciliation, room_status
from server.venue.workspace import load_signing_key, load_venue

log = logging.getLogger(__name__)

SERIOUS_POLL_S = 2.0  # how often the task looks for a new serious violation
SEND_TIMEOUT_S = 5.0  # one call to the centre; the next round tries again
SEND_BATCH = 200  # messages per round at most (a long cut drains over a few rounds)
_refused: set[int] = set()  # the centre's refusals logged since the last message went through


def _serious(db: Database, sessions: list[str]) -> dict[str, list[dict[str, Any]]]:
    kinds = sorted(SERIOUS_VIOLATION_KINDS)
    rows = db.execute(
        "SELECT violation_id, session_id, ticket, kind, recorded_at FROM violations"
        " WHERE session_id IN (SELECT value FROM json_each(?))"
        " AND kind IN (SELECT value FROM json_each(?)) ORDER BY violation_id",
        [json.dumps(sessions), json.dumps(kinds)],
    ).fetchall()
    found: dict[str, list[dict[str, Any]]] = {}
    for violation_id, session_id, ticket, kind, recorded_at in rows:
        found.setdefault(session_id, []).append(
            {"violation_id": violation_id, "ticket": ticket, "kind": kind,
             "recorded_at": recorded_at}
        )  # fmt: skip
    return found


def latest_serious(db: Database) -> int:
    """The highest violation_id of a serious kind (0: none)."""
    kinds = json.dumps(sorted(SERIOUS_VIOLATION_KINDS))
    row = db.execute(
        "SELECT MAX(violation_id) FROM violations WHERE kind IN (SELECT value FROM json_each(?))",
        [kinds],
    ).fetchone()
    return int(row[0] or 0)


def snapshot(
    db: Database, now: datetime, stale_s: int, seen: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    """Per session the monitor shows: its state and counts, serious violations, time changes."""
    status = room_status(db, None, now, stale_s, seen)
    sessions: list[str] = status["session_ids"]
    if not sessions:
        return []
    chosen = json.dumps(sessions)
    of_ticket = dict(
        db.execute(
            "SELECT ticket, session_id FROM candidates"
            " WHERE session_id IN (SELECT value FROM json_each(?))",
            [chosen],
        ).fetchall()
    )
    serious = _serious(db, sessions)
    result = []
    for session_id in sorted(sessions):
        state, ended_at = db.execute(
            "SELECT status, ended_at FROM sessions WHERE session_id = ?", [session_id]
        ).fetchone()
        mine = [c for c in status["candidates"] if of_ticket.get(c["ticket"]) == session_id]
        room_incidents = db.execute(
            "SELECT COUNT(*) FROM incidents WHERE session_id = ? AND ticket IS NULL", [session_id]
        ).fetchone()[0]
        pauses, running = db.execute(
            "SELECT COUNT(*), COALESCE(SUM(resumed_at IS NULL), 0) FROM pauses"
            " WHERE session_id = ?",
            [session_id],
        ).fetchone()
        counts = reconciliation(mine, room_incidents, pauses)
        counts["logged_in"] = sum(1 for c in mine if c["logged_in"])
        counts["answering"] = sum(1 for c in mine if c["status"] == "answering")
        granted_ms = sum(c["time_granted_ms"] for c in mine)
        result.append(
            {"session_id": session_id, "state": "paused" if running else state,
             "ended_at": ended_at, "counts": counts, "serious": serious.get(session_id, []),
             "time_changes": {"grants": counts["time_grants"], "granted_ms": granted_ms,
                              "pauses": pauses, "pauses_running": running}}
        )  # fmt: skip
    return result


def enqueue(
    db: Database, venue_id: str, kind: str, now: datetime, stale_s: int,
    seen: Mapping[str, str] | None = None,
) -> int:  # fmt: skip
    """Queue one message of `kind` with the venue's state now; returns its seq."""
    upto = latest_serious(db)
    cursor = db.execute(
        "INSERT INTO heartbeat_queue (kind, body, serious_upto, created_at) VALUES (?, '', ?, ?)",
        [kind, upto, iso(now)],
    )
    seq = int(cursor.lastrowid or 0)
    sessions = snapshot(db, now, stale_s, seen)
    message = protocol.build_message(venue_id, seq, kind, iso(now), sessions)
    db.execute("UPDATE heartbeat_queue SET body = ? WHERE seq = ?", [json.dumps(message), seq])
    return seq


def serious_sent_upto(db: Database) -> int:
    """The highest serious violation a queued message carries already."""
    row = db.execute("SELECT COALESCE(MAX(serious_upto), 0) FROM heartbeat_queue").fetchone()
    return int(row[0])


def waiting(db: Database, limit: int = SEND_BATCH) -> list[tuple[int, str]]:
    """Messages not yet acknowledged, oldest first: (seq, body)."""
    rows = db.execute(
        "SELECT seq, body FROM heartbeat_queue WHERE sent_at IS NULL ORDER BY seq LIMIT ?",
        [limit],
    ).fetchall()
    return [(int(seq), str(body)) for seq, body in rows]


def mark_sent(db: Database, seq: int, now: datetime) -> None:
    db.execute("UPDATE heartbeat_queue SET sent_at = ? WHERE seq = ?", [iso(now), seq])


async def send_one(
    http: aiohttp.ClientSession, central_url: str, venue_id: str,
    venue_key: crypto.Ed25519PrivateKey, body: bytes, clock: Clock,
) -> bool:  # fmt: skip
    """POST one message; True once the centre has it (stored now or before)."""
    value = sign_upload_request(
        venue_key, venue_id, "POST", protocol.PATH, iso(clock.now()),
        hashlib.sha256(body).hexdigest(),
    )  # fmt: skip
    headers = {"Authorization": value, "Content-Type": "application/json"}
    async with http.post(central_url.rstrip("/") + protocol.PATH, data=body, headers=headers) as r:
        if r.status == 200:
            _refused.clear()
            return True
        if r.status not in _refused:  # once per kind of refusal, not every round
            _refused.add(r.status)
            log.warning("heartbeat.refused status=%d (retried every round)", r.status)
        return False


async def send_waiting(
    app: web.Application, http: aiohttp.ClientSession, venue_id: str,
    venue_key: crypto.Ed25519PrivateKey,
) -> int:  # fmt: skip
    """Send the queued messages in order until one fails; how many went."""
    store, clock = app[keys.STORE], app[keys.CLOCK]
    sent = 0
    for seq, body in await store.read(waiting):
        try:
            ok = await send_one(
                http, app[keys.SETTINGS].central_url, venue_id, venue_key, body.encode(), clock,
            )  # fmt: skip
        except (TimeoutError, aiohttp.ClientError, ConnectionError, OSError) as exc:
            log.info("heartbeat.unreachable seq=%d error=%s", seq, type(exc).__name__)
            return sent
        if not ok:
            return sent
        await store.write(mark_sent, seq, clock.now())
        sent += 1
    return sent


async def heartbeat_loop(app: web.Application, interval_s: float) -> None:
    """Queue a heartbeat every `interval_s`, a serious one at once; send what waits."""
    store, clock, settings = app[keys.STORE], app[keys.CLOCK], app[keys.SETTINGS]
    venue = load_venue(settings.venue_dir)
    venue_id, venue_key = venue.venue_id, load_signing_key(venue)
    poll = min(SERIOUS_POLL_S, interval_s)
    timeout = aiohttp.ClientTimeout(total=SEND_TIMEOUT_S)
    last_beat = -float("inf")
    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession(timeout=timeout) as http:
        while True:
            try:
                seen = dict(app[keys.LIVE].seen)
                now = clock.now()
                stale_s = settings.stale_after_s
                if await store.read(latest_serious) > await store.read(serious_sent_upto):
                    await store.write(enqueue, venue_id, "serious", now, stale_s, seen)
                    last_beat = loop.time()
                elif loop.time() - last_beat >= interval_s:
                    await store.write(enqueue, venue_id, "heartbeat", now, stale_s, seen)
                    last_beat = loop.time()
                await send_waiting(app, http, venue_id, venue_key)
            except Exception:  # the live line must never take the server down; logged
                log.exception("heartbeat.round_failed")
            await asyncio.sleep(poll)


def heartbeat_context(interval_s: float) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup context running `heartbeat_loop` while the app runs (central URL set)."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(heartbeat_loop(app, interval_s))
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return context
