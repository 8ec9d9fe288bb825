"""The audit chain: one hash-chain format for the venue's and the centre's audit logs.

Each side keeps its audit log in its own table (the venue's `audit_events` keyed by
`event_id`, the centre's by `seq`), but both write the same chain for new events and both
verify with `verify_audit_events`. An event is `AuditEvent`: its position (1, 2, 3, ... no
gaps), time, actor, action, object, details (JSON; hashes and counts, never secrets), the
previous event's hash and its own, and its `chain_format`, stored with the event:

- `cbt-audit-v2` (`CHAIN_FORMAT`, what both sides write now):
  `hash = SHA-256(b"cbt-audit-v2|" + canonical_json({position, at, actor, action, object,
  details, prev_hash}))`;
- `cbt-audit-venue-v1` (`LEGACY_VENUE_FORMAT`, read only): the venue's format before
  issue 12, `canonical_hash({event_id, at, actor, action, object, details, prev_hash})`;
- `cbt-audit-central-v1` (`LEGACY_CENTRAL_FORMAT`, read only): the centre's format before
  issue 12, `SHA-256(prev_hash + canonical_json({seq, at, actor, action, object, details}))`.

A database made before the format was recorded holds only its side's legacy events, so the
store that reads it passes that legacy format for events without one. A chain may start in a
legacy format and continue in the current one (the first new event links to the last old
hash), never the other way round, and never mixes the two legacy formats. The first event
links to `GENESIS`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from paperpack.canonical import canonical_hash, canonical_json
from server.errors import CbtError

GENESIS = "0" * 64  # prev_hash of the first event
CHAIN_FORMAT = "cbt-audit-v2"  # the format both sides write
LEGACY_VENUE_FORMAT = "cbt-audit-venue-v1"  # server.audit.event_hash before issue 12
LEGACY_CENTRAL_FORMAT = "cbt-audit-central-v1"  # server.central.storage before issue 12
CHAIN_FORMATS = (LEGACY_VENUE_FORMAT, LEGACY_CENTRAL_FORMAT, CHAIN_FORMAT)
_DOMAIN = b"cbt-audit-v2|"


class AuditBroken(CbtError):
    """The audit chain does not verify; `event_id` is the position of the first bad event."""

    def __init__(self, event_id: int, why: str) -> None:
        self.event_id = event_id
        self.why = why  # what is wrong with it, e.g. "does not match its hash: ..."
        super().__init__(
            f"audit event {event_id} {why}: the audit log has been tampered with; keep this "
            "database as evidence and compare it with the backup copy"
        )


@dataclass(frozen=True)
class AuditEvent:
    """One event of an audit chain, as either side stores it."""

    position: int  # 1, 2, 3, ... (the venue's event_id, the centre's seq)
    at: str  # when (ISO-8601 UTC)
    actor: str  # who: a staff login, 'candidate:T', 'system', 'cli:U'
    action: str  # what, a dotted verb such as 'seat.moved'
    object: str  # on what, such as 'session:S1/ticket:T1'
    details: Any  # parsed JSON: hashes, counts and ids, never secrets
    prev_hash: str  # `hash` of the event before (GENESIS for the first)
    hash: str  # this event's hash in `chain_format` (hex SHA-256)
    chain_format: str  # one of CHAIN_FORMATS


def event_hash(
    position: int, at: str, actor: str, action: str, obj: str, details: Any, prev_hash: str
) -> str:
    """The hash of one event in the current format (`CHAIN_FORMAT`)."""
    body = {
        "position": position,
        "at": at,
        "actor": actor,
        "action": action,
        "object": obj,
        "details": details,
        "prev_hash": prev_hash,
    }
    return hashlib.sha256(_DOMAIN + canonical_json(body)).hexdigest()


def legacy_venue_event_hash(
    event_id: int, at: str, actor: str, action: str, obj: str, details: Any, prev_hash: str
) -> str:
    """The venue's hash before issue 12 (`LEGACY_VENUE_FORMAT`); read only."""
    return canonical_hash(
        {
            "event_id": event_id,
            "at": at,
            "actor": actor,
            "action": action,
            "object": obj,
            "details": details,
            "prev_hash": prev_hash,
        }
    )


def legacy_central_event_hash(prev_hash: str, event: dict[str, Any]) -> str:
    """The centre's hash before issue 12 (`LEGACY_CENTRAL_FORMAT`) of an event given as
    {seq, at, actor, action, object, details}; read only."""
    body = {key: event[key] for key in ("seq", "at", "actor", "action", "object", "details")}
    return hashlib.sha256(prev_hash.encode() + canonical_json(body)).hexdigest()


def new_event(
    position: int, at: str, actor: str, action: str, obj: str, details: Any, prev_hash: str
) -> AuditEvent:
    """The event to append at `position` after `prev_hash`, hashed in the current format."""
    digest = event_hash(position, at, actor, action, obj, details, prev_hash)
    return AuditEvent(position, at, actor, action, obj, details, prev_hash, digest, CHAIN_FORMAT)


def expected_hash(event: AuditEvent) -> str:
    """What `event.hash` must be under its own `chain_format` (`AuditBroken` if unknown)."""
    fields = (event.at, event.actor, event.action, event.object, event.details)
    if event.chain_format == CHAIN_FORMAT:
        return event_hash(event.position, *fields, event.prev_hash)
    if event.chain_format == LEGACY_VENUE_FORMAT:
        return legacy_venue_event_hash(event.position, *fields, event.prev_hash)
    if event.chain_format == LEGACY_CENTRAL_FORMAT:
        keys = ("seq", "at", "actor", "action", "object", "details")
        return legacy_central_event_hash(
            event.prev_hash, dict(zip(keys, (event.position, *fields), strict=True))
        )
    raise AuditBroken(
        event.position,
        f"has the unknown chain format {event.chain_format!r} "
        f"(this version reads {', '.join(CHAIN_FORMATS)})",
    )


def verify_audit_events(events: Iterable[AuditEvent]) -> int:
    """Check every event's position, link, format and hash, in order; return how many there
    are, or raise `AuditBroken` naming the first bad event."""
    expected_prev = GENESIS
    expected_position = 1
    legacy: str | None = None  # the legacy format the chain started in, if any
    current = False  # an event in the current format was seen
    for event in events:
        if event.position != expected_position:
            raise AuditBroken(
                expected_position, f"is missing (the next row is {event.position}): deleted"
            )
        if event.prev_hash != expected_prev:
            raise AuditBroken(
                event.position,
                "does not follow the previous event: a row before it was changed",
            )
        if event.chain_format == CHAIN_FORMAT:
            current = True
        elif current or (legacy is not None and event.chain_format != legacy):
            raise AuditBroken(
                event.position,
                f"is in chain format {event.chain_format!r} after events in another format: "
                "a chain only moves from its legacy format to the current one",
            )
        else:
            legacy = event.chain_format
        if expected_hash(event) != event.hash:
            raise AuditBroken(
                event.position, "does not match its hash: it was edited after it was written"
            )
        expected_prev = event.hash
        expected_position += 1
    return expected_position - 1


def events_from_records(
    records: Iterable[dict[str, Any]], position_key: str, unmarked_format: str
) -> list[AuditEvent]:
    """`AuditEvent`s from stored rows as dicts (details already parsed): the position is in
    `position_key` ('event_id' at the venue, 'seq' at the centre), and a row without a
    `chain_format` (or with None) is in `unmarked_format`, its side's legacy format."""
    return [
        AuditEvent(
            position=record[position_key],
            at=record["at"],
            actor=record["actor"],
            action=record["action"],
            object=record["object"],
            details=record["details"],
            prev_hash=record["prev_hash"],
            hash=record["hash"],
            chain_format=record.get("chain_format") or unmarked_format,
        )
        for record in records
    ]


def verify_audit_records(
    records: Iterable[dict[str, Any]], position_key: str, unmarked_format: str
) -> int:
    """`verify_audit_events` over stored rows (see `events_from_records`)."""
    return verify_audit_events(events_from_records(records, position_key, unmarked_format))
