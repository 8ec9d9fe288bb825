"""Central settings: every one documented, read from the environment, flags first."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from server.central.settings import (
    CentralConfigError,
    CentralSettings,
    env_names,
    settings_from_env,
)
from server.errors import CbtError
from server.venue.settings import Settings
from tests.conftest import REPO_ROOT


def test_every_setting_is_documented() -> None:
    """Each CBT_CENTRAL_* variable appears in docs/central.md."""
    docs = (REPO_ROOT / "docs" / "central.md").read_text(encoding="utf-8")
    missing = [name for name in env_names() if f"`{name}`" not in docs]
    assert missing == []


def test_flags_win_over_the_environment(tmp_path: Path) -> None:
    """A CLI flag overrides the variable, which overrides the default."""
    env = {
        "CBT_CENTRAL_PORT": "9100",
        "CBT_CENTRAL_DATABASE": "postgresql://x/y",
        "CBT_CENTRAL_LOG_REQUESTS": "no",
    }
    settings = settings_from_env(tmp_path, env, port=9200, database=None)
    assert (settings.port, settings.database, settings.log_requests) == (
        9200,
        "postgresql://x/y",
        False,
    )
    assert settings_from_env(tmp_path, {}).database_url() == str(tmp_path / "central.db")


def test_a_bad_number_names_the_variable(tmp_path: Path) -> None:
    """A non-numeric port is refused naming the variable."""
    with pytest.raises(CentralConfigError, match="CBT_CENTRAL_PORT"):
        settings_from_env(tmp_path, {"CBT_CENTRAL_PORT": "eighty"})


def test_central_init_twice_is_one_line_error(tmp_path: Path, authority_dir: Path) -> None:
    """`cbt central init` on an existing central directory fails with one line and exit 1."""

    def cbt(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "server.cli", "central", *args],
                              capture_output=True, text=True, timeout=60)  # fmt: skip

    assert cbt("init", str(tmp_path / "c"), "--authority", str(authority_dir)).returncode == 0
    again = cbt("init", str(tmp_path / "c"), "--authority", str(authority_dir))
    assert again.returncode == 1
    assert again.stderr.startswith("cbt: error:") and "already a central directory" in again.stderr
    missing = cbt("serve", str(tmp_path / "nothing"))
    assert missing.returncode == 1 and "cbt central init" in missing.stderr


def test_an_unknown_time_zone_names_the_setting_on_both_servers(tmp_path: Path) -> None:
    """A time zone the pages could not show times in is refused at start, naming the variable
    that sets it on each server (the venue's CBT_TIME_ZONE, the centre's CBT_CENTRAL_TIME_ZONE)."""
    with pytest.raises(CbtError, match=r"'Mars/Olympus'.*CBT_CENTRAL_TIME_ZONE"):
        CentralSettings(directory=tmp_path, time_zone="Mars/Olympus")
    with pytest.raises(CbtError, match=r"'Mars/Olympus'.*\(CBT_TIME_ZONE\)"):
        Settings(venue_dir=tmp_path, time_zone="Mars/Olympus")
    assert CentralSettings(directory=tmp_path, time_zone="Europe/Berlin").time_zone
