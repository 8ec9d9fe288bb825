"""People (art. 19, 48, 27): role counts, conflicts of interest, the console's backup and
outbox state; through the real CLI and HTTP API on a copy of the template venue."""

from __future__ import annotations

import asyncio
import shutil
from datetime import timedelta
from pathlib import Path

import pytest

from server.cli import main
from server.staffauth import hash_password
from server.store import transaction
from server.venue.console import oldest_uncopied
from server.venue.invigilator_draw import draw_invigilators, verify_invigilators
from server.venue.rooms import SeatsError
from server.venue.staff import add_staff
from server.venue.upload import put_in_outbox
from server.venue.workspace import open_venue_db
from tests.server.conftest import PASSWORD, SESSION_ID, START, VenueKit, VenueTemplate


def cli(*argv: str) -> int:
    return main(["venue", *argv])


def add(directory: Path, login: str, role: str) -> None:
    db = open_venue_db(directory)
    with transaction(db):
        add_staff(db, login, login.title(), role, hash_password(PASSWORD), actor="cli:test",
                  now=START - timedelta(days=1))  # fmt: skip
    db.close()


# --- art. 19: exactly one chief examiner, at least one system administrator ----------------


async def test_art_19_the_ceremony_is_refused_without_exactly_one_chief(
    venue_kit: VenueKit,
) -> None:
    kit = venue_kit
    await kit.import_package()
    add(kit.directory, "chief2", "chief_examiner")
    resp = await kit.client.post(
        "/api/v1/staff/ceremony", json={"session_id": SESSION_ID},
        headers=await kit.as_staff("admin"),
    )  # fmt: skip
    body = await resp.json()
    assert (resp.status, body["type"].split("/")[-1]) == (409, "role-counts")
    assert "2 chief examiners (chief, chief2)" in body["detail"]
    assert "cbt venue staff disable" in body["detail"]
    dashboard = await (
        await kit.client.get("/api/v1/staff/dashboard", headers=await kit.as_staff("admin"))
    ).json()
    assert "2 chief examiners" in dashboard["staff_problem"]
    assert cli("staff", "disable", str(kit.directory), "--login", "chief2", "--reason", "typo") == 0
    resp = await kit.client.post(
        "/api/v1/staff/ceremony", json={"session_id": SESSION_ID},
        headers=await kit.as_staff("admin"),
    )  # fmt: skip
    assert resp.status == 201, await resp.text()


def test_art_19_serve_refuses_a_session_without_its_chief_or_administrator(
    venue_template: VenueTemplate, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`cbt venue serve` exits 1 naming the command, once a session has a package in force."""
    directory = tmp_path / "venue"
    shutil.copytree(venue_template.directory, directory)
    (tmp_path / "pw").write_text(PASSWORD + "\n")
    pw = str(tmp_path / "pw")
    assert cli("import", str(directory), str(venue_template.package_dir), "--login", "admin",
               "--confirm-login", "chief", "--password-file", pw,
               "--confirm-password-file", pw) == 0  # fmt: skip
    assert cli("staff", "disable", str(directory), "--login", "chief", "--reason", "ill") == 0
    capsys.readouterr()
    assert cli("serve", str(directory), "--port", "1") == 1
    err = capsys.readouterr().err
    assert f"cannot serve session {SESSION_ID}: the venue has no chief examiner" in err
    assert "cbt venue staff add DIR --login LOGIN --role chief_examiner" in err
    assert cli("staff", "disable", str(directory), "--login", "admin", "--reason", "left") == 0
    add(directory, "chief9", "chief_examiner")
    capsys.readouterr()
    assert cli("serve", str(directory), "--port", "1") == 1
    assert "no system administrator" in capsys.readouterr().err


# --- art. 48: conflicts of interest --------------------------------------------------------


async def test_art_48_a_declared_conflict_holds_no_share(venue_kit: VenueKit) -> None:
    kit = venue_kit
    await kit.import_package()
    argv = ["staff", "conflict", str(kit.directory), "--login", "inv1", "--reason", "cousin sits"]
    assert cli(*argv) == 0
    resp = await kit.client.post(
        "/api/v1/staff/ceremony", json={"session_id": SESSION_ID},
        headers=await kit.as_staff("admin"),
    )  # fmt: skip
    assert resp.status == 201
    resp = await kit.client.post(
        "/api/v1/staff/ceremony/shares", json={"share": kit.template.cards[2]},
        headers=await kit.as_staff("inv1"),
    )  # fmt: skip
    body = await resp.json()
    assert (resp.status, body["type"].split("/")[-1]) == (403, "conflict-of-interest")
    ceremony = await (
        await kit.client.get("/api/v1/staff/ceremony", headers=await kit.as_staff("admin"))
    ).json()
    assert ceremony["shares_entered"] == 0


def test_art_48_a_declared_conflict_is_left_out_of_that_rooms_draw(
    venue_template: VenueTemplate, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """inv1 declares a conflict for room R1: R1's two invigilators are drawn from the others,
    whatever the seed; the draw re-runs from the record; with too few left it is refused."""
    directory = tmp_path / "venue"
    shutil.copytree(venue_template.directory, directory)
    assert cli("staff", "conflict", str(directory), "--login", "inv1", "--room", "R1",
               "--reason", "a relative sits in R1") == 0  # fmt: skip
    assert cli("staff", "conflict", str(directory), "--login", "inv1", "--room", "R9",
               "--reason", "x") == 1  # fmt: skip
    assert "no room R9" in capsys.readouterr().err
    assert cli("staff", "list", str(directory)) == 0
    assert "conflict of interest declared" in capsys.readouterr().out
    db = open_venue_db(directory)
    try:
        with transaction(db), pytest.raises(SeatsError, match="room R1 needs 2 invigilators"):
            draw_invigilators(db, "C0", actor="cli:test", now=START, seed=b"\0" * 32)
    finally:
        db.close()
    for n in (3, 4, 5):
        add(directory, f"inv{n}", "invigilator")
    db = open_venue_db(directory)
    try:
        for seed in range(6):
            session = f"C{seed + 1}"  # sessions of their own (the template's S1 has its draw)
            with transaction(db):
                draw = draw_invigilators(db, session, actor="cli:test", now=START,
                                         seed=bytes([seed]) * 32)  # fmt: skip
            assert "inv1" not in draw and sorted(draw.values()) == ["R1", "R1"]
            assert verify_invigilators(db, session) == draw
    finally:
        db.close()


# --- art. 27: the console shows the backup's lag and the outbox -----------------------------


async def test_art_27_the_dashboard_shows_backup_lag_and_outbox(venue_kit: VenueKit) -> None:
    kit = venue_kit
    await kit.import_package()
    put_in_outbox(kit.directory, b"a sealed answer package waiting for the centre")
    body = await (
        await kit.client.get("/api/v1/staff/dashboard", headers=await kit.as_staff("inv1"))
    ).json()
    assert body["outbox"]["waiting"] == 1 and body["outbox"]["delivered"] == 0
    assert body["outbox"]["oldest_waiting_at"]
    assert [p["in_force"] for p in body["packages"]] == [True]
    assert body["staff_problem"] is None
    # The import's audit rows are new: the continuous backup (a pass a second) catches up.
    for _ in range(50):
        backup = (
            await (
                await kit.client.get("/api/v1/staff/dashboard", headers=await kit.as_staff("inv1"))
            ).json()
        )["backup"]
        if backup["rows_behind"] == 0:
            break
        assert backup["lag_s"] >= 0  # rows wait: the age of the oldest, on the venue's clock
        await asyncio.sleep(0.1)
    assert (backup["rows_behind"], backup["lag_s"]) == (0, 0)
    assert backup["backup_at"]
    # The lag is the age of the oldest row not copied yet: here the last audit event.
    db = open_venue_db(kit.directory)
    try:
        last, at = db.execute("SELECT MAX(rowid), MAX(at) FROM audit_events").fetchone()
        heads = {"journal": 10**9, "submissions": 10**9}
        assert oldest_uncopied(db, {**heads, "audit_events": last - 1}) == at
        assert oldest_uncopied(db, {**heads, "audit_events": last}) is None
    finally:
        db.close()
