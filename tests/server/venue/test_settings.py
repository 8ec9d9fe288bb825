"""Venue settings: every field documented, env vars and flags applied in order."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from server.errors import CbtError
from server.venue.settings import SETTING_DOCS, Settings


def test_every_setting_is_documented() -> None:
    """Each Settings field has an entry in SETTING_DOCS naming its env var, and no stale entry."""
    names = {f.name for f in dataclasses.fields(Settings)}
    assert names == set(SETTING_DOCS)
    for name, doc in SETTING_DOCS.items():
        assert f"CBT_{name.upper()}" in doc, name


def test_flags_beat_env_which_beats_defaults(tmp_path: Path) -> None:
    """An explicit value wins over CBT_*, which wins over the default."""
    env = {"CBT_PORT": "9001", "CBT_HOST": "127.0.0.2", "CBT_LOG_REQUESTS": "0"}
    s = Settings.from_env(env, venue_dir=tmp_path, port=9002)
    assert (s.port, s.host, s.log_requests, s.venue_dir) == (9002, "127.0.0.2", False, tmp_path)
    assert Settings.from_env({}, venue_dir=tmp_path).port == 8080


def test_malformed_env_value_names_the_variable(tmp_path: Path) -> None:
    """A non-number in CBT_PORT is an error naming CBT_PORT."""
    with pytest.raises(CbtError, match="CBT_PORT"):
        Settings.from_env({"CBT_PORT": "eighty"}, venue_dir=tmp_path)
