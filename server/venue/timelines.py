"""A candidate's timeline as the database holds it: the session's actual start (scheduled
plus any delay) and rules, then the candidate's grants, the room's and venue's pauses, and an
open server outage (the paper not yet open again after a restart, `server.venue.restart`),
which pauses every attempt of its session until the time is given back as a grant.

The arithmetic is `server.venue.rules`; this module reads its inputs from the rows.
Candidate authentication, the invigilators' views and the closer all ask here.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlite_utils import Database

from server.clock import parse_time
from server.errors import Conflict
from server.venue import rules
from server.venue.rules import ExamRules, Timeline


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
    db: Database,
    session: Mapping[str, Any],
    room_id: str | None,
    granted_ms: int,
    now: datetime,
    *,
    outages: bool = True,
) -> tuple[Timeline, bool]:
    """One candidate's timeline (grants, room and venue pauses, an open server outage unless
    `outages` is False) and whether paused now."""
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
    if outages:
        pauses += [
            (max(parse_time(r[0]), start), None)
            for r in db.conn.execute(
                "SELECT down_at FROM outages WHERE session_id = ? AND reopened_at IS NULL",
                (session["session_id"],),
            )
        ]
    paused_now = any(end is None for _, end in pauses)
    paused_total = rules.paused_ms([(b, e) for b, e in pauses if e is None or e > b], now)
    return rules.timeline(start, exam_rules, granted_ms, paused_total), paused_now


def outage_open(db: Database, session_id: str) -> bool:
    """True while the server has restarted and the session's paper is not open again."""
    row = db.conn.execute(
        "SELECT 1 FROM outages WHERE session_id = ? AND reopened_at IS NULL LIMIT 1",
        (session_id,),
    ).fetchone()
    return row is not None
