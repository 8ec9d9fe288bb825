"""The journal: idempotent saves by seq, hash chain, current answers derived from it."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlite_utils import Database

from paperpack.canonical import canonical_hash, canonical_json
from server.store import Store, migrate, transaction
from server.venue.journal import (
    ChainBroken,
    JournalError,
    SaveTooLarge,
    SeqConflict,
    append_save,
    current_responses,
    derive_responses,
    journal_head,
    link_hash,
    verify_chain,
)
from server.venue.schema import migrations
from tests.server.venue.conftest import add_attempt, add_session

NOW = datetime(2026, 6, 1, 9, 10, tzinfo=UTC)


def memory_db() -> Database:
    db = Database(memory=True)
    migrate(db, migrations)
    add_session(db)
    add_attempt(db, "A1")
    return db


def journal_rows(db: Database) -> int:
    return int(db.execute("SELECT count(*) FROM journal").fetchone()[0])


def test_a_save_sets_the_current_answers() -> None:
    """Saved answers are the attempt's current answers, and last_seq follows."""
    db = memory_db()
    assert append_save(db, "A1", 1, {"i1": ["o2"], "i2": "essay"}, NOW) == 1
    assert current_responses(db, "A1") == {"i1": ["o2"], "i2": "essay"}
    assert db.execute("SELECT last_seq FROM attempts").fetchone()[0] == 1


def test_the_journal_stores_the_canonical_json_of_each_save() -> None:
    """The stored body is paperpack's canonical JSON, whatever the key order sent."""
    db = memory_db()
    body = {"i2": {"b": 1, "a": "答"}, "i1": ["o2", "o1"]}
    append_save(db, "A1", 1, body, NOW)
    stored = db.execute("SELECT responses, size_bytes FROM journal").fetchone()
    assert stored[0].encode() == canonical_json(body)
    assert stored[1] == len(canonical_json(body))


def test_the_same_seq_with_the_same_content_is_acknowledged_again() -> None:
    """A replayed save is acknowledged without a second journal row."""
    db = memory_db()
    append_save(db, "A1", 1, {"i1": ["o2"]}, NOW)
    assert append_save(db, "A1", 1, {"i1": ["o2"]}, NOW + timedelta(seconds=5)) == 1
    assert journal_rows(db) == 1


def test_the_same_seq_with_other_content_is_a_conflict_and_changes_nothing() -> None:
    """A seq reused with different answers raises SeqConflict and leaves the answers alone."""
    db = memory_db()
    append_save(db, "A1", 1, {"i1": ["o2"]}, NOW)
    with pytest.raises(SeqConflict, match="seq 1 was already saved"):
        append_save(db, "A1", 1, {"i1": ["o3"]}, NOW)
    assert current_responses(db, "A1") == {"i1": ["o2"]}
    assert journal_rows(db) == 1


def test_a_late_older_save_does_not_overwrite_a_newer_answer() -> None:
    """Seq 2 then seq 1 (out of order): the item keeps seq 2's answer; seq 1's other items land."""
    db = memory_db()
    append_save(db, "A1", 2, {"i1": "new"}, NOW)
    append_save(db, "A1", 1, {"i1": "old", "i2": "other"}, NOW)
    assert current_responses(db, "A1") == {"i1": "new", "i2": "other"}
    assert derive_responses(db, "A1") == current_responses(db, "A1")
    assert verify_chain(db, "A1") == 2


@pytest.mark.parametrize("seq", [0, -1, True, "3"])
def test_a_seq_that_is_not_a_positive_integer_is_refused(seq: object) -> None:
    """seq must be an int from 1 up."""
    with pytest.raises(JournalError, match="seq must be"):
        append_save(memory_db(), "A1", seq, {"i1": "x"}, NOW)  # type: ignore[arg-type]


def test_oversized_saves_are_refused() -> None:
    """Too many answers, one huge answer, or a huge save raise SaveTooLarge naming the limit."""
    db = memory_db()
    with pytest.raises(SaveTooLarge, match="item big"):
        append_save(db, "A1", 1, {"big": "x" * 70_000}, NOW)
    with pytest.raises(SaveTooLarge, match="answers"):
        append_save(db, "A1", 1, {f"i{i}": "x" for i in range(1001)}, NOW)
    with pytest.raises(SaveTooLarge, match="bytes"):
        append_save(db, "A1", 1, {f"i{i}": "x" * 60_000 for i in range(5)}, NOW)
    assert journal_rows(db) == 0


def test_an_edited_journal_entry_breaks_the_chain() -> None:
    """Changing a saved answer (triggers dropped) is caught at that position."""
    db = memory_db()
    for seq in range(1, 4):
        append_save(db, "A1", seq, {"i1": f"v{seq}"}, NOW)
    db.execute("DROP TRIGGER journal_no_update")
    db.execute("""UPDATE journal SET responses = '{"i1":"forged"}' WHERE seq = 2""")
    with pytest.raises(ChainBroken, match=r"position 2 \(seq 2\) does not match its hash"):
        verify_chain(db, "A1")


def test_a_deleted_journal_entry_breaks_the_chain() -> None:
    """Deleting a middle entry is caught as missing."""
    db = memory_db()
    for seq in range(1, 4):
        append_save(db, "A1", seq, {"i1": f"v{seq}"}, NOW)
    db.execute("DROP TRIGGER journal_no_delete")
    db.execute("DELETE FROM journal WHERE seq = 2")
    with pytest.raises(ChainBroken, match="position 2 is missing"):
        verify_chain(db, "A1")


def test_journal_rows_cannot_be_updated() -> None:
    """The journal is append-only at the database level."""
    db = memory_db()
    append_save(db, "A1", 1, {"i1": "v"}, NOW)
    with pytest.raises(Exception, match="append-only"):
        db.execute("UPDATE journal SET responses = '{}'")


answers = st.one_of(
    st.lists(st.sampled_from(["o1", "o2", "o3"]), max_size=3, unique=True),
    st.text(max_size=20),
)
saves = st.lists(
    st.dictionaries(st.sampled_from(["i1", "i2", "i3", "i4"]), answers, min_size=1),
    min_size=1,
    max_size=8,
)


@settings(max_examples=60, deadline=None)
@given(saves=saves, order=st.randoms(use_true_random=False))
def test_current_answers_equal_the_highest_seq_per_item_in_any_arrival_order(
    saves: list[dict[str, object]], order: object
) -> None:
    """Whatever order saves arrive in, each item holds the answer of its highest seq."""
    db = memory_db()
    numbered = list(enumerate(saves, start=1))
    order.shuffle(numbered)  # type: ignore[attr-defined]
    for seq, body in numbered:
        append_save(db, "A1", seq, body, NOW)
    expected: dict[str, object] = {}
    for body in saves:
        expected.update(body)
    assert current_responses(db, "A1") == dict(sorted(expected.items()))
    assert derive_responses(db, "A1") == current_responses(db, "A1")
    assert journal_head(db, "A1")[0] == verify_chain(db, "A1") == len(saves)


async def test_concurrent_saves_through_the_store_are_all_journaled(
    store: Store, make_attempts: Callable[[int], list[str]]
) -> None:
    """400 concurrent saves from 20 attempts are all acknowledged and all in the journal."""
    attempt_ids = make_attempts(20)
    acks = await asyncio.gather(
        *(
            store.write(append_save, a, seq, {"i1": f"{a}-{seq}"}, NOW)
            for seq in range(1, 21)
            for a in attempt_ids
        )
    )
    assert len(acks) == 400

    def check(db: Database) -> tuple[int, list[int]]:
        return journal_rows(db), [verify_chain(db, a) for a in attempt_ids]

    rows, lengths = await store.read(check)
    assert rows == 400
    assert lengths == [20] * 20
    assert await store.read(current_responses, "A0003") == {"i1": "A0003-20"}


def test_a_save_inside_a_failed_transaction_leaves_nothing(venue_db: Database) -> None:
    """The save is part of the caller's transaction: a rollback removes it entirely."""
    with transaction(venue_db):
        add_session(venue_db)
        add_attempt(venue_db, "A1")
    with pytest.raises(RuntimeError), transaction(venue_db):
        append_save(venue_db, "A1", 1, {"i1": "v"}, NOW)
        raise RuntimeError("caller failed")
    assert journal_rows(venue_db) == 0
    assert current_responses(venue_db, "A1") == {}


@given(
    attempt_id=st.text(max_size=40),
    seq=st.integers(min_value=1, max_value=2**62),
    position=st.integers(min_value=1, max_value=2**62),
    saved_at=st.text(max_size=30),
    body=st.text(max_size=200),
)
def test_link_hash_is_the_canonical_hash_of_the_link(
    attempt_id: str, seq: int, position: int, saved_at: str, body: str
) -> None:
    """The hot-path link hash gives the same hex digest as `canonical_hash`, the definition."""
    prev = "ab" * 32
    expected = canonical_hash(
        {
            "attempt_id": attempt_id,
            "seq": seq,
            "position": position,
            "saved_at": saved_at,
            "responses_sha256": hashlib.sha256(body.encode()).hexdigest(),
            "prev_hash": prev,
        }
    )
    assert link_hash(attempt_id, seq, position, saved_at, body, prev) == expected
