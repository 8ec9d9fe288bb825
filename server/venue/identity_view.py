"""What the room monitor shows for the identity check (art. 30): each seat's masked ID
number, whether the roster has a photo, and the latest check (who, when, verified or refused).
The actions themselves are `server.venue.identity`."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlite_utils import Database


def identity_states(db: Database, sessions: list[str]) -> dict[tuple[str, str], dict[str, Any]]:
    """(session, ticket) -> the latest identity check, the masked ID number and the rule."""
    chosen = json.dumps(sessions)
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for session_id, ticket, masked in db.execute(
        "SELECT session_id, ticket, id_masked FROM candidates"  # masked at import (F12)
        " WHERE session_id IN (SELECT value FROM json_each(?))",
        [chosen],
    ):
        found[(session_id, ticket)] = {"id_masked": masked}
    for session_id, ticket, outcome, by, at in db.execute(
        "SELECT session_id, ticket, outcome, checked_by, checked_at FROM identity_checks"
        " WHERE check_id IN (SELECT MAX(check_id) FROM identity_checks"
        " WHERE session_id IN (SELECT value FROM json_each(?)) GROUP BY session_id, ticket)",
        [chosen],
    ):
        found.setdefault((session_id, ticket), {}).update(
            {"outcome": outcome, "checked_by": by, "checked_at": at}
        )
    return found


def identity_view(
    row: Mapping[str, Any], state: Mapping[str, Any] | None, photos_dir: Path | None = None
) -> dict[str, Any]:
    """The identity fields of one seat on the monitor; `has_photo` when the roster names a
    photo and it was imported into `photos_dir` (`server.venue.photos`)."""
    state = state or {}
    outcome = state.get("outcome")
    if row["identity_checked_by"]:
        outcome = "verified"
    return {
        "id_masked": state.get("id_masked", ""),
        "has_photo": bool(row["photo"])
        and (photos_dir is None or (photos_dir / row["session_id"] / row["photo"]).is_file()),
        "identity": outcome or "pending",
        "identity_checked_by": state.get("checked_by") if outcome else None,
        "identity_checked_at": state.get("checked_at") if outcome else None,
    }
