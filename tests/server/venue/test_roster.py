"""Roster import: every problem named by row and column, GB 11643 checked, nothing half-stored."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlite_utils import Database

from server.errors import CbtError
from server.store import transaction
from server.venue.roster import (
    RosterInvalid,
    correct_candidate,
    gb11643_check_digit,
    import_roster_file,
    parse_roster,
    resident_id_problem,
)
from tests.conftest import EXAMPLES

NOW = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
HEADER = "ticket,name,id_number,subject,photo\n"
GOOD_ID = "11010519491231002X"  # the GB 11643 standard's own worked example


def roster(*lines: str) -> bytes:
    return (HEADER + "".join(line + "\n" for line in lines)).encode()


def problems_of(data: bytes, subject: str | None = "27") -> list[str]:
    with pytest.raises(RosterInvalid) as err:
        parse_roster(data, "r.csv", subject)
    return err.value.problems


def test_the_example_roster_is_valid() -> None:
    """examples/roster.csv: 30 candidates, every ID number passes GB 11643."""
    candidates = parse_roster((EXAMPLES / "roster.csv").read_bytes(), "roster.csv", "27")
    assert len(candidates) == 30
    assert len({c.ticket for c in candidates}) == 30


def test_the_standard_worked_example_has_check_digit_x() -> None:
    """GB 11643's example 11010519491231002X computes to X."""
    assert gb11643_check_digit(GOOD_ID[:17]) == "X"
    assert resident_id_problem(GOOD_ID) is None
    assert resident_id_problem(GOOD_ID.lower()) is None


@settings(max_examples=100)
@given(
    st.from_regex(
        r"[1-6][0-9]{5}(19[5-9][0-9]|200[0-5])(0[1-9]|1[0-2])(0[1-9]|1[0-9]|2[0-8])[0-9]{3}",
        fullmatch=True,
    )
)
def test_one_changed_digit_always_breaks_the_check(first17: str) -> None:
    """A valid number with any single digit changed fails the check (MOD 11-2 catches it)."""
    good = first17 + gb11643_check_digit(first17)
    assert resident_id_problem(good) is None
    for pos in range(17):
        digit = str((int(good[pos]) + 1) % 10)
        changed = good[:pos] + digit + good[pos + 1 :]
        assert resident_id_problem(changed) is not None


def test_a_bom_is_accepted() -> None:
    """A UTF-8 file saved with a byte-order mark (Excel's CSV UTF-8) parses."""
    data = b"\xef\xbb\xbf" + roster(f"T1,张三,{GOOD_ID},27,")
    assert [c.name for c in parse_roster(data, "r.csv", "27")] == ["张三"]


def test_a_missing_column_is_named() -> None:
    """A header without id_number is reported as a missing column at row 1."""
    assert problems_of(b"ticket,name,subject\nT1,A,27\n") == [
        "row 1: missing column 'id_number' (the header has: ticket, name, subject)"
    ]


def test_every_row_problem_is_named_by_row_and_column() -> None:
    """Empty ticket, duplicate, bad check digit, wrong subject: all reported together."""
    bad_check = GOOD_ID[:17] + "1"
    found = problems_of(
        roster(
            f"T1,张三,{GOOD_ID},27,",
            f",李四,{GOOD_ID},27,",
            f"T1,王五,{GOOD_ID},27,",
            f"T4,赵六,{bad_check},27,",
            f"T5,钱七,{GOOD_ID},28,",
            f"T6,,{GOOD_ID},27,../etc/passwd",
        )
    )
    assert found == [
        "row 3, column ticket: is empty",
        "row 4, column ticket: T1 is a duplicate of row 2",
        "row 5, column id_number: has a wrong check digit (GB 11643): check the number "
        "against the ID card",
        "row 6, column subject: '28' but this session is for '27'",
        "row 7, column name: is empty",
        "row 7, column photo: must be a plain file name (letters, digits, '_', '.', '-')",
    ]
    assert not any(bad_check in p or GOOD_ID in p for p in found)


def test_other_id_types_are_allowed_through_id_type() -> None:
    """A passport number passes with id_type=passport; an unknown id_type is named."""
    data = (
        b"ticket,name,id_number,subject,id_type\nT1,Anna Li,E12345678,27,passport\n"
        b"T2,Bo,E1234,27,visa\n"
    )
    assert problems_of(data) == [
        "row 3, column id_type: 'visa' is not one of resident_id, passport, hk_macao_permit, "
        "taiwan_permit, other"
    ]


def test_a_file_that_is_not_utf8_is_refused() -> None:
    """GBK bytes are refused with the advice to save as UTF-8."""
    found = problems_of(roster(f"T1,张三,{GOOD_ID},27,").decode().encode("gbk"))
    assert "not UTF-8" in found[0]


def test_import_stores_and_audits_without_logging_id_numbers(
    venue_db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """A good import stores every row and one audit event; no ID number reaches the log."""
    caplog.set_level(logging.DEBUG)
    with transaction(venue_db):
        n = import_roster_file(
            venue_db, EXAMPLES / "roster.csv", "2026H2-27-AM", actor="cli:t", now=NOW, subject="27"
        )
    assert n == 30
    assert venue_db.execute("SELECT count(*) FROM candidates").fetchone()[0] == 30
    action = venue_db.execute("SELECT action, details FROM audit_events").fetchone()
    assert action[0] == "roster.imported"
    ids = [c.id_number for c in parse_roster((EXAMPLES / "roster.csv").read_bytes(), "r")]
    assert not any(i in caplog.text or i in action[1] for i in ids)
    stored = venue_db.execute("SELECT id_number, id_hash, id_masked FROM candidates").fetchall()
    assert {r[0] for r in stored} == {""}  # only the keyed hash and the mask (F12)
    assert {r[2] for r in stored} == {i[:3] + "*" * 11 + i[-4:] for i in ids}


def test_a_bad_roster_stores_nothing(venue_db: Database, tmp_path: Path) -> None:
    """One bad row means no row is stored."""
    path = tmp_path / "r.csv"
    path.write_bytes(roster(f"T1,张三,{GOOD_ID},27,", f"T2,李四,{GOOD_ID[:17]}1,27,"))
    with pytest.raises(RosterInvalid), transaction(venue_db):
        import_roster_file(venue_db, path, "S1", actor="cli:t", now=NOW, subject="27")
    assert venue_db.execute("SELECT count(*) FROM candidates").fetchone()[0] == 0


def test_an_unknown_session_needs_a_subject(venue_db: Database) -> None:
    """Without an imported package the subject must be given."""
    with pytest.raises(CbtError, match="pass --subject"), transaction(venue_db):
        import_roster_file(venue_db, EXAMPLES / "roster.csv", "S9", actor="cli:t", now=NOW)


def test_a_correction_is_audited_and_name_and_id_never_both_change(venue_db: Database) -> None:
    """Correcting the name is audited (without the value); then the ID number is refused."""
    with transaction(venue_db):
        import_roster_file(
            venue_db, EXAMPLES / "roster.csv", "S1", actor="cli:t", now=NOW, subject="27"
        )
    ticket = "2627BJ0010101"
    with transaction(venue_db):
        correct_candidate(
            venue_db, "S1", ticket, "name", "唐皓然", "typo; ID card seen", actor="chief", now=NOW
        )
    name = venue_db.execute("SELECT name FROM candidates WHERE ticket = ?", (ticket,)).fetchone()
    assert name == ("唐皓然",)
    details = venue_db.execute(
        "SELECT details FROM audit_events WHERE action = 'roster.corrected'"
    ).fetchone()[0]
    assert "唐皓然" not in details and "typo" in details
    with pytest.raises(CbtError, match="never both"):
        correct_candidate(venue_db, "S1", ticket, "id_number", GOOD_ID, "x", actor="c", now=NOW)
    with pytest.raises(CbtError, match="wrong check digit"):
        correct_candidate(
            venue_db,
            "S1",
            "2627BJ0010102",
            "id_number",
            GOOD_ID[:17] + "1",
            "x",
            actor="c",
            now=NOW,
        )
    with pytest.raises(CbtError, match="needs a reason"):
        correct_candidate(venue_db, "S1", ticket, "name", "X", " ", actor="c", now=NOW)
