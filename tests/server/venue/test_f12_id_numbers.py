"""Issue 16, F12 (art. 46-47): the venue database and its backups hold no ID number, only the
keyed hash login compares and a masked form; login still works; the export to the centre
carries tickets, and the centre takes ID numbers from its own registration data."""

from __future__ import annotations

import json
import shutil
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from paperpack.authority import load_authority
from paperpack.crypto import generate_wrapping_key, read_signing_public
from server.cli import main as cbt
from server.protocol.response_package import open_response_package
from server.venue.backup_crypto import BackupCryptoError, open_file, row_opener
from server.venue.export import export_session
from server.venue.id_protect import id_hash, mask_id, venue_id_key
from server.venue.workspace import load_venue, load_wrapping_key, open_venue_db
from tests.server.conftest import CANDIDATES, START, VenueKit, id_number, ticket


def every_file(directory: Path) -> list[Path]:
    return [p for p in directory.rglob("*") if p.is_file()]


def holding(directory: Path, needles: list[bytes]) -> list[str]:
    """Files under `directory` whose raw bytes contain any of `needles`."""
    found = []
    for path in every_file(directory):
        data = path.read_bytes()
        found += [f"{path.relative_to(directory)}: {n.decode()}" for n in needles if n in data]
    return found


async def test_f12_no_id_number_in_the_venue_database_or_its_backups(venue_kit: VenueKit) -> None:
    """Roster rows written in plaintext (as an older build did; the fixture inserts them so)
    are hashed when the venue opens the database; candidates log in with their ID number (any
    case of X, spaces), a wrong one is refused; after an exam, the continuous backup, the base
    snapshot and `cbt venue backup`, not one ID number is in any byte of the venue directory,
    and the masked form is there for the identity check."""
    kit = venue_kit
    await kit.unlock()
    candidates = [await kit.login_candidate(n) for n in range(1, 4)]
    spaced = " ".join(id_number(4)[i : i + 6] for i in range(0, 18, 6)).lower()
    resp = await kit.client.post(
        "/api/v1/candidate/login", json={"ticket": ticket(4), "id_number": spaced}
    )
    assert resp.status == 200, await resp.text()
    wrong = await kit.client.post(
        "/api/v1/candidate/login", json={"ticket": ticket(5), "id_number": id_number(6)}
    )
    assert wrong.status == 401
    kit.clock.set(START + timedelta(minutes=1))
    for c in candidates:
        resp = await kit.client.get("/api/v1/attempt/paper", headers=c.auth)
        assert resp.status == 200
        item = (await resp.json())["sections"][0]["items"][0]
        value = [item["options"][0]["id"]] if item.get("options") else "answer"
        resp = await kit.client.put(
            "/api/v1/attempt/responses",
            json={"seq": 1, "responses": {item["id"]: value}},
            headers=c.auth,
        )
        assert resp.status == 200, await resp.text()
    await kit.client.close()  # a last backup pass, the WAL checkpointed
    assert cbt(["venue", "backup", str(kit.directory)]) == 0

    numbers = [id_number(n).encode() for n in range(1, CANDIDATES + 1)]
    assert holding(kit.directory, numbers) == []
    # Not even the distinctive middle digits (the part a mask hides) of any number.
    assert holding(kit.directory, [n[3:14] for n in numbers]) == []
    backups = sorted(p.name for p in (kit.directory / "backup").iterdir())
    assert "base.db.enc" in backups and "continuous.db" in backups and len(backups) >= 3

    key = venue_id_key(kit.directory)
    db = open_venue_db(kit.directory)
    try:
        rows = db.execute(
            "SELECT ticket, id_number, id_hash, id_masked FROM candidates ORDER BY ticket"
        ).fetchall()
    finally:
        db.close()
    assert len(rows) == CANDIDATES
    for n, (t, plain, hashed, masked) in enumerate(rows, start=1):
        assert t == ticket(n) and plain == ""
        assert hashed == id_hash(key, id_number(n)) and len(hashed) == 64
        assert masked == mask_id(id_number(n)) == id_number(n)[:3] + "*" * 11 + id_number(n)[-4:]


async def test_f12_the_export_carries_tickets_not_id_numbers(venue_kit: VenueKit) -> None:
    """The centre gets tickets from the venue (its registration CSV has the ID numbers:
    `cbt central score --roster`): the signed, encrypted export holds no ID number, masked or
    hashed, and still names every candidate who sat by ticket."""
    kit = venue_kit
    await kit.unlock()
    c = await kit.login_candidate(1)
    kit.clock.set(START + timedelta(minutes=1))
    assert (await kit.client.get("/api/v1/attempt/paper", headers=c.auth)).status == 200
    kit.clock.set(START + timedelta(minutes=105))
    assert (await kit.client.post("/api/v1/attempt/submit", headers=c.auth)).status == 200
    await kit.client.close()
    authority_dir = kit.template.authority_dir
    result = export_session(
        kit.directory, central_key=authority_dir / "upload.pub", now=START + timedelta(hours=3)
    )
    venue_public = read_signing_public(
        (kit.directory / "keys" / "venue-sign.pub").read_text(), "venue"
    )
    opened = open_response_package(
        result.path.read_bytes(), venue_public, load_authority(authority_dir).wrapping_key
    )
    text = json.dumps(opened.contents, ensure_ascii=False)
    assert ticket(1) in text
    key = venue_id_key(kit.directory)
    for n in range(1, CANDIDATES + 1):
        for form in (id_number(n), mask_id(id_number(n)), id_hash(key, id_number(n))):
            assert form not in text


def test_f12_a_database_from_an_older_build_is_upgraded_without_leaving_numbers(
    tmp_path: Path,
) -> None:
    """A venue database made before F12 (migrations m001-m004, plaintext ID numbers, some rows
    deleted and re-imported): the first open hashes them, and no byte of the file, free pages
    included, still holds one."""
    from sqlite_utils import Database
    from sqlite_utils.migrations import Migrations

    from server.venue import schema
    from server.venue.workspace import init_venue

    venue = init_venue(tmp_path / "venue", "V-OLD")
    venue.db_path.unlink()
    old = Migrations("venue")
    for step in (schema.m001_initial, schema.m002_variants, schema.m003_audit_chain_format,
                 schema.m004_outages):  # fmt: skip
        old()(step)
    db = Database(venue.db_path)
    db.execute("PRAGMA secure_delete = OFF")  # some builds of SQLite wipe deleted rows; not all
    old.apply(db)
    insert = (
        "INSERT INTO candidates (session_id, ticket, name, id_number, subject, row_no,"
        " imported_at) VALUES ('S1', ?, 'N', ?, '27', 2, '2026-01-01T00:00:00.000Z')"
    )
    for n in range(1, 41):
        db.execute(insert, (ticket(n), id_number(n)))
    db.execute("DELETE FROM candidates WHERE ticket > ?", (ticket(30),))  # freed, not wiped
    db.conn.commit()
    db.close()
    data = json.loads((venue.directory / "venue.json").read_text())
    del data["database"]  # the directory is as old: no database identity either
    (venue.directory / "venue.json").write_text(json.dumps(data))
    assert id_number(35).encode() in venue.db_path.read_bytes()

    upgraded = open_venue_db(venue.directory)
    try:
        masked = [r[0] for r in upgraded.execute("SELECT id_masked FROM candidates")]
    finally:
        upgraded.close()
    assert len(masked) == 30
    numbers = [id_number(n).encode() for n in range(1, 41)]
    assert holding(venue.directory, numbers) == []


async def test_f12_answers_in_the_backups_are_encrypted(venue_kit: VenueKit) -> None:
    """With the centre's upload key pinned: after an exam, no answer is in any byte of the
    backup disk (continuous backup, base snapshot, `cbt venue backup`) although the live
    database holds them; the venue's key and the centre's upload key each open the copies,
    another venue's key does not; `cbt venue restore` decrypts them (test_f5_restore)."""
    kit = venue_kit
    authority_dir = kit.template.authority_dir
    shutil.copy(authority_dir / "upload.pub", kit.directory / "keys" / "authority-upload.pub")
    await kit.unlock()
    candidates = [await kit.login_candidate(n) for n in range(1, 4)]
    kit.clock.set(START + timedelta(minutes=1))
    markers = []
    for c in candidates:
        paper = await (await kit.client.get("/api/v1/attempt/paper", headers=c.auth)).json()
        essay = next(i for s in paper["sections"] for i in s["items"] if i["type"] == "essay")
        for seq in (1, 2):
            marker = f"ANSWER-{c.ticket}-{seq}-不可见"
            markers.append(marker.encode())
            resp = await kit.client.put(
                "/api/v1/attempt/responses",
                json={"seq": seq, "responses": {essay["id"]: marker}},
                headers=c.auth,
            )
            assert resp.status == 200, await resp.text()
    kit.clock.set(START + timedelta(minutes=105))
    resp = await kit.client.post("/api/v1/attempt/submit", headers=candidates[0].auth)
    assert resp.status == 200, await resp.text()  # its answers go to the backup too
    await kit.client.close()
    assert cbt(["venue", "backup", str(kit.directory)]) == 0

    assert holding(kit.directory, markers[:1]) != []  # the live database has them (WAL or file)
    backup = kit.directory / "backup"
    assert holding(backup, markers) == []
    full = next(backup.glob("venue-*.db.enc"))
    venue_key = load_wrapping_key(load_venue(kit.directory))
    centre_key = load_authority(authority_dir).wrapping_key
    # The base snapshot was written at start, before the centre's key was pinned here.
    for key, sealed in ((venue_key, backup / "base.db.enc"), (venue_key, full), (centre_key, full)):
        out = kit.directory.parent / "opened.db"
        out.unlink(missing_ok=True)
        open_file(sealed, out, key)
        assert out.read_bytes().startswith(b"SQLite format 3\x00")
    with pytest.raises(BackupCryptoError, match="does not open with this key"):
        open_file(full, kit.directory.parent / "x.db", generate_wrapping_key())
    conn = sqlite3.connect(backup / "continuous.db")
    try:
        sealed_values = [r[0] for r in conn.execute("SELECT responses FROM journal")]
        sealed_values += [r[0] for r in conn.execute("SELECT answers FROM submissions")]
        opener = row_opener(conn, "V001", load_wrapping_key(load_venue(kit.directory)))
        first = conn.execute("SELECT src_rowid, responses FROM journal LIMIT 1").fetchone()
    finally:
        conn.close()
    assert len(sealed_values) == 7 and all(v.startswith("cbtbk1:") for v in sealed_values)
    assert "ANSWER-" in opener("journal", "responses", first[0], first[1])


def test_f12_no_temporary_copy_on_a_nearly_full_venue_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The encrypted copies start from a plaintext copy on the venue's own disk: with less than
    three times the database free (plus 64 MiB) none is made, the previous base snapshot stays,
    and `cbt venue backup` says so in one line (issue 16, F6: saves keep their room)."""
    from collections import namedtuple

    from server.venue import base_snapshot
    from server.venue.backup import BackupError
    from server.venue.backup_crypto import Recipients
    from server.venue.workspace import init_venue

    venue = init_venue(tmp_path / "venue", "V-FULL")
    recipients = Recipients.of(venue.venue_id, venue.wrap_public, venue.keys_dir)
    base_snapshot.write_base_snapshot(venue.db_path, venue.backup_dir, recipients)
    before = (venue.backup_dir / "base.db.enc").read_bytes()
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(base_snapshot.shutil, "disk_usage", lambda _: usage(1, 1, 1 << 20))
    with pytest.raises(BackupError, match="not enough free space"):
        base_snapshot.write_base_snapshot(venue.db_path, venue.backup_dir, recipients)
    assert (venue.backup_dir / "base.db.enc").read_bytes() == before
    assert cbt(["venue", "backup", str(venue.directory)]) == 1
    err = capsys.readouterr().err
    assert "not enough free space" in err and len(err.strip().splitlines()) == 1
    assert list(venue.directory.rglob("*.full-backup")) == []
    assert list(venue.directory.rglob("*.base-snapshot")) == []
