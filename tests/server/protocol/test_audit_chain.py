"""The one audit-chain format, and the readers of the two formats written before it."""

from __future__ import annotations

from dataclasses import replace

import pytest

from server.protocol.audit_chain import (
    CHAIN_FORMAT,
    GENESIS,
    LEGACY_CENTRAL_FORMAT,
    LEGACY_VENUE_FORMAT,
    AuditBroken,
    AuditEvent,
    event_hash,
    legacy_central_event_hash,
    legacy_venue_event_hash,
    new_event,
    verify_audit_events,
)

AT = "2026-06-01T08:00:00.000Z"
DETAILS = {"n": 1, "why": "é"}


def test_legacy_readers_give_the_hashes_the_old_writers_wrote() -> None:
    """Known answers computed with server.audit.event_hash and
    server.central.storage.audit_event_hash as they were on main at 546a924."""
    venue = legacy_venue_event_hash(
        1, AT, "chief1", "seat.moved", "session:S1/ticket:T1", DETAILS, GENESIS
    )
    assert venue == "5081ff1c2c3e16524a7c8491879e1b4507d513e24a0a93ef19a651bfad03d75f"
    event = {"seq": 1, "at": AT, "actor": "operator", "action": "venue.added",
             "object": "venue:V1", "details": DETAILS}  # fmt: skip
    central = legacy_central_event_hash(GENESIS, event)
    assert central == "cb20ef0a1c00b19db1ac23778b32d6ba1d23b96063b3dcf04f3a7be56d013aa5"


def test_the_current_format_is_domain_separated_from_both_legacy_ones() -> None:
    """The same fields hash differently in each format, so no event passes for another."""
    fields = (1, AT, "a", "b", "c", DETAILS, GENESIS)
    central = legacy_central_event_hash(
        GENESIS, {"seq": 1, "at": AT, "actor": "a", "action": "b", "object": "c",
                  "details": DETAILS},
    )  # fmt: skip
    assert len({event_hash(*fields), legacy_venue_event_hash(*fields), central}) == 3


def chain(n: int, chain_format: str = CHAIN_FORMAT, start: int = 1,
          prev: str = GENESIS) -> list[AuditEvent]:  # fmt: skip
    """`n` linked events in `chain_format`, from position `start` after `prev`."""
    events = []
    for position in range(start, start + n):
        event = new_event(position, AT, "actor", "thing.done", f"obj:{position}", {"i": position},
                          prev)  # fmt: skip
        if chain_format == LEGACY_VENUE_FORMAT:
            digest = legacy_venue_event_hash(
                position, AT, "actor", "thing.done", f"obj:{position}", {"i": position}, prev
            )
            event = replace(event, hash=digest, chain_format=chain_format)
        elif chain_format == LEGACY_CENTRAL_FORMAT:
            body = {"seq": position, "at": AT, "actor": "actor", "action": "thing.done",
                    "object": f"obj:{position}", "details": {"i": position}}  # fmt: skip
            event = replace(event, hash=legacy_central_event_hash(prev, body),
                            chain_format=chain_format)  # fmt: skip
        events.append(event)
        prev = event.hash
    return events


@pytest.mark.parametrize("legacy", [LEGACY_VENUE_FORMAT, LEGACY_CENTRAL_FORMAT])
def test_a_legacy_chain_continued_in_the_current_format_verifies(legacy: str) -> None:
    """Old events keep their format; new ones link to the last old hash and verify with it."""
    old = chain(3, legacy)
    events = old + chain(2, CHAIN_FORMAT, start=4, prev=old[-1].hash)
    assert verify_audit_events(events) == 5
    assert verify_audit_events(chain(4)) == 4


@pytest.mark.parametrize("legacy", [LEGACY_VENUE_FORMAT, LEGACY_CENTRAL_FORMAT, CHAIN_FORMAT])
def test_an_edited_event_is_named_in_every_format(legacy: str) -> None:
    """Changing one field of event 2 is reported at event 2, whatever its format."""
    events = chain(3, legacy)
    events[1] = replace(events[1], actor="intruder")
    with pytest.raises(AuditBroken, match="audit event 2 does not match its hash") as err:
        verify_audit_events(events)
    assert err.value.event_id == 2


def test_a_relabelled_format_is_caught() -> None:
    """An event whose recorded format is changed no longer matches its hash."""
    events = chain(3)
    events[2] = replace(events[2], chain_format=LEGACY_VENUE_FORMAT)
    with pytest.raises(AuditBroken, match="audit event 3 is in chain format"):
        verify_audit_events(events)
    events = chain(3, LEGACY_VENUE_FORMAT)
    events[0] = replace(events[0], chain_format=CHAIN_FORMAT)
    with pytest.raises(AuditBroken, match="audit event 1 does not match its hash"):
        verify_audit_events(events)


def test_the_two_legacy_formats_do_not_mix_and_an_unknown_format_is_refused() -> None:
    """One chain has one legacy format; a format this version does not know is named."""
    venue = chain(2, LEGACY_VENUE_FORMAT)
    mixed = venue + chain(1, LEGACY_CENTRAL_FORMAT, start=3, prev=venue[-1].hash)
    with pytest.raises(AuditBroken, match="audit event 3 is in chain format"):
        verify_audit_events(mixed)
    with pytest.raises(AuditBroken, match="audit event 1 has the unknown chain format 'x-v9'"):
        verify_audit_events([replace(chain(1)[0], chain_format="x-v9")])


def test_missing_and_relinked_events_are_named() -> None:
    """A deleted event is named at its position; an event that does not link is named too."""
    events = chain(4)
    with pytest.raises(AuditBroken, match="audit event 2 is missing"):
        verify_audit_events([events[0], *events[2:]])
    with pytest.raises(AuditBroken, match="audit event 2 does not follow"):
        verify_audit_events([events[0], replace(events[1], prev_hash="f" * 64), *events[2:]])
