"""The venue's end-of-session report: travels inside every export (signed with the package).

The centre releases the answer keys for scoring once every venue of a session has sent a
*final* report (art. 35(2)): not at a fixed time, which approved delays, pauses and grants can
run past, nor later than needed. An export is final when the session has ended at the venue
(its plain end passed and no attempt was left open: `closer.end_sessions`).

    {"final": bool, "partial_reason": str | None,
     "ended_at": ISO | None,            # when the venue ended the session
     "expected_end": ISO | None,        # latest end of an attempt still open (partial only)
     "open_tickets": [...],             # attempts still open (partial only)
     "attempts": {"total", "submitted", "closed", "open"},
     "time_changes": {"grants": n, "granted_ms": total, "pauses": n, "paused_ms": total}}

`cbt venue export` while any attempt is open refuses, naming them, unless given
`--partial --reason`: a partial export carries `final: false` and the reason, and the centre
never takes it as the session's end.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlite_utils import Database

from server.clock import iso, parse_time
from server.venue.timelines import candidate_timeline

OPEN = ("logged_in", "answering")


def open_attempts(db: Database, session_id: str) -> list[dict[str, Any]]:
    """The session's attempts still open, with what their timeline needs."""
    return list(
        db.query(
            "SELECT a.attempt_id, a.ticket, a.time_granted_ms, st.room_id FROM attempts a"
            " LEFT JOIN seats st ON st.session_id = a.session_id AND st.ticket = a.ticket"
            " WHERE a.session_id = ? AND a.status IN ('logged_in', 'answering')"
            " ORDER BY a.ticket",
            [session_id],
        )
    )


def _expected_end(db: Database, session: dict[str, Any], still_open: list[dict[str, Any]],
                  now: datetime) -> str | None:  # fmt: skip
    ends = [
        candidate_timeline(db, session, a["room_id"], a["time_granted_ms"], now)[0].ends_at
        for a in still_open
    ]
    return iso(max(ends)) if ends else None


def _time_changes(db: Database, session_id: str, now: datetime) -> dict[str, int]:
    grants = db.execute(
        "SELECT COUNT(*), COALESCE(SUM(g.granted_ms), 0) FROM time_grants g"
        " JOIN attempts a USING (attempt_id) WHERE a.session_id = ?",
        [session_id],
    ).fetchone()
    paused_ms = 0
    pauses = list(
        db.query("SELECT paused_at, resumed_at FROM pauses WHERE session_id = ?", [session_id])
    )
    for pause in pauses:
        until = parse_time(pause["resumed_at"]) if pause["resumed_at"] else now
        paused_ms += max(0, int((until - parse_time(pause["paused_at"])).total_seconds() * 1000))
    return {"grants": int(grants[0]), "granted_ms": int(grants[1]), "pauses": len(pauses),
            "paused_ms": paused_ms}  # fmt: skip


def end_report(
    db: Database, session: dict[str, Any], now: datetime, partial_reason: str | None = None
) -> dict[str, Any]:
    """The report for `session` (a sessions row) as of `now`."""
    session_id = session["session_id"]
    still_open = open_attempts(db, session_id)
    counts = dict(
        db.execute(
            "SELECT status, COUNT(*) FROM attempts WHERE session_id = ? GROUP BY status",
            [session_id],
        ).fetchall()
    )
    final = session.get("status") == "ended" and not still_open and partial_reason is None
    return {
        "final": final,
        "partial_reason": partial_reason,
        "ended_at": session.get("ended_at"),
        "expected_end": _expected_end(db, session, still_open, now),
        "open_tickets": [a["ticket"] for a in still_open],
        "attempts": {
            "total": sum(counts.values()),
            "submitted": counts.get("submitted", 0),
            "closed": counts.get("closed", 0),
            "open": len(still_open),
        },
        "time_changes": _time_changes(db, session_id, now),
    }
