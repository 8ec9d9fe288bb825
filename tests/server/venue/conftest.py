"""Factory fixtures for venue tests: a venue directory, its database, a running Store, and
rows (sessions, attempts) that journal and API tests build on."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlite_utils import Database

from server.store import Store, transaction
from server.venue.workspace import Venue, init_venue, open_venue_db, open_venue_store

T0 = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
def venue(tmp_path: Path) -> Venue:
    """A fresh venue directory (keys, empty migrated database) in tmp_path."""
    return init_venue(tmp_path / "venue", "V001", "Test centre", now=T0)


@pytest.fixture
def venue_db(venue: Venue) -> Iterator[Database]:
    """A synchronous, migrated connection to the venue database (as the CLI uses)."""
    db = open_venue_db(venue.directory)
    yield db
    db.close()


@pytest.fixture
async def store(venue: Venue) -> AsyncIterator[Store]:
    """The venue's group-committing Store (no continuous backup), closed after the test."""
    opened = await open_venue_store(venue.directory, continuous_backup=False)
    yield opened
    await opened.close()


def add_session(db: Database, session_id: str = "S1", subject: str = "ECON") -> str:
    """Insert a scheduled session (no package yet) and return its id."""
    db.execute(
        "INSERT INTO sessions (session_id, subject, title, starts_at, duration_ms)"
        " VALUES (?, ?, ?, ?, ?)",
        (session_id, subject, "Economics", "2026-06-01T09:00:00.000Z", 120 * 60_000),
    )
    return session_id


def add_attempt(db: Database, attempt_id: str, session_id: str = "S1", ticket: str = "") -> str:
    """Insert a logged-in attempt (the session must exist) and return its id."""
    db.execute(
        "INSERT INTO attempts (attempt_id, session_id, ticket, logged_in_at) VALUES (?, ?, ?, ?)",
        (attempt_id, session_id, ticket or attempt_id, "2026-06-01T08:55:00.000Z"),
    )
    return attempt_id


@pytest.fixture
def make_attempts(venue_db: Database) -> Callable[[int], list[str]]:
    """Create session S1 and `n` attempts A0001..; return their ids."""

    def make(n: int) -> list[str]:
        with transaction(venue_db):
            if not venue_db.execute("SELECT 1 FROM sessions WHERE session_id = 'S1'").fetchone():
                add_session(venue_db)
            return [add_attempt(venue_db, f"A{i:04d}") for i in range(1, n + 1)]

    return make
