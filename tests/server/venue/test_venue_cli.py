"""`cbt venue init / staff / roster / seats`: the venue set-up commands end to end."""

from __future__ import annotations

import io
import sqlite3
import stat
from pathlib import Path

import pytest

from paperpack import crypto
from server.cli import main as cbt
from tests.conftest import EXAMPLES

SESSION = "2026H2-27-AM"


@pytest.fixture
def venue_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    directory = tmp_path / "venue"
    assert cbt(["venue", "init", str(directory), "--venue-id", "BJ-001"]) == 0
    capsys.readouterr()
    return directory


def test_init_prints_the_public_keys_and_protects_the_private_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """init prints parseable X25519/Ed25519 public keys; private keys are mode 0600."""
    directory = tmp_path / "v"
    assert cbt(["venue", "init", str(directory), "--venue-id", "BJ-001", "--name", "北京"]) == 0
    out = capsys.readouterr().out
    wrap = out.split("X25519 public key (put it in the session file for packing): ")[1].split()[0]
    sign = out.split("Ed25519 public key (verifies this venue's uploads):")[1].split()[0]
    crypto.read_wrapping_public(wrap)
    crypto.read_signing_public(sign)
    for name in ("venue-sign.pem", "venue-wrap.pem"):
        assert stat.S_IMODE((directory / "keys" / name).stat().st_mode) == 0o600
    assert (directory / "venue.db").is_file() and (directory / "backup").is_dir()


def test_init_refuses_an_existing_venue(
    venue_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A second init of the same directory exits 1 with one line and changes nothing."""
    before = (venue_dir / "venue.json").read_text()
    assert cbt(["venue", "init", str(venue_dir), "--venue-id", "X"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("cbt: error:") and "already a venue directory" in err
    assert (venue_dir / "venue.json").read_text() == before


def test_staff_add_from_a_file_or_stdin(
    venue_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Passwords come from --password-file or a line on stdin, and are stored as argon2id."""
    pw = tmp_path / "pw"
    pw.write_text("a-long-password\n")
    assert (
        cbt(
            [
                "venue",
                "staff",
                "add",
                str(venue_dir),
                "--login",
                "chief",
                "--role",
                "chief_examiner",
                "--name",
                "王主考",
                "--password-file",
                str(pw),
            ]
        )
        == 0
    )
    monkeypatch.setattr("sys.stdin", io.StringIO("another-long-one\n"))
    assert (
        cbt(
            [
                "venue",
                "staff",
                "add",
                str(venue_dir),
                "--login",
                "inv1",
                "--role",
                "invigilator",
                "--name",
                "李监考",
            ]
        )
        == 0
    )
    conn = sqlite3.connect(venue_dir / "venue.db")
    hashes = [r[0] for r in conn.execute("SELECT password_hash FROM staff ORDER BY login")]
    conn.close()
    assert all(h.startswith("$argon2id$") for h in hashes)


def test_staff_add_refuses_an_unknown_role(venue_dir: Path) -> None:
    """An unknown role is a usage error (exit 2)."""
    with pytest.raises(SystemExit) as exit_info:
        cbt(
            [
                "venue",
                "staff",
                "add",
                str(venue_dir),
                "--login",
                "x",
                "--role",
                "boss",
                "--name",
                "X",
            ]
        )
    assert exit_info.value.code == 2


def test_roster_seats_and_verify(venue_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Import the example roster, draw seats, verify; a hand-edited seat fails verify."""
    d = str(venue_dir)
    assert (
        cbt(
            [
                "venue",
                "roster",
                "import",
                d,
                str(EXAMPLES / "roster.csv"),
                "--session",
                SESSION,
                "--subject",
                "27",
            ]
        )
        == 0
    )
    assert (
        cbt(["venue", "seats", d, "--session", SESSION, "--rooms", str(EXAMPLES / "rooms.yaml")])
        == 0
    )
    out = capsys.readouterr().out
    assert "30 candidates imported" in out and out.count(" seat ") == 30
    assert cbt(["venue", "seats", d, "--session", SESSION, "--verify"]) == 0
    assert "verified: 30 candidates, 0 audited move(s)" in capsys.readouterr().out
    conn = sqlite3.connect(venue_dir / "venue.db")
    conn.execute("UPDATE seats SET seat_no = 19, row_no = 4, column_no = 4 WHERE rowid = 1")
    conn.commit()
    conn.close()
    assert cbt(["venue", "seats", d, "--session", SESSION, "--verify"]) == 1
    assert "an unrecorded change" in capsys.readouterr().err


def test_a_bad_roster_names_row_and_column(
    venue_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A roster with a bad check digit exits 1 naming the row and column."""
    bad = tmp_path / "r.csv"
    bad.write_text("ticket,name,id_number,subject\nT1,张三,110105194912310021,27\n")
    assert (
        cbt(
            [
                "venue",
                "roster",
                "import",
                str(venue_dir),
                str(bad),
                "--session",
                "S1",
                "--subject",
                "27",
            ]
        )
        == 1
    )
    assert "row 2, column id_number: has a wrong check digit" in capsys.readouterr().err


def test_staff_disable_ends_the_account(
    venue_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A disabled account is marked inactive and audited; disabling it twice is an error."""
    pw = tmp_path / "pw"
    pw.write_text("a-long-password\n")
    d = str(venue_dir)
    assert cbt(["venue", "staff", "add", d, "--login", "inv9", "--role", "invigilator",
                "--name", "X", "--password-file", str(pw)]) == 0  # fmt: skip
    assert cbt(["venue", "staff", "disable", d, "--login", "inv9", "--reason", "left"]) == 0
    capsys.readouterr()
    assert cbt(["venue", "staff", "list", d]) == 0
    assert "(disabled)" in capsys.readouterr().out
    assert cbt(["venue", "staff", "disable", d, "--login", "inv9", "--reason", "again"]) == 1
    assert "already disabled" in capsys.readouterr().err


def test_roster_correct_changes_one_field(
    venue_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`roster correct` fixes a name; the ID number of the same candidate is then refused."""
    d = str(venue_dir)
    assert cbt(["venue", "roster", "import", d, str(EXAMPLES / "roster.csv"),
                "--session", SESSION, "--subject", "27"]) == 0  # fmt: skip
    fix = ["venue", "roster", "correct", d, "--session", SESSION, "--ticket", "2627BJ0010101"]
    assert cbt([*fix, "--name", "唐皓然", "--reason", "typo"]) == 0
    assert cbt([*fix, "--id-number", "11010519491231002X", "--reason", "x"]) == 1
    assert "never both changed" in capsys.readouterr().err
