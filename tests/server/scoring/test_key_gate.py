"""Keys after the real end (art. 35(2), issue 14 point 2), through the real chain: the venue's
tables, `export_session` (refusing mid-exam without a reason), the venue's uploader into a real
central app, `score_session`.

The package's window closes at START + 30 min and the paper lasts 120 min, so the old fixed
gate was START + 150 min."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from paperpack.cli import main as paperpack_main
from server.clock import iso
from server.scoring.material import KeysNotReleased
from server.store import transaction
from server.venue.export import ExportError, export_session
from server.venue.submission import finalise_attempt
from server.venue.workspace import open_venue_db
from tests.server.scoring.conftest import START
from tests.server.scoring.real_chain import RealVenue, seat_roster

SESSION = "S-GATE"
TICKETS = ("80001", "80002")
FIXED_END = START + timedelta(minutes=150)


def _setup(root: Path) -> RealVenue:
    real = RealVenue.make(root, SESSION, TICKETS, items=6, seed=3)
    venue = real.venue
    db = open_venue_db(venue.directory)
    with transaction(db):
        seat_roster(db, SESSION, TICKETS, ended=False)
    db.close()
    return real


def _finish(sitting: RealVenue, ticket: str, at: datetime) -> None:
    db = open_venue_db(sitting.venue.directory)
    with transaction(db):
        finalise_attempt(db, f"att-{ticket}", "candidate", at)
    db.close()


def _grant(sitting: RealVenue, ticket: str, minutes: int) -> None:
    db = open_venue_db(sitting.venue.directory)
    with transaction(db):
        db.execute(
            "UPDATE attempts SET time_granted_ms = ? WHERE attempt_id = ?",
            (minutes * 60_000, f"att-{ticket}"),
        )
        db.execute(
            "INSERT INTO time_grants (attempt_id, granted_ms, reason, granted_by, granted_at)"
            " VALUES (?, ?, 'machine failure', 'chief', ?)",
            (f"att-{ticket}", minutes * 60_000, iso(START + timedelta(minutes=30))),
        )
    db.close()


def _end_session(sitting: RealVenue, at: datetime) -> None:
    db = open_venue_db(sitting.venue.directory)
    with transaction(db):
        db.execute(
            "UPDATE sessions SET status = 'ended', ended_at = ? WHERE session_id = ?",
            (iso(at), SESSION),
        )
    db.close()


async def _score_at(sitting: RealVenue, moment: datetime, **export: Any) -> list[str]:
    """Export (as given), upload to a real central app, score at `moment`: the statuses."""
    await sitting.export_and_upload(moment, **export)
    return [r.status for r in (await sitting.score(moment)).results]


async def test_scoring_starts_as_soon_as_the_venue_reports_its_end(tmp_path: Path) -> None:
    """Every attempt submitted and the session ended at START + 100 min: the final report lets
    scoring start at START + 101 min, 49 minutes before the old fixed gate."""
    sitting = _setup(tmp_path)
    for ticket in TICKETS:
        _finish(sitting, ticket, START + timedelta(minutes=90))
    _end_session(sitting, START + timedelta(minutes=100))
    statuses = await _score_at(sitting, START + timedelta(minutes=101))
    assert len(statuses) == len(TICKETS)


async def test_a_grant_past_the_fixed_end_holds_the_keys_until_the_real_end(
    tmp_path: Path,
) -> None:
    """One candidate granted 40 min still answers: the venue's partial export says so, and
    scoring waits past the old fixed gate until START + 160 min."""
    sitting = _setup(tmp_path)
    _finish(sitting, TICKETS[0], START + timedelta(minutes=90))
    _grant(sitting, TICKETS[1], 40)
    moment = FIXED_END + timedelta(minutes=5)
    with pytest.raises(ExportError, match=r"still open \(tickets 80002\).*--partial --reason"):
        export_session(sitting.venue.directory, SESSION, now=moment,
                       central_key=tmp_path / "auth" / "upload.pub")  # fmt: skip
    with pytest.raises(KeysNotReleased, match="final end-of-session report of V1"):
        await _score_at(sitting, moment, partial_reason="the centre asked for a first copy")
    _finish(sitting, TICKETS[1], START + timedelta(minutes=158))
    _end_session(sitting, START + timedelta(minutes=160))
    statuses = await _score_at(sitting, START + timedelta(minutes=161))
    assert len(statuses) == len(TICKETS)


async def test_an_approved_delay_on_record_holds_the_keys_without_a_final_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The centre approved a 45 min start delay; the venue's only export is partial: scoring
    waits until the fixed end plus 45 minutes, and starts after it."""
    sitting = _setup(tmp_path)
    assert paperpack_main(["approve-delay", SESSION, "V1", "--minutes", "45",
                           "--authority", str(tmp_path / "auth")]) == 0  # fmt: skip
    capsys.readouterr()
    with pytest.raises(KeysNotReleased):
        await _score_at(sitting, FIXED_END + timedelta(minutes=40), partial_reason="link test")
    statuses = await _score_at(sitting, FIXED_END + timedelta(minutes=46), partial_reason="again")
    assert len(statuses) == len(TICKETS)


def test_cbt_venue_export_mid_exam_is_refused_without_partial(tmp_path: Path) -> None:
    """The CLI names the open attempts; with --partial --reason the package says partial."""
    import subprocess
    import sys

    from paperpack import crypto
    from server.protocol.response_package import open_response_package

    sitting = _setup(tmp_path)
    base = [sys.executable, "-m", "server.cli", "venue", "export", str(sitting.venue.directory),
            "--central-key", str(tmp_path / "auth" / "upload.pub")]  # fmt: skip
    done = subprocess.run(base, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "2 attempt(s) of session S-GATE are still open (tickets 80001, 80002)" in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("cbt: error:")]
    assert len(errors) == 1 and "Traceback" not in done.stderr
    done = subprocess.run([*base, "--partial"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "go together" in done.stderr
    done = subprocess.run([*base, "--partial", "--reason", "link test"], capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "partial export" in done.stdout
    [package] = (sitting.venue.directory / "outbox").glob("*.cbtresp")
    venue_public = crypto.read_signing_public(sitting.venue.sign_public, "venue")
    opened = open_response_package(
        package.read_bytes(), venue_public, sitting.authority.wrapping_key
    )
    report = opened.contents["end_report"]
    assert report["final"] is False and report["partial_reason"] == "link test"
    assert report["open_tickets"] == list(TICKETS)
    assert json.dumps(report)  # plain data
