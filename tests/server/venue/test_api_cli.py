"""`cbt venue import` and `cbt venue serve` on a real venue directory (and a real port)."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from server.cli import main
from tests.server.conftest import SESSION_ID, VenueTemplate


def venue_copy(template: VenueTemplate, tmp_path: Path) -> Path:
    directory = tmp_path / "venue"
    shutil.copytree(template.directory, directory)
    return directory


def test_import_pins_the_authority_key_and_stores_the_package(
    venue_template: VenueTemplate, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The first import with --authority-pub pins the key; the package is verified and stored."""
    directory = venue_copy(venue_template, tmp_path)
    pinned = directory / "keys" / "authority-sign.pub"
    key_text = pinned.read_text()
    pinned.unlink()
    assert main(["venue", "import", str(directory), str(venue_template.package_dir)]) == 1
    assert "authority-pub" in capsys.readouterr().err
    key_file = tmp_path / "authority.pub"
    key_file.write_text(key_text)
    argv = ["venue", "import", str(directory), str(venue_template.package_dir)]
    assert main([*argv, "--authority-pub", str(key_file)]) == 0
    assert f"for session {SESSION_ID} verified and stored" in capsys.readouterr().out
    assert len(list((directory / "packages").glob("*/fragment-*.cbtf"))) == 5


def test_import_refuses_a_package_for_another_key(
    venue_template: VenueTemplate, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A different authority key than the pinned one is refused with one line on stderr."""
    directory = venue_copy(venue_template, tmp_path)
    other = tmp_path / "other.pub"
    other.write_text("A" * 43 + "=\n")
    argv = ["venue", "import", str(directory), str(venue_template.package_dir)]
    assert main([*argv, "--authority-pub", str(other)]) == 1
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
