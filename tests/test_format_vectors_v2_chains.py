"""Frozen format vectors, set 2 (tests/vectors/formats/v2): the chains in their current
formats. Both sides' audit logs are in the one chain format `cbt-audit-v2`
(server.protocol.audit_chain) and the journals in their link format
(server.protocol.journal_chain); the hashes are recomputed from the committed rows, the
venue's and the centre's verifiers accept them, and one flipped byte is refused.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlite_utils import Database

from server.audit import verify_audit
from server.protocol import journal_chain
from server.protocol.audit_chain import (
    CHAIN_FORMAT,
    GENESIS,
    LEGACY_CENTRAL_FORMAT,
    LEGACY_VENUE_FORMAT,
    AuditBroken,
    event_hash,
    verify_audit_records,
)
from server.store import transaction
from server.venue import journal
from server.venue.workspace import init_venue, open_venue_db
from tests.conftest import REPO_ROOT

V2 = REPO_ROOT / "tests" / "vectors" / "formats" / "v2"
AUDIT_COLUMNS = ("event_id", "at", "actor", "action", "object", "details", "prev_hash", "hash")


def read(relative: str) -> bytes:
    return (V2 / relative).read_bytes()


def load(relative: str) -> Any:
    return json.loads(read(relative))


def venue_events() -> list[dict[str, Any]]:
    """The committed venue rows with their details parsed and their format named (set 2's
    generator stored the rows without the chain_format column: today's code wrote them)."""
    rows = load("audit/venue-audit.json")
    return [
        row | {"details": json.loads(row["details"]), "chain_format": CHAIN_FORMAT} for row in rows
    ]


def test_each_venue_audit_event_hash_is_the_current_format() -> None:
    """cbt-audit-v2 over each committed venue event (position = event_id) gives its hash."""
    prev = GENESIS
    for row in venue_events():
        assert row["prev_hash"] == prev
        digest = event_hash(
            row["event_id"], row["at"], row["actor"], row["action"], row["object"],
            row["details"], prev,
        )  # fmt: skip
        assert digest == row["hash"]
        prev = digest


def test_each_central_audit_event_is_in_the_current_format_and_verifies() -> None:
    """The centre's events say cbt-audit-v2, hash to it (position = seq) and verify."""
    events = load("audit/central-audit.json")
    prev = GENESIS
    for event in events:
        assert event["chain_format"] == CHAIN_FORMAT
        digest = event_hash(
            event["seq"], event["at"], event["actor"], event["action"], event["object"],
            event["details"], prev,
        )  # fmt: skip
        assert digest == event["hash"]
        prev = digest
    assert verify_audit_records(events, "seq", LEGACY_CENTRAL_FORMAT) == len(events)


def test_the_set_2_chains_are_not_in_a_legacy_format() -> None:
    """Read as their side's legacy format, the committed chains do not verify: set 2 pins
    the current format, set 1 the legacy ones."""
    unmarked = [{k: v for k, v in row.items() if k != "chain_format"} for row in venue_events()]
    with pytest.raises(AuditBroken, match="does not match its hash"):
        verify_audit_records(unmarked, "event_id", LEGACY_VENUE_FORMAT)
    central = [
        {k: v for k, v in e.items() if k != "chain_format"}
        for e in load("audit/central-audit.json")
    ]
    with pytest.raises(AuditBroken, match="does not match its hash"):
        verify_audit_records(central, "seq", LEGACY_CENTRAL_FORMAT)


def test_the_exported_audit_log_is_the_committed_chain_before_the_export() -> None:
    """The response package's evidence carries the venue's chain as stored (with its format),
    up to the event before the export was recorded."""
    evidence = load("response/evidence.json")["audit"]
    committed = venue_events()
    assert [e | {"details": json.loads(e["details"])} for e in evidence] == (
        committed[: len(evidence)]
    )
    assert committed[len(evidence)]["action"] == "responses.exported"


def test_each_journal_link_hash_is_recomputed() -> None:
    """link_hash over each committed save gives its hash; prev_hash links to the one before."""
    for attempt_id, rows in load("journal/journal.json").items():
        prev = journal_chain.GENESIS
        for row in rows:
            assert row["prev_hash"] == prev
            digest = journal_chain.link_hash(
                attempt_id, row["seq"], row["position"], row["saved_at"], row["responses"], prev
            )
            assert digest == row["hash"]
            prev = digest


def test_the_journals_in_the_response_package_are_the_committed_chain() -> None:
    """The evidence carries each attempt's journal as the venue stored it (each save's
    responses decoded from their canonical JSON)."""
    chains = {j["attempt_id"]: j["journal"] for j in load("response/evidence.json")["journals"]}
    committed = load("journal/journal.json")
    for rows in committed.values():
        for row in rows:
            row["responses"] = json.loads(row["responses"])
    assert chains == committed


@pytest.fixture
def venue_db(tmp_path: Path) -> Iterator[Database]:
    """A migrated venue database holding set 2's session and attempts, no audit events."""
    with _venue_db(tmp_path) as db:
        yield db


@contextlib.contextmanager
def _venue_db(tmp_path: Path) -> Iterator[Database]:
    init_venue(tmp_path / "venue", "V-VEC")
    db = open_venue_db(tmp_path / "venue")
    with transaction(db):
        db.execute("DELETE FROM audit_events")
        db.execute("INSERT INTO sessions (session_id, subject) VALUES ('S-VEC-1', '27')")
        for attempt_id in load("journal/journal.json"):
            db.execute(
                "INSERT INTO attempts (attempt_id, session_id, ticket, logged_in_at)"
                " VALUES (?, 'S-VEC-1', ?, '2026-06-01T09:00:00.000Z')",
                (attempt_id, attempt_id),
            )
    try:
        yield db
    finally:
        db.close()


def _store(db: Database, journals: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    """The committed rows into the venue's own tables, the audit rows marked cbt-audit-v2."""
    with transaction(db):
        for attempt_id, saves in journals.items():
            for save in saves:
                db.execute(
                    "INSERT INTO journal (attempt_id, seq, position, saved_at, responses,"
                    " size_bytes, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (attempt_id, save["seq"], save["position"], save["saved_at"],
                     save["responses"], len(save["responses"].encode()), save["prev_hash"],
                     save["hash"]),
                )  # fmt: skip
        for row in rows:
            db.execute(
                "INSERT INTO audit_events (event_id, at, actor, action, object, details,"
                " prev_hash, hash, chain_format) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (*(row[k] for k in AUDIT_COLUMNS), CHAIN_FORMAT),
            )


def test_the_venue_verifies_the_committed_chains(venue_db: Database) -> None:
    """Stored in a venue database, the journals and the audit log verify with the venue's code."""
    journals = load("journal/journal.json")
    rows = load("audit/venue-audit.json")
    _store(venue_db, journals, rows)
    for attempt_id, saves in journals.items():
        assert journal.verify_chain(venue_db, attempt_id) == len(saves)
    assert verify_audit(venue_db) == len(rows)


def _flip(data: bytes, marker: bytes) -> bytes:
    """One byte changed inside the first value after `marker` (XOR 1 on a letter or digit)."""
    for at in range(data.index(marker) + len(marker), len(data)):
        flipped = data[at] ^ 1
        if chr(data[at]).isalnum() and chr(flipped).isalnum():
            return data[:at] + bytes([flipped]) + data[at + 1 :]
    raise AssertionError("no byte to flip")


def _check_venue_audit(tmp_path: Path, data: bytes) -> None:
    with _venue_db(tmp_path) as db:
        _store(db, {}, json.loads(data))
        verify_audit(db)


def _check_journal(tmp_path: Path, data: bytes) -> None:
    journals = json.loads(data)
    with _venue_db(tmp_path) as db:
        _store(db, journals, [])
        for attempt_id in journals:
            journal.verify_chain(db, attempt_id)


def _check_central_audit(tmp_path: Path, data: bytes) -> None:
    verify_audit_records(json.loads(data), "seq", LEGACY_CENTRAL_FORMAT)


FLIPS = {
    "venue-audit": ("audit/venue-audit.json", b'"actor":"', _check_venue_audit, AuditBroken),
    "central-audit": ("audit/central-audit.json", b'"object":"', _check_central_audit, AuditBroken),
    "journal": ("journal/journal.json", b'"saved_at":"', _check_journal, journal.ChainBroken),
}


@pytest.mark.parametrize("name", sorted(FLIPS))
def test_one_flipped_byte_in_a_chain_is_refused(name: str, tmp_path: Path) -> None:
    """The committed chain verifies; with one byte flipped its verifier names the edit."""
    file, marker, check, error = FLIPS[name]
    data = read(file)
    check(tmp_path / "before", data)
    flipped = _flip(data, marker)
    assert len(flipped) == len(data) and flipped != data
    with pytest.raises(error, match="does not match its hash"):
        check(tmp_path / "after", flipped)
