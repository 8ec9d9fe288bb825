"""The Store: durable settings checked at start-up, group commit, isolated failures, reads."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from server.store import (
    Store,
    StoreError,
    check_durability,
    connect,
    open_store,
    routine_write,
)

items_migrations = Migrations("store-items")


@items_migrations()
def m001_items(db: Database) -> None:
    db.execute("CREATE TABLE items (item_id INTEGER PRIMARY KEY, label TEXT NOT NULL UNIQUE)")


def insert(db: Database, label: str) -> int:
    cursor = db.execute("INSERT INTO items (label) VALUES (?)", (label,))
    return int(cursor.lastrowid or 0)


def count(db: Database) -> int:
    return int(db.execute("SELECT count(*) FROM items").fetchone()[0])


@pytest.fixture
async def items_store(tmp_path: Path):  # type: ignore[no-untyped-def]
    store = await open_store(tmp_path / "items.db", items_migrations, checkpoint_idle_s=0.2)
    yield store
    await store.close()


async def test_store_runs_wal_with_synchronous_full(items_store: Store) -> None:
    """Every connection the store hands out runs WAL with synchronous=FULL."""

    def pragmas(db: Database) -> tuple[str, int]:
        mode = db.execute("PRAGMA journal_mode").fetchone()[0]
        return mode, db.execute("PRAGMA synchronous").fetchone()[0]

    assert await items_store.read(pragmas) == ("wal", 2)
    assert await items_store.write(pragmas) == ("wal", 2)


def test_a_database_that_cannot_run_wal_is_refused() -> None:
    """An in-memory database (no WAL possible) is refused with a reason, not opened."""
    with pytest.raises(StoreError, match="not 'wal'"):
        connect(":memory:")


def test_a_connection_with_normal_sync_fails_the_full_check(tmp_path: Path) -> None:
    """check_durability refuses a connection whose synchronous level is not FULL."""
    db = connect(tmp_path / "x.db", durability="NORMAL")
    with pytest.raises(StoreError, match="synchronous is 1, not FULL"):
        check_durability(db.conn, "FULL")
    db.close()


async def test_concurrent_writes_share_commits(items_store: Store) -> None:
    """200 concurrent writes are all acknowledged in far fewer than 200 commits."""
    ids = await asyncio.gather(*(items_store.write(insert, f"w{i}") for i in range(200)))
    assert len(set(ids)) == 200
    assert items_store.stats.calls == 200
    assert items_store.stats.commits <= 40
    assert await items_store.read(count) == 200


async def test_a_failing_write_rolls_back_alone(items_store: Store) -> None:
    """A write that raises loses only its own changes; the others in its batch commit."""

    def insert_then_fail(db: Database, label: str) -> None:
        insert(db, label)
        raise ValueError("refused on purpose")

    results = await asyncio.gather(
        items_store.write(insert, "a"),
        items_store.write(insert_then_fail, "b"),
        items_store.write(insert, "a"),  # UNIQUE violation
        items_store.write(insert, "c"),
        return_exceptions=True,
    )
    assert isinstance(results[1], ValueError)
    assert isinstance(results[2], sqlite3.IntegrityError)
    labels = await items_store.read(
        lambda db: [r[0] for r in db.execute("SELECT label FROM items")]
    )
    assert sorted(labels) == ["a", "c"]
    assert items_store.stats.failed_calls == 2


async def test_a_write_that_aborts_the_transaction_does_not_lose_the_batch(
    items_store: Store,
) -> None:
    """A RAISE(ROLLBACK) that ends the whole transaction fails only its own caller."""
    await items_store.write(
        lambda db: db.execute(
            "CREATE TRIGGER no_poison BEFORE INSERT ON items WHEN NEW.label = 'poison'"
            " BEGIN SELECT RAISE(ROLLBACK, 'poison refused'); END"
        )
    )
    results = await asyncio.gather(
        *(items_store.write(insert, f"ok{i}") for i in range(5)),
        items_store.write(insert, "poison"),
        *(items_store.write(insert, f"ok{i}") for i in range(5, 10)),
        return_exceptions=True,
    )
    assert isinstance(results[5], sqlite3.IntegrityError)
    assert await items_store.read(count) == 10


async def test_an_acknowledged_write_is_visible_to_a_fresh_connection(
    items_store: Store, tmp_path: Path
) -> None:
    """Once write() returns, the row is committed: another connection sees it at once."""
    await items_store.write(insert, "durable")
    other = sqlite3.connect(tmp_path / "items.db")
    assert other.execute("SELECT label FROM items").fetchall() == [("durable",)]
    other.close()


async def test_reads_cannot_write(items_store: Store) -> None:
    """Read connections are query-only."""
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        await items_store.read(insert, "nope")


async def test_the_wal_is_truncated_when_the_store_is_idle(
    items_store: Store, tmp_path: Path
) -> None:
    """After a burst of writes and a short idle spell, the WAL file is checkpointed to 0 bytes."""
    await asyncio.gather(*(items_store.write(insert, f"x{i}") for i in range(300)))
    wal = tmp_path / "items.db-wal"
    assert wal.stat().st_size > 0
    for _ in range(50):
        await asyncio.sleep(0.1)
        # The writer thread counts the checkpoint just after the file shrinks: wait for both.
        if wal.stat().st_size == 0 and items_store.stats.checkpoints >= 1:
            break
    assert wal.stat().st_size == 0
    assert items_store.stats.checkpoints >= 1


async def test_close_finishes_queued_writes(tmp_path: Path) -> None:
    """Writes queued before close() are committed and acknowledged, then the store refuses."""
    store = Store(tmp_path / "c.db", items_migrations)
    tasks = [asyncio.ensure_future(store.write(insert, f"q{i}")) for i in range(50)]
    await asyncio.sleep(0)
    await store.close()
    assert len(await asyncio.gather(*tasks)) == 50
    with pytest.raises(StoreError, match="closed"):
        await store.write(insert, "late")
    db = connect(tmp_path / "c.db")
    assert count(db) == 50
    db.close()


async def items_migrations_apply_once(tmp_path: Path) -> None:
    """Opening the same file twice applies each migration once."""
    for _ in range(2):
        store = await open_store(tmp_path / "m.db", items_migrations)
        await store.close()
    db = connect(tmp_path / "m.db")
    assert [m.name for m in items_migrations.applied(db)] == ["m001_items"]
    db.close()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.booleans(), st.booleans()), min_size=1, max_size=60))
def test_each_caller_gets_its_own_outcome_in_any_mix(
    tmp_path_factory: pytest.TempPathFactory, plan: list[tuple[bool, bool]]
) -> None:
    """Any mix of succeeding and failing concurrent writes: exactly the good ones are stored,
    and every caller gets its own result or its own exception."""

    def act(db: Database, i: int, fail: bool, abort: bool) -> int:
        insert(db, f"row{i}")
        if abort:
            db.conn.execute("ROLLBACK")  # a call that ends the transaction itself
        if fail:
            raise ValueError(f"fail {i}")
        return i

    async def run() -> None:
        store = await open_store(tmp_path_factory.mktemp("mix") / "m.db", items_migrations)
        try:
            calls = [store.write(act, i, fail, abort) for i, (fail, abort) in enumerate(plan)]
            results = await asyncio.gather(*calls, return_exceptions=True)
            labels = await store.read(
                lambda db: {r[0] for r in db.execute("SELECT label FROM items")}
            )
        finally:
            await store.close()
        for i, ((fail, abort), result) in enumerate(zip(plan, results, strict=True)):
            if abort:
                assert isinstance(result, StoreError | ValueError)
            elif fail:
                assert isinstance(result, ValueError) and str(result) == f"fail {i}"
            else:
                assert result == i
        assert labels == {
            f"row{i}" for i, (fail, abort) in enumerate(plan) if not fail and not abort
        }

    asyncio.run(run())


async def test_a_long_read_does_not_stall_writes_behind_a_checkpoint(
    items_store: Store, tmp_path: Path
) -> None:
    """While a 3 s read holds the latest snapshot, the idle TRUNCATE checkpoint (which must wait
    for every reader) gives up instead of blocking the writer: writes stay fast, and the WAL
    is truncated once the read is over. (Without the short busy timeout the write waited
    ~2.3 s here.)"""
    import time

    await items_store.write(insert, "before")

    def long_read(db: Database) -> int:
        seen = count(db)
        time.sleep(3)
        return seen

    reading = asyncio.ensure_future(items_store.read(long_read))
    await asyncio.sleep(0.8)  # idle: the writer tries a TRUNCATE checkpoint and must not hang
    began = time.perf_counter()
    await items_store.write(insert, "still fast")
    assert time.perf_counter() - began < 1.0
    assert await reading == 1
    wal = tmp_path / "items.db-wal"
    for _ in range(50):
        await asyncio.sleep(0.1)
        if wal.stat().st_size == 0:
            break
    assert wal.stat().st_size == 0


async def test_the_writer_survives_a_lock_held_by_another_process(tmp_path: Path) -> None:
    """If another connection holds the write lock past the timeout, the waiting writes fail
    with 'database is locked' and later writes succeed: the writer thread lives on."""
    store = await open_store(tmp_path / "l.db", items_migrations, busy_timeout_ms=200)
    other = sqlite3.connect(tmp_path / "l.db", isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        results = await asyncio.gather(
            store.write(insert, "a"), store.write(insert, "b"), return_exceptions=True
        )
        assert all(isinstance(r, sqlite3.OperationalError) for r in results)
        assert "locked" in str(results[0])
        other.execute("ROLLBACK")
        assert await store.write(insert, "c") >= 1
        assert await store.read(count) == 1
    finally:
        other.close()
        await store.close()


async def test_read_now_sees_committed_rows_and_cannot_write(items_store: Store) -> None:
    """read_now runs on the caller's thread, sees what write() acknowledged, and is read-only."""
    await items_store.write(insert, "seen")
    assert items_store.read_now(count) == 1
    await items_store.write(insert, "seen too")
    assert items_store.read_now(count) == 2  # a fresh snapshot each call
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        items_store.read_now(insert, "nope")


@routine_write
def routine_insert(db: Database, label: str) -> int:
    return insert(db, label)


@routine_write
def routine_refuse(db: Database, label: str) -> None:
    """Refuses before changing anything (like a save to a closed attempt)."""
    raise ValueError(f"{label} refused before any change")


@routine_write
def routine_insert_then_fail(db: Database, label: str) -> None:
    insert(db, label)
    raise ValueError(f"{label} refused after a change")


async def test_a_routine_write_that_fails_loses_only_its_own_changes(items_store: Store) -> None:
    """Routine writes run without a savepoint of their own, yet one that raises, before or
    after changing rows, loses only its own changes: the others in its batch commit, each
    caller gets its own outcome, and the generation stays where it was."""
    generation = items_store.generation
    calls = []
    for i in range(60):
        fn = (routine_insert, routine_refuse, routine_insert_then_fail)[i % 3]
        calls.append(items_store.write(fn, f"r{i}"))
    outcomes = await asyncio.gather(*calls, return_exceptions=True)
    for i, outcome in enumerate(outcomes):
        if i % 3 == 0:
            assert isinstance(outcome, int), outcome
        else:
            assert isinstance(outcome, ValueError), outcome
    labels = await items_store.read(
        lambda db: [r[0] for r in db.execute("SELECT label FROM items")]
    )
    assert sorted(labels) == sorted(f"r{i}" for i in range(0, 60, 3))
    assert items_store.stats.commits < 60  # they did share batches
    assert items_store.generation == generation
