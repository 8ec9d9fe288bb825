"""Issue 16, F5: a wiped, damaged or foreign venue database is refused at start, with one line
naming the restore procedure and exit 1 (the real CLI in a subprocess), and `cbt audit
verify` fails on it too."""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from server.audit import record
from server.cli import main as cbt
from server.store import transaction
from server.venue.workspace import Venue, init_venue, load_venue, open_venue_db
from tests.server.venue.conftest import T0

PAGE = 4096


def fill(venue: Venue, events: int = 300) -> None:
    """Give the database some pages of audit events, checkpointed into the main file."""
    db = open_venue_db(venue.directory)
    try:
        with transaction(db):
            for i in range(events):
                record(db, "cli:test", "test.filled", f"n:{i}", {"pad": "x" * 200}, now=T0)
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        db.close()


def empty(venue: Venue, tmp_path: Path) -> None:
    venue.db_path.write_bytes(b"")


def random_pages(venue: Venue, tmp_path: Path) -> None:
    """Random bytes over every page but the first (the header stays valid)."""
    size = venue.db_path.stat().st_size
    assert size > 10 * PAGE
    rng = random.Random(16)
    with venue.db_path.open("r+b") as f:
        f.seek(PAGE)
        f.write(rng.randbytes(size - PAGE))


def bad_header(venue: Venue, tmp_path: Path) -> None:
    with venue.db_path.open("r+b") as f:
        f.write(random.Random(5).randbytes(100))


def foreign(venue: Venue, tmp_path: Path) -> None:
    """Another venue directory's (intact) database copied over this one's."""
    other = init_venue(tmp_path / "other", venue.venue_id, now=T0)
    fill(other, 5)
    shutil.copyfile(other.db_path, venue.db_path)


def missing(venue: Venue, tmp_path: Path) -> None:
    venue.db_path.unlink()


DAMAGES: dict[str, tuple[Callable[[Venue, Path], None], str]] = {
    "empty": (empty, "is empty (0 bytes)"),
    "random-pages": (random_pages, "is damaged (PRAGMA quick_check"),
    "bad-header": (bad_header, "is not an SQLite database (its header is damaged)"),
    "foreign": (foreign, "belongs to another venue directory"),
    "missing": (missing, "is missing"),
}


def serve(venue_dir: Path) -> subprocess.CompletedProcess[str]:
    """`cbt venue serve DIR` as an operator runs it (port 9 is never reached if refused)."""
    return subprocess.run(
        [sys.executable, "-m", "server.cli", "venue", "serve", str(venue_dir), "--port", "9"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "CBT_LOG_REQUESTS": "0"},
        check=False,
    )


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_f5_a_damaged_venue_database_is_refused_at_start(
    venue: Venue, tmp_path: Path, damage: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """0-byte, random bytes over its pages, a bad header, another venue's, or none at all:
    `cbt venue serve` exits 1 with ONE line naming `cbt venue restore`, no traceback, and the
    file is left as it was (nothing created in its place); `cbt audit verify` exits 1 too."""
    fill(venue)
    make_damage, reason = DAMAGES[damage]
    make_damage(venue, tmp_path)
    before = venue.db_path.read_bytes() if venue.db_path.exists() else None
    done = serve(venue.directory)
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("cbt: error: ") and reason in lines[0]
    assert f"cbt venue restore {venue.directory}" in lines[0]
    assert "Traceback" not in done.stderr and "serving on" not in done.stdout
    assert (venue.db_path.read_bytes() if venue.db_path.exists() else None) == before
    # Every other command that opens it refuses it the same way.
    assert cbt(["venue", "staff", "list", str(venue.directory)]) == 1
    assert reason in capsys.readouterr().err
    if damage != "missing":
        assert cbt(["audit", "verify", str(venue.directory)]) == 1
        err = capsys.readouterr().err
        assert reason in err and len(err.strip().splitlines()) == 1


def test_f5_audit_verify_checks_integrity_of_a_database_file(
    venue: Venue, capsys: pytest.CaptureFixture[str]
) -> None:
    """`cbt audit verify FILE` runs quick_check (and `--full` integrity_check) before the chain."""
    fill(venue)
    assert cbt(["audit", "verify", str(venue.db_path)]) == 0
    assert "quick_check: ok" in capsys.readouterr().out
    assert cbt(["audit", "verify", "--full", str(venue.directory)]) == 0
    assert "integrity_check: ok" in capsys.readouterr().out
    random_pages(venue, venue.directory)
    assert cbt(["audit", "verify", "--full", str(venue.db_path)]) == 1
    assert "is damaged (PRAGMA integrity_check" in capsys.readouterr().err


def test_f5_the_identity_is_recorded_in_the_database_and_beside_it(venue: Venue) -> None:
    """venue.json and the database carry the same random database id."""
    recorded = json.loads((venue.directory / "venue.json").read_text())["database"]
    conn = sqlite3.connect(venue.db_path)
    try:
        value = conn.execute(
            "SELECT value FROM settings WHERE key = 'database.identity'"
        ).fetchone()[0]
    finally:
        conn.close()
    inside = json.loads(value)
    assert inside["database_id"] == recorded["database_id"] == venue.database_id
    assert len(inside["database_id"]) == 32 and inside["venue_id"] == "V001"


def test_f5_a_directory_from_before_identities_is_adopted_once(
    venue: Venue, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A venue.json without an identity (an older build) with a database without one: the
    database gets an identity once (a warning line); a foreign one is refused afterwards."""
    fill(venue, 3)
    data = json.loads((venue.directory / "venue.json").read_text())
    del data["database"]
    (venue.directory / "venue.json").write_text(json.dumps(data))
    conn = sqlite3.connect(venue.db_path)
    conn.execute("DELETE FROM settings WHERE key = 'database.identity'")
    conn.commit()
    conn.close()
    open_venue_db(venue.directory).close()
    adopted = load_venue(venue.directory)
    assert adopted.database_id and adopted.database_id != venue.database_id
    assert "venue.database_adopted" in caplog.text
    open_venue_db(venue.directory).close()  # the second open just checks
    foreign(adopted, tmp_path)
    with pytest.raises(Exception, match="belongs to another venue directory"):
        open_venue_db(venue.directory)


async def test_f5_the_serving_process_checks_its_database_once(
    venue: Venue, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server checks at start; its own later opens while it serves (the outbox worker
    looks for sessions to export every few seconds) do not run quick_check again, which on a
    108 MiB database takes over a second; once it stops, an open checks again."""
    from server.venue import integrity
    from server.venue.workspace import open_venue_store

    calls: list[Path] = []
    real = integrity.check_sqlite_file

    def counted(path: Path, *, full: bool = False) -> None:
        calls.append(path)
        real(path, full=full)

    monkeypatch.setattr(integrity, "check_sqlite_file", counted)
    integrity.forget_checks()
    store = await open_venue_store(venue.directory, continuous_backup=False)
    try:
        await store.write(lambda db: record(db, "system", "test.x", "x", {}, now=T0))
        open_venue_db(venue.directory).close()
        assert len(calls) == 1
    finally:
        await store.close()
    await asyncio.sleep(0)
    open_venue_db(venue.directory).close()
    assert len(calls) == 2
