"""A real venue directory exports a session from its tables and uploads it; the centre opens
exactly the venue's final answers, and the venue records the verified receipt."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlite_utils import Database

from paperpack import crypto
from paperpack.authority import Authority
from server import audit
from server.central.storage import VenueRecord
from server.clock import iso
from server.protocol.audit_chain import (
    CHAIN_FORMAT,
    LEGACY_VENUE_FORMAT,
    AuditBroken,
    verify_audit_records,
)
from server.protocol.journal_chain import JournalMismatch, broken_journals, check_journals
from server.protocol.response_package import open_response_package
from server.scoring.packages import read_session_packages
from server.store import transaction
from server.venue import journal
from server.venue.export import export_session
from server.venue.upload import drain_outbox, pending, receipt_path
from server.venue.workspace import init_venue, load_venue, open_venue_db
from tests.server.central.conftest import START, Central

TICKETS = [f"2026{n:05d}" for n in range(12)]


def sit_session(db: Database) -> dict[str, Any]:
    """Fill the venue tables as a sitting would: saves through the real journal, submissions."""
    finals: dict[str, Any] = {}
    with transaction(db):
        db.execute(
            "INSERT INTO sessions (session_id, subject, starts_at, duration_ms, status,"
            " unlocked_at, ended_at) VALUES ('S1', '27', ?, 9000000, 'ended', ?, ?)",
            (iso(START), iso(START), iso(START)),
        )
        for n, ticket in enumerate(TICKETS):
            db.execute(
                "INSERT INTO candidates (session_id, ticket, name, id_number, subject, row_no,"
                " imported_at) VALUES ('S1', ?, 'N', 'X', '27', ?, ?)",
                (ticket, n + 2, iso(START)),
            )
            if n == 0:
                db.execute("INSERT INTO absences VALUES ('S1', ?, 'inv1', ?)", (ticket, iso(START)))
                continue
            attempt_id = f"att{n}"
            db.execute(
                "INSERT INTO attempts (attempt_id, session_id, ticket, logged_in_at)"
                " VALUES (?, 'S1', ?, ?)",
                (attempt_id, ticket, iso(START)),
            )
            for seq in range(1, 4):
                journal.append_save(
                    db, attempt_id, seq, {f"q{seq}": [f"opt{(n + seq) % 4}"]}, START
                )
            answers = journal.current_responses(db, attempt_id)
            finals[ticket] = answers
            db.execute(
                "INSERT INTO submissions (attempt_id, submitted_at, how, final_seq, answers,"
                " receipt)"
                " VALUES (?, ?, 'candidate', 3, ?, 'r')",
                (attempt_id, iso(START), json.dumps(answers)),
            )
            db.execute(  # what finalise_attempt does beside the submission row
                "UPDATE attempts SET status = 'submitted', submitted_at = ? WHERE attempt_id = ?",
                (iso(START), attempt_id),
            )
        db.execute(
            "INSERT INTO violations (session_id, ticket, kind, text, recorded_by, recorded_at)"
            " VALUES ('S1', ?, 'impersonation', 'photo mismatch', 'inv1', ?)",
            (TICKETS[1], iso(START)),
        )
        audit.record(db, "inv1", "absence.marked", f"session:S1/ticket:{TICKETS[0]}", now=START)
    return finals


async def test_a_venue_exports_uploads_and_the_centre_reads_its_final_answers(
    central: Central, authority: Authority, authority_dir: Path, tmp_path: Path
) -> None:
    """Export from the tables, upload from the outbox: same answers at the centre, receipt kept."""
    venue_dir = tmp_path / "venue"
    venue = init_venue(venue_dir, "V1", now=START)
    await central.storage.add_venue(
        VenueRecord("V1", "V1", venue.sign_public, venue.wrap_public, iso(START))
    )
    db = open_venue_db(venue_dir)
    finals = sit_session(db)
    db.close()

    result = await asyncio.to_thread(
        export_session, venue_dir, None, central_key=authority_dir / "upload.pub"
    )
    assert (result.session_id, result.export_seq, result.attempts) == ("S1", 1, len(TICKETS) - 1)
    assert pending(venue_dir) == [result.path]
    delivered = await drain_outbox(
        venue_dir, central.url, authority.signing_public, clock=central.clock
    )
    assert [d.package_sha256 for d in delivered] == [result.package_sha256]
    assert pending(venue_dir) == [] and receipt_path(result.path).exists()
    assert result.path.exists()  # the venue keeps its copy

    stored = await central.storage.package_data(result.package_sha256)
    opened = open_response_package(
        stored,
        crypto.read_signing_public(load_venue(venue_dir).sign_public),
        authority.wrapping_key,
    )
    contents = opened.contents
    assert {a["ticket"]: a["final_answers"] for a in contents["attempts"]} == finals
    assert all(a["journal_chain_verified"] for a in contents["attempts"])
    # The answers travel once, as final_answers: the submission carries its receipt only.
    submissions = [a["submission"] for a in contents["attempts"]]
    assert submissions and all(s["receipt"] == "r" and "answers" not in s for s in submissions)
    assert [v["serious"] for v in contents["violations"]] == [True]
    assert [a["ticket"] for a in contents["absences"]] == [TICKETS[0]]
    assert contents["attempts"][0]["variant"]["session_id"] == "S1"
    package = await central.storage.get_package(result.package_sha256)
    assert package is not None and package.serious_violation
    # The journals and the audit log travel in the evidence document, not in the contents.
    evidence = opened.evidence()
    assert "journal" not in contents["attempts"][0] and "audit" not in contents
    assert [j["ticket"] for j in evidence["journals"]] == TICKETS[1:]
    assert evidence["audit"][0]["action"] == "absence.marked"
    assert check_journals({"attempts": evidence["journals"]}) == 3 * (len(TICKETS) - 1)
    assert broken_journals(evidence["journals"]) == (3 * (len(TICKETS) - 1), {})
    # The venue's audit log travels too, in the one chain format the centre verifies with.
    events = [{**e, "details": json.loads(e["details"])} for e in evidence["audit"]]
    assert {e["chain_format"] for e in events} == {CHAIN_FORMAT}
    assert verify_audit_records(events, "event_id", LEGACY_VENUE_FORMAT) == len(events)
    events[0]["actor"] = "someone-else"
    with pytest.raises(AuditBroken, match="audit event 1 does not match its hash"):
        verify_audit_records(events, "event_id", LEGACY_VENUE_FORMAT)
    opened_again = await read_session_packages(central.storage, authority, "S1", ["V1"])
    assert opened_again["V1"].contents == contents
    evidence["journals"][2]["journal"][1]["responses"] = {"q2": ["forged"]}
    with pytest.raises(JournalMismatch, match="does not chain"):
        check_journals({"attempts": evidence["journals"]})
    assert list(broken_journals(evidence["journals"])[1]) == [TICKETS[3]]

    db = open_venue_db(venue_dir)
    row = db.execute(
        "SELECT receipt, receipt_verified_at FROM exports WHERE export_id = 1"
    ).fetchone()
    db.close()
    assert json.loads(row[0])["receipt"]["package_sha256"] == result.package_sha256 and row[1]


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)  # the CLI, not the store, is tested
async def test_the_cli_exports_and_uploads(
    central: Central, authority_dir: Path, tmp_path: Path
) -> None:
    """`cbt venue export` then `cbt venue upload` deliver the package and print the log position."""
    venue_dir = tmp_path / "venue"
    venue = init_venue(venue_dir, "V1", now=START)
    await central.storage.add_venue(
        VenueRecord("V1", "V1", venue.sign_public, venue.wrap_public, iso(START))
    )
    db = open_venue_db(venue_dir)
    sit_session(db)
    db.close()

    async def cbt(*args: str) -> tuple[int, str, str]:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "server.cli", *args,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(process.communicate(), 120)
        return process.returncode or 0, out.decode(), err.decode()

    central.clock.set(datetime.now(UTC))  # the CLI signs its upload calls at the wall clock
    out_file = tmp_path / "s1.cbtresp"
    code, out, err = await cbt("venue", "export", str(venue_dir), "--out", str(out_file),
                               "--central-key", str(authority_dir / "upload.pub"))  # fmt: skip
    assert code == 0, err
    assert "exported session S1" in out and out_file.exists()
    code, out, err = await cbt("venue", "upload", str(venue_dir), "--central", central.url,
                               "--central-pub", str(authority_dir / "signing.pub"))  # fmt: skip
    assert code == 0, err
    assert "log position 1" in out
    code, out, err = await cbt("venue", "upload", str(venue_dir), "--central", central.url,
                               "--central-pub", str(authority_dir / "signing.pub"))  # fmt: skip
    assert code == 0 and "nothing to upload" in out
    code, _, err = await cbt("venue", "upload", str(venue_dir), "--central", central.url,
                             "--central-pub", str(tmp_path / "missing.pub"))  # fmt: skip
    assert code == 1 and err.startswith("cbt: error:") and len(err.strip().splitlines()) == 1
    code, _, err = await cbt("venue", "export", str(venue_dir), "--out",
                             str(tmp_path / "no-such-folder" / "s1.cbtresp"))  # fmt: skip
    assert code == 1 and err.startswith("cbt: error:") and len(err.strip().splitlines()) == 1
    assert "no-such-folder" in err and "outbox" in err
