"""The centre's end of the live line (issue 14, point 4; art. 26, 31).

`POST /api/v1/heartbeat` takes one message of `server.protocol.heartbeat`, signed by the
venue's registered key like every upload call (`server.central.venue_auth`: 401 unsigned or
not verifying, 403 for an unregistered venue). The message is stored once per (venue, seq):
a repeat (the venue did not see the first answer) is answered 200 with `duplicate: true` and
not stored again. `live_status` gives the status page (`server.central.status`) each venue's
latest message: when it came, the sessions' states and counts, the serious violations.

The steps (SQL written once for both stores) are here; `server.central.store.CentralStore`
runs them.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from aiohttp import web

from server.central import keys
from server.central.statements import Step, execute, fetch_all, fetch_value
from server.central.venue_auth import authenticate_venue, challenge, require_signed
from server.clock import iso
from server.problems import Problem
from server.protocol import heartbeat as protocol

routes = web.RouteTableDef()

COLUMNS = ("venue_id", "seq", "kind", "recorded_at", "received_at", "body")


# --- the steps ------------------------------------------------------------------------------


def record_heartbeat(
    venue_id: str, seq: int, kind: str, recorded_at: str, body: str, now: str
) -> Step[bool]:
    """Store one message; False if the venue's message `seq` was stored before."""
    found = yield fetch_value(
        "SELECT COUNT(*) FROM heartbeats WHERE venue_id = :venue_id AND seq = :seq",
        venue_id=venue_id, seq=seq,
    )  # fmt: skip
    if int(found):
        return False
    yield execute(
        "INSERT INTO heartbeats (venue_id, seq, kind, recorded_at, received_at, body)"
        " VALUES (:venue_id, :seq, :kind, :recorded_at, :now, :body)"
        " ON CONFLICT (venue_id, seq) DO NOTHING",
        venue_id=venue_id, seq=seq, kind=kind, recorded_at=recorded_at, now=now, body=body,
    )  # fmt: skip
    return True


def latest_heartbeats() -> Step[list[dict[str, Any]]]:
    """Each venue's newest message (highest seq), with its body decoded."""
    rows = yield fetch_all(
        "SELECT h.venue_id, h.seq, h.kind, h.recorded_at, h.received_at, h.body"
        " FROM heartbeats h JOIN (SELECT venue_id, MAX(seq) AS seq FROM heartbeats"
        " GROUP BY venue_id) m ON m.venue_id = h.venue_id AND m.seq = h.seq"
        " ORDER BY h.venue_id"
    )
    found = []
    for row in rows:
        entry = dict(zip(COLUMNS, tuple(row), strict=True))
        entry["seq"] = int(entry["seq"])
        entry["body"] = json.loads(entry["body"])
        found.append(entry)
    return found


def heartbeat_seqs(venue_id: str) -> Step[list[int]]:
    """Every stored message number of a venue, in order (for tests and audits)."""
    rows = yield fetch_all(
        "SELECT seq FROM heartbeats WHERE venue_id = :venue_id ORDER BY seq", venue_id=venue_id
    )
    return [int(row[0]) for row in rows]


# --- the endpoint ---------------------------------------------------------------------------


async def _read_body(request: web.Request) -> bytes:
    too_large = Problem(413, "too-large", f"a heartbeat is at most {protocol.MAX_BYTES} bytes")
    if (request.content_length or 0) > protocol.MAX_BYTES:
        raise too_large
    body = bytearray()
    async for piece in request.content.iter_chunked(65536):
        body += piece
        if len(body) > protocol.MAX_BYTES:
            raise too_large
    return bytes(body)


@routes.post(protocol.PATH, name="heartbeat")
@challenge
async def post_heartbeat(request: web.Request) -> web.Response:
    """One live-line message from a venue: stored once per (venue, seq)."""
    require_signed(request)
    raw = await _read_body(request)
    venue = await authenticate_venue(request, hashlib.sha256(raw).hexdigest())
    try:
        message = protocol.parse_message(raw, venue.venue_id)
    except protocol.HeartbeatInvalid as exc:
        raise Problem(400, "bad-heartbeat", str(exc)) from None
    now = iso(request.app[keys.CLOCK].now())
    stored = await request.app[keys.STORAGE].record_heartbeat(
        venue.venue_id, message["seq"], message["kind"], message["recorded_at"],
        raw.decode(), now,
    )  # fmt: skip
    return web.json_response(
        {"venue_id": venue.venue_id, "seq": message["seq"], "duplicate": not stored,
         "received_at": now}
    )  # fmt: skip


# --- the status page ------------------------------------------------------------------------


async def live_status(app: web.Application) -> list[dict[str, Any]]:
    """One row per (venue, session) of each venue's newest message, for the status page."""
    rows = []
    for latest in await app[keys.STORAGE].latest_heartbeats():
        body = latest["body"]
        for session in body["sessions"] or [{}]:
            rows.append(
                {"venue_id": latest["venue_id"], "seq": latest["seq"], "kind": latest["kind"],
                 "recorded_at": latest["recorded_at"], "received_at": latest["received_at"],
                 "session_id": session.get("session_id"), "state": session.get("state"),
                 "counts": session.get("counts", {}), "serious": session.get("serious", []),
                 "time_changes": session.get("time_changes", {})}
            )  # fmt: skip
    return rows
