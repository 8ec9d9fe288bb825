"""`cbt venue import` and `cbt venue serve` on a real venue directory (and a real port)."""

from __future__ import annotations

import hashlib
import json
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from server.cli import main
from tests.server.conftest import PASSWORD, SESSION_ID, VenueTemplate


def venue_copy(template: VenueTemplate, tmp_path: Path) -> Path:
    directory = tmp_path / "venue"
    shutil.copytree(template.directory, directory)
    return directory


def two_people(tmp_path: Path, login: str = "admin", confirm: str = "chief") -> list[str]:
    """The import's two logins (art. 23(4)) with their passwords in a file each."""
    (tmp_path / "pw").write_text(PASSWORD + "\n")
    pw = str(tmp_path / "pw")
    return ["--login", login, "--confirm-login", confirm, "--password-file", pw,
            "--confirm-password-file", pw]  # fmt: skip


def test_import_pins_the_authority_key_and_stores_the_package(
    venue_template: VenueTemplate, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The first import with --authority-pub pins the key; the package is verified and stored,
    in force under two logins and recorded with its hash (art. 23(4))."""
    directory = venue_copy(venue_template, tmp_path)
    pinned = directory / "keys" / "authority-sign.pub"
    key_text = pinned.read_text()
    pinned.unlink()
    argv = ["venue", "import", str(directory), str(venue_template.package_dir)]
    assert main([*argv, *two_people(tmp_path)]) == 1
    assert "authority-pub" in capsys.readouterr().err
    key_file = tmp_path / "authority.pub"
    key_file.write_text(key_text)
    assert main([*argv, *two_people(tmp_path), "--authority-pub", str(key_file)]) == 0
    out = capsys.readouterr().out
    assert f"for session {SESSION_ID} verified and stored" in out
    assert "imported by admin, confirmed by chief" in out
    assert len(list((directory / "packages").glob("*/fragment-*.cbtf"))) == 5
    digest = hashlib.sha256((venue_template.package_dir / "manifest.json").read_bytes()).hexdigest()
    conn = sqlite3.connect(directory / "venue.db")
    row = conn.execute(
        "SELECT details FROM audit_events WHERE action = 'package.imported'"
    ).fetchone()
    conn.close()
    details = json.loads(row[0])
    assert (details["manifest_sha256"], details["imported_by"], details["confirmed_by"]) == (
        digest,
        "admin",
        "chief",
    )


def test_art_23_4_the_cli_import_takes_two_people(
    venue_template: VenueTemplate, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One login twice, a missing second login or a wrong password: nothing is imported."""
    directory = venue_copy(venue_template, tmp_path)
    argv = ["venue", "import", str(directory), str(venue_template.package_dir)]
    assert main(argv) == 1
    assert "takes two people" in capsys.readouterr().err
    assert main([*argv, *two_people(tmp_path, confirm="admin")]) == 1
    assert "another staff member confirms it" in capsys.readouterr().err
    assert main([*argv, *two_people(tmp_path, login="chief", confirm="inv1")]) == 1
    assert "a system administrator imports" in capsys.readouterr().err
    (tmp_path / "wrong").write_text("not the password\n")
    bad = [*two_people(tmp_path)[:-1], str(tmp_path / "wrong")]
    assert main([*argv, *bad]) == 1
    assert "wrong login or password for chief" in capsys.readouterr().err
    conn = sqlite3.connect(directory / "venue.db")
    assert conn.execute("SELECT COUNT(*) FROM packages").fetchone()[0] == 0
    conn.close()


def test_art_21_3_a_practice_choice_at_import_is_refused(
    venue_template: VenueTemplate, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--practice` is not the importer's to choose: the signed manifest says it."""
    directory = venue_copy(venue_template, tmp_path)
    argv = ["venue", "import", str(directory), str(venue_template.package_dir), "--practice"]
    assert main([*argv, *two_people(tmp_path)]) == 1
    assert "read from its signed manifest" in capsys.readouterr().err


def test_import_refuses_a_package_for_another_key(
    venue_template: VenueTemplate, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A different authority key than the pinned one is refused with one line on stderr."""
    directory = venue_copy(venue_template, tmp_path)
    other = tmp_path / "other.pub"
    other.write_text("A" * 43 + "=\n")
    argv = ["venue", "import", str(directory), str(venue_template.package_dir)]
    assert main([*argv, *two_people(tmp_path), "--authority-pub", str(other)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("cbt: error: ") and err.count("\n") == 1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_serve_answers_on_a_real_port(venue_template: VenueTemplate, tmp_path: Path) -> None:
    """`cbt venue serve DIR --port P` serves /ping and the OpenAPI document until stopped."""
    directory = venue_copy(venue_template, tmp_path)
    port = free_port()
    command = [sys.executable, "-m", "server.cli", "venue", "serve", str(directory)]
    log = tmp_path / "serve.log"
    with (
        log.open("w") as out,
        subprocess.Popen(
            [*command, "--port", str(port)], stdout=out, stderr=subprocess.STDOUT
        ) as proc,
    ):
        try:
            wait_for_ping(port, log)
            url = f"http://127.0.0.1:{port}/api/v1/openapi.json"
            with urllib.request.urlopen(url, timeout=5) as r:
                assert "/api/v1/attempt/responses" in json.load(r)["paths"]
        finally:
            proc.terminate()
            proc.wait(timeout=15)
    assert "serving on" in log.read_text()


def wait_for_ping(port: int, log: Path) -> None:
    deadline = time.monotonic() + 60  # a busy CI machine can be slow to start Python
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2) as r:
                assert json.load(r) == {"ok": True}
                return
        except OSError:
            assert time.monotonic() < deadline, f"no answer in 60 s: {log.read_text()}"
            time.sleep(0.2)
