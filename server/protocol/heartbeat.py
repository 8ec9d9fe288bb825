"""The live line from a venue to the centre (issue 14, point 4; art. 26, 31): its messages.

While a venue server runs with a central URL it sends, about every minute, a *heartbeat*:
per session the session's state and the counts the chief examiner sees on the venue's
monitor (`server.venue.invigilate.room_status` / `reconciliation`): candidates, logged in,
answering, submitted, closed, absent, not logged in, incidents, violations, time grants,
pauses; the serious violations (the kinds that keep records 5 years, art. 23(7)); and the
time changes (grants: how many and their total; pauses: how many, how many still running).
A serious violation is sent at once, as a message of kind `serious` with the same body.

A message is one JSON object:

    {"format": "cbt-heartbeat", "version": 1, "venue_id": ..., "seq": 1, "kind": "heartbeat",
     "recorded_at": "<ISO-8601 UTC>", "sessions": [...]}

`seq` rises by one per message of a venue (the venue's queue row number): the centre keeps
the first message of each (venue, seq) and answers a repeat as a duplicate, so a message
sent again after a cut is stored once. The venue queues messages while the centre is out of
reach and sends them later in order (`server.venue.heartbeat`).

`POST /api/v1/heartbeat` carries the message as its body, signed like every upload call:
`Authorization: CBT-Venue ...` by the venue's registered key over the method, the path, the
time of sending and the body's SHA-256 (`server.protocol.upload_auth`), so only the venue
can speak for itself, and a message cannot be altered on the way.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from server.errors import CbtError

FORMAT = "cbt-heartbeat"
VERSION = 1
PATH = "/api/v1/heartbeat"
KINDS = ("heartbeat", "serious")
COUNTS = (
    "candidates", "logged_in", "answering", "submitted", "closed", "absent", "not_logged_in",
    "incidents", "violations", "time_grants", "pauses",
)  # fmt: skip
MAX_BYTES = 256 * 1024  # a message: counts and a few serious events, never answers


class HeartbeatInvalid(CbtError):
    """A heartbeat message that is not in the format above; the message says what is wrong."""


def build_message(
    venue_id: str, seq: int, kind: str, recorded_at: str, sessions: list[dict[str, Any]]
) -> dict[str, Any]:
    """One message (the venue fills `sessions` with `server.venue.heartbeat.snapshot`)."""
    if kind not in KINDS:
        raise HeartbeatInvalid(f"kind {kind!r} is not one of {', '.join(KINDS)}")
    return {"format": FORMAT, "version": VERSION, "venue_id": venue_id, "seq": seq,
            "kind": kind, "recorded_at": recorded_at, "sessions": sessions}  # fmt: skip


def encode(message: Mapping[str, Any]) -> bytes:
    return json.dumps(message, sort_keys=True, separators=(",", ":")).encode()


def parse_message(body: bytes, venue_id: str) -> dict[str, Any]:
    """The message in `body`, sent by `venue_id` (the signer); `HeartbeatInvalid` otherwise."""
    if len(body) > MAX_BYTES:
        raise HeartbeatInvalid(f"the message is larger than {MAX_BYTES} bytes")
    try:
        message = json.loads(body)
    except ValueError:
        raise HeartbeatInvalid("the body is not JSON") from None
    if not isinstance(message, dict) or message.get("format") != FORMAT:
        raise HeartbeatInvalid(f"the body is not a {FORMAT} message")
    if message.get("version") != VERSION:
        raise HeartbeatInvalid(
            f"{FORMAT} version {message.get('version')!r} is not known here (this centre reads "
            f"version {VERSION}): update the centre or the venue to the same release"
        )
    if message.get("venue_id") != venue_id:
        raise HeartbeatInvalid(f"the message names venue {message.get('venue_id')!r}, "
                               f"but venue {venue_id} signed it")  # fmt: skip
    seq = message.get("seq")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
        raise HeartbeatInvalid("seq must be a whole number from 1")
    if message.get("kind") not in KINDS:
        raise HeartbeatInvalid(f"kind must be one of {', '.join(KINDS)}")
    if not isinstance(message.get("recorded_at"), str):
        raise HeartbeatInvalid("recorded_at must be an ISO-8601 time")
    sessions = message.get("sessions")
    if not isinstance(sessions, list) or not all(_session_ok(s) for s in sessions):
        raise HeartbeatInvalid(
            "sessions must be a list of {session_id, state, counts, serious, time_changes}"
        )
    return message


def _session_ok(session: Any) -> bool:
    if not isinstance(session, dict) or not isinstance(session.get("session_id"), str):
        return False
    counts = session.get("counts")
    if not isinstance(counts, dict) or not all(isinstance(counts.get(c), int) for c in COUNTS):
        return False
    return isinstance(session.get("serious"), list) and isinstance(
        session.get("time_changes"), dict
    )
