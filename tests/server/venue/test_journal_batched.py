"""A group commit's saves run at once (issue 18: `journal.append_saves` through
`server.store.batched_write`) end exactly where the same saves one by one end: the same
outcomes, the same journal, current answers and attempts."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlite_utils import Database

from server.errors import Conflict, Unauthenticated
from server.store import Store, migrate, open_store
from server.venue import journal
from server.venue.saves import save_batch
from server.venue.schema import migrations
from tests.server.venue.conftest import add_attempt, add_session

NOW = datetime(2026, 6, 1, 9, 10, tzinfo=UTC)
TOKENS = {"A1": "t1", "A2": "t2", "A3": "t3"}


def venue_with_attempts(db: Database) -> Database:
    migrate(db, migrations)
    add_session(db)
    for attempt_id, token in TOKENS.items():
        add_attempt(db, attempt_id)
        db.execute("UPDATE attempts SET token_hash = ? WHERE attempt_id = ?", (token, attempt_id))
    db.execute("UPDATE attempts SET status = 'submitted' WHERE attempt_id = 'A3'")
    return db


_TEMPLATE: list[Database] = []


def fresh_copy() -> Database:
    """A copy of one migrated in-memory venue (migrating each time is most of the time)."""
    if not _TEMPLATE:
        _TEMPLATE.append(venue_with_attempts(Database(memory=True)))
    db = Database(memory=True)
    _TEMPLATE[0].conn.backup(db.conn)
    return db


def snapshot(db: Database) -> dict[str, list[Any]]:
    return {
        table: list(db.execute(f"SELECT * FROM {table} ORDER BY 1, 2"))  # noqa: S608
        for table in ("journal", "responses", "attempts")
    }


def described(outcome: tuple[bool, Any]) -> tuple[bool, Any]:
    ok, value = outcome
    return (True, value) if ok else (False, (type(value).__name__, str(value)))


BIG = "x" * (journal.MAX_ANSWER_BYTES + 1)  # one answer over its limit: SaveTooLarge
answers = st.dictionaries(
    st.sampled_from(["i1", "i2", "i3"]),
    st.one_of(
        st.lists(st.sampled_from(["o1", "o2"]), min_size=1, max_size=2),
        st.sampled_from(["essay", "答", "essay 2", BIG]),
    ),
    min_size=1,
    max_size=3,
)
# Mostly saves that go in, with every refusal now and then: a submitted (A3) or unknown (A9)
# attempt, another login's token, a seq that is not a whole number from 1.
saves = st.lists(
    st.tuples(
        st.sampled_from(["A1", "A1", "A2", "A2", "A3", "A9"]),
        st.one_of(st.integers(1, 6), st.integers(1, 6), st.sampled_from([0, True])),
        answers,
        st.integers(0, 3),
        st.sampled_from(["own", "own", "own", None, "bad"]),
    ).map(lambda s: (*s[:4], TOKENS.get(s[0]) if s[4] == "own" else s[4])),
    max_size=40,
)


@settings(max_examples=40, deadline=None)
@given(batch=saves, before=saves)
def test_a_batch_of_saves_ends_where_the_saves_one_by_one_end(
    batch: list[tuple[Any, ...]], before: list[tuple[Any, ...]]
) -> None:
    one_by_one, at_once = fresh_copy(), fresh_copy()
    for attempt_id, seq, body, _, held_by in before:  # the same history in both
        for db in (one_by_one, at_once):
            with contextlib.suppress(journal.JournalError):
                journal.append_save(db, attempt_id, seq, body, NOW, held_by=held_by)
    expected = []
    for attempt_id, seq, body, minutes, held_by in batch:
        when = NOW + timedelta(minutes=minutes)
        try:
            expected.append(
                (
                    True,
                    journal.append_save(one_by_one, attempt_id, seq, body, when, held_by=held_by),
                )
            )
        except journal.JournalError as exc:
            expected.append((False, exc))
    got = journal.append_saves(
        at_once, [(a, q, b, NOW + timedelta(minutes=m), h) for a, q, b, m, h in batch]
    )
    assert [described(o) for o in got] == [described(o) for o in expected]
    assert snapshot(at_once) == snapshot(one_by_one)
    for attempt_id in TOKENS:
        assert journal.verify_chain(at_once, attempt_id) >= 0


@pytest.fixture
async def venue_store(tmp_path: Path):  # type: ignore[no-untyped-def]
    store = await open_store(tmp_path / "venue.db", migrations)
    await store.write(lambda db: venue_with_attempts(db) and None)
    yield store
    await store.close()


async def concurrent_saves(store: Store) -> list[Any]:
    calls = []
    for n in range(1, 61):
        attempt_id = {1: "A1", 2: "A2", 0: "A3"}[n % 3]
        hashed = TOKENS[attempt_id] if n % 5 else "another login"
        calls.append(store.write(save_batch, attempt_id, hashed, n, {"i1": [f"o{n}"]}, NOW))
    return await asyncio.gather(*calls, return_exceptions=True)


def check_outcomes(outcomes: list[Any]) -> None:
    for n, outcome in enumerate(outcomes, start=1):
        if n % 3 == 0:  # A3 is submitted
            assert isinstance(outcome, Conflict) and outcome.slug == "attempt-submitted"
        elif n % 5 == 0:  # the attempt is held by another token
            assert isinstance(outcome, Unauthenticated) and outcome.slug == "token-ended"
        else:
            assert outcome == n


async def test_concurrent_saves_share_commits_and_get_their_own_outcomes(
    venue_store: Store,
) -> None:
    outcomes = await concurrent_saves(venue_store)
    check_outcomes(outcomes)
    assert venue_store.stats.commits < 30  # they shared group commits
    chains = await venue_store.read(lambda db: [journal.verify_chain(db, a) for a in TOKENS])
    assert chains == [sum(1 for n in range(1, 61) if n % 3 == i and n % 5) for i in (1, 2)] + [0]


async def test_a_batch_runner_that_fails_leaves_the_calls_to_run_one_by_one(
    venue_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the batch runner raises half-way (here after writing rows), the transaction is
    rolled back and every call runs again on its own: the same outcomes, nothing twice."""
    real = journal.append_saves

    def half_then_fail(db: Database, saves: list[Any]) -> list[Any]:
        real(db, saves[: len(saves) // 2])
        raise RuntimeError("the runner failed")

    monkeypatch.setattr(journal, "append_saves", half_then_fail)
    outcomes = await concurrent_saves(venue_store)
    check_outcomes(outcomes)
    rows = await venue_store.read(lambda db: db.execute("SELECT count(*) FROM journal").fetchone())
    assert rows[0] == sum(1 for n in range(1, 61) if n % 3 and n % 5)
