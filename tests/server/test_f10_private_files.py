"""F10: venue and centre files are 0600 in 0700 folders, whatever the account's umask.

The full path (serving, saves, backups, export, upload) runs through the real demo in
tests/test_demo.py::test_f10_venue_and_centre_files_are_private; here the real `init`
commands, and a workspace left world-readable by an older build, tightened when opened.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from server.central.app import create_app
from server.central.settings import CentralSettings
from server.venue.workspace import init_venue, open_venue_store
from tests.conftest import REPO_ROOT


def not_private(directory: Path) -> list[str]:
    """Every path under `directory` (itself included) that is not a 0600 file or 0700 folder."""
    loose = []
    for path in [directory, *directory.rglob("*")]:
        want = 0o700 if path.is_dir() else 0o600
        if path.stat().st_mode & 0o777 != want:
            loose.append(f"{oct(path.stat().st_mode & 0o777)} {path.relative_to(directory)}")
    return loose


def loosen(directory: Path) -> None:
    """What an older build (umask 022) left: 0644 files in 0755 folders."""
    for path in [directory, *directory.rglob("*")]:
        os.chmod(path, 0o755 if path.is_dir() else 0o644)


@pytest.fixture
def loose_umask() -> Iterator[None]:
    old = os.umask(0o022)  # the usual umask: what cbt must not rely on
    yield
    os.umask(old)


def run(prog: str, *args: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", prog, *args], cwd=REPO_ROOT, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_f10_venue_files_are_private_after_init(tmp_path: Path, loose_umask: None) -> None:
    venue = tmp_path / "venue"
    run("server.cli", "venue", "init", str(venue), "--venue-id", "F10-01")
    assert (venue / "venue.db").exists() and (venue / "keys" / "venue-sign.pem").exists()
    assert not_private(venue) == []


def test_f10_centre_and_authority_files_are_private_after_init(
    tmp_path: Path, loose_umask: None
) -> None:
    authority, central = tmp_path / "authority", tmp_path / "central"
    run("paperpack.cli", "authority", "init", str(authority))
    run("server.cli", "central", "init", str(central), "--authority", str(authority))
    assert not_private(authority) == []
    assert not_private(central) == []


async def test_f10_a_world_readable_workspace_is_tightened_when_served(
    tmp_path: Path, loose_umask: None, caplog: pytest.LogCaptureFixture
) -> None:
    venue = init_venue(tmp_path / "venue", "F10-02")
    loosen(venue.directory)
    assert not_private(venue.directory) != []
    with caplog.at_level(logging.WARNING, logger="server.private"):
        store = await open_venue_store(venue.directory)
    try:
        assert not_private(venue.directory) == []
    finally:
        await store.close()
    assert "now 0600 files in 0700 folders" in caplog.text


async def test_f10_a_world_readable_centre_is_tightened_when_served(
    tmp_path: Path, loose_umask: None, aiohttp_client: Any
) -> None:
    from paperpack.authority import init_authority
    from server.central.settings import init_central

    init_authority(tmp_path / "authority")
    central = tmp_path / "central"
    init_central(central, tmp_path / "authority")
    (central / "results").mkdir()
    (central / "results" / "report.html").write_text("scores")
    loosen(central)
    app = create_app(CentralSettings(directory=central, log_requests=False))
    client = await aiohttp_client(app)
    try:
        assert (central / "central.db").exists()
        assert not_private(central) == []
    finally:
        await client.close()
