"""Bounded time (art. 31): one total of a session's time changes, and who may change how much.

A session's time changes are its start delay, the venue's and each room's pauses and the
room-wide grants, counted per room (overlapping pauses once, `rules.paused_ms`); the session's
total is its worst room. Past the session's limit (`RoomPolicy.time_changes_limit_ms`, 30 min
unless the signed rules make it stricter) every change needs the centre's signed approval:
the format-2 code of `paperpack approve-delay` for this session, venue and package, unexpired,
of at least the new total (`paperpack.approval.check_time_approval`). An approval entered once
is kept (`time_approvals`) and checked again, expiry included, each time it is relied on.

One candidate's own grants are capped instead (`RoomPolicy.grant_cap_ms`): beyond the cap an
invigilator is refused and only the chief examiner, under their own login, may grant more.
The time the server gives back after a restart ('system') and room-wide grants do not count
towards that cap. `time_changes` is the sum of every change per candidate and per room, for
the monitor and `GET /api/v1/staff/time-changes`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from paperpack.approval import ApprovalRejected, approval_expiry, check_time_approval
from paperpack.crypto import Ed25519PublicKey
from server import audit
from server.clock import iso, parse_time
from server.errors import Conflict, Forbidden
from server.venue import rules
from server.venue.packages import authority_key
from server.venue.rules import MINUTE_MS, RoomPolicy
from server.venue.timelines import session_rules
from server.venue.workspace import Venue


@dataclass(frozen=True)
class Bound:
    """What a handler passes to a write that may go past the limit: this venue (its pinned
    authority key is read only when an approval is checked) and the code typed, if any."""

    venue: Venue
    code: str | None = None

    def authority_key(self) -> Ed25519PublicKey:
        return authority_key(self.venue)


def _session(db: Database, session_id: str) -> dict[str, Any]:
    cursor = db.conn.execute(
        "SELECT s.*, (SELECT kind FROM packages p WHERE p.package_id = s.package_id) AS pkg_kind"
        " FROM sessions s WHERE session_id = ?",
        (session_id,),
    )
    row = cursor.fetchone()
    names = [d[0] for d in cursor.description]
    return dict(zip(names, row, strict=True)) if row else {}


def session_policy(db: Database, session_id: str) -> RoomPolicy:
    """The room rules of a session (its signed overrides, the regulation's defaults)."""
    session = _session(db, session_id)
    return RoomPolicy.for_session(
        json.loads(session.get("rules") or "{}"), session.get("pkg_kind") == "practice"
    )


def time_changes(db: Database, session_id: str, now: datetime) -> dict[str, Any]:
    """Every time change of a session: start delay, pauses (venue, per room), room-wide grants,
    each candidate's own grants; per room and per candidate totals; the session's total (the
    worst room), its limit and the approval in force."""
    session = _session(db, session_id)
    policy = session_policy(db, session_id)
    delay = int(session.get("start_delay_ms") or 0)
    try:
        start, _ = session_rules(session)
    except Conflict:  # no package yet: nothing has started, only a delay can be set
        start = None
    pauses = db.conn.execute(
        "SELECT room_id, paused_at, resumed_at FROM pauses WHERE session_id = ?", (session_id,)
    ).fetchall()

    def paused_for(room_id: str | None) -> int:
        spans = [
            (
                max(parse_time(b), start) if start else parse_time(b),
                parse_time(e) if e else None,
            )
            for r, b, e in pauses
            if r is None or r == room_id
        ]
        return rules.paused_ms([(b, e) for b, e in spans if e is None or e > b], now)

    room_ids = [
        r[0]
        for r in db.conn.execute(
            "SELECT DISTINCT room_id FROM seats WHERE session_id = ?"
            " UNION SELECT room_id FROM pauses WHERE session_id = ? AND room_id IS NOT NULL"
            " ORDER BY 1",
            (session_id, session_id),
        )
    ]
    room_grants = dict(
        db.conn.execute(
            "SELECT room_id, SUM(granted_ms) FROM room_grants WHERE session_id = ?"
            " GROUP BY room_id",
            (session_id,),
        ).fetchall()
    )
    venue_pauses = paused_for(None)
    rooms = []
    for room_id in room_ids:
        paused = paused_for(room_id)
        granted = int(room_grants.get(room_id) or 0)
        rooms.append(
            {
                "room_id": room_id,
                "pauses_ms": paused,
                "room_grants_ms": granted,
                "total_ms": delay + paused + granted,
            }
        )
    total = max([delay + venue_pauses] + [r["total_ms"] for r in rooms])
    by_room = {r["room_id"]: r["total_ms"] for r in rooms}
    candidates = []
    for ticket, room_id, own, system in db.conn.execute(
        "SELECT c.ticket, st.room_id,"
        " (SELECT COALESCE(SUM(g.granted_ms), 0) FROM time_grants g WHERE g.attempt_id ="
        "  a.attempt_id AND g.granted_by != 'system' AND g.grant_id NOT IN"
        "  (SELECT grant_id FROM room_grant_members)),"
        " (SELECT COALESCE(SUM(g.granted_ms), 0) FROM time_grants g WHERE g.attempt_id ="
        "  a.attempt_id AND g.granted_by = 'system')"
        " FROM candidates c LEFT JOIN seats st USING (session_id, ticket)"
        " LEFT JOIN attempts a USING (session_id, ticket)"
        " WHERE c.session_id = ? ORDER BY st.room_id, st.seat_no, c.ticket",
        (session_id,),
    ):
        room_total = by_room.get(room_id, delay + venue_pauses)
        candidates.append(
            {
                "ticket": ticket,
                "room_id": room_id,
                "room_ms": room_total,
                "own_grants_ms": int(own),
                "restart_ms": int(system),
                "total_ms": room_total + int(own) + int(system),
            }
        )
    approved = best_approval(db, session_id, now)
    return {
        "session_id": session_id,
        "limit_ms": policy.time_changes_limit_ms,
        "grant_cap_ms": policy.grant_cap_ms,
        "approved_ms": approved[0] if approved else None,
        "approval_expires_at": approved[1] if approved else None,
        "start_delay_ms": delay,
        "venue_pauses_ms": venue_pauses,
        "total_ms": total,
        "needs_approval": total > policy.time_changes_limit_ms
        and (approved is None or approved[0] < total),
        "rooms": rooms,
        "candidates": candidates,
    }


def best_approval(db: Database, session_id: str, now: datetime) -> tuple[int, str] | None:
    """The largest stored approval of the session not expired at `now`: (ms, expires_at)."""
    row = db.conn.execute(
        "SELECT approved_ms, expires_at FROM time_approvals WHERE session_id = ?"
        " AND expires_at > ? ORDER BY approved_ms DESC LIMIT 1",
        (session_id, iso(now)),
    ).fetchone()
    return (int(row[0]), str(row[1])) if row else None


def check_bound(
    db: Database,
    session_id: str,
    projected_ms: int,
    bound: Bound,
    actor: str,
    now: datetime,
    what: str,
) -> None:
    """Refuse (403) a change that brings the session's time changes to `projected_ms` past its
    limit, unless a centre approval of at least that covers it: the code typed now (checked,
    stored, audited) or one stored before, checked again now (the package and the expiry)."""
    policy = session_policy(db, session_id)
    if projected_ms <= policy.time_changes_limit_ms:
        return
    minutes = projected_ms / MINUTE_MS
    package_id = str(_session(db, session_id).get("package_id") or "")
    codes = [bound.code] if bound.code else []
    codes += [
        r[0]
        for r in db.conn.execute(
            "SELECT code FROM time_approvals WHERE session_id = ? ORDER BY approved_ms DESC",
            (session_id,),
        )
    ]
    if not codes:
        raise Forbidden(
            "time-changes-need-approval",
            f"{what} would bring session {session_id}'s time changes to {minutes:.0f} min, past"
            f" the limit of {policy.time_changes_limit_ms // MINUTE_MS} min (start delay, pauses"
            " and room-wide grants together, art. 31): enter the centre's approval code"
            " (paperpack approve-delay) for at least that",
            total_minutes=round(minutes),
            limit_minutes=policy.time_changes_limit_ms // MINUTE_MS,
        )
    last: ApprovalRejected | None = None
    for index, code in enumerate(codes):
        try:
            approval = check_time_approval(
                code,
                bound.authority_key(),
                session_id=session_id,
                venue_id=bound.venue.venue_id,
                package_id=package_id,
                total_minutes=minutes,
                now=now,
            )
        except ApprovalRejected as exc:
            if index == 0 and bound.code:  # the code typed now is named, not a stored one
                raise Forbidden(exc.slug, str(exc), total_minutes=round(minutes)) from None
            last = exc
            continue
        if index == 0 and bound.code:
            db.execute(
                "INSERT INTO time_approvals (session_id, approved_ms, expires_at, code,"
                " entered_by, entered_at) VALUES (?, ?, ?, ?, ?, ?)",
                [
                    session_id,
                    approval["delay_minutes"] * MINUTE_MS,
                    iso(approval_expiry(approval)),
                    code,
                    actor,
                    iso(now),
                ],
            )
            audit.record(
                db,
                actor,
                "time.approval_entered",
                f"session:{session_id}",
                {
                    "approved_minutes": approval["delay_minutes"],
                    "expires_at": approval["expires_at"],
                    "for": what,
                },
                now=now,
            )
        return
    assert last is not None
    raise Forbidden(
        last.slug,
        f"{what} would bring the time changes to {minutes:.0f} min and no approval entered"
        f" covers it ({last}); enter a new approval code from the centre",
        total_minutes=round(minutes),
    )


def own_grants_ms(db: Database, attempt_id: str) -> int:
    """The time staff granted this attempt one by one (not a restart's, not a room's)."""
    return int(
        db.conn.execute(
            "SELECT COALESCE(SUM(granted_ms), 0) FROM time_grants WHERE attempt_id = ?"
            " AND granted_by != 'system'"
            " AND grant_id NOT IN (SELECT grant_id FROM room_grant_members)",
            (attempt_id,),
        ).fetchone()[0]
    )
