"""The central-only material scoring needs, and the rule that keys wait for the session's end.

`paperpack pack` leaves, per venue, under `AUTH/sessions/<session>/<venue>/`:
`answer-keys.sealed` (the keyed paper), `secrets.sealed` (release and variant secrets) and
`pack-record.json` (the unlock window, package id). Both sealed files are wrapped to the
authority's X25519 key; this module opens them, checks they belong together, and refuses to
hand out the keys before the session has ended (art. 14, 35(2)).

The session's end, from the session record the pack left: the unlock window closes at
`window.not_after`, so no exam of that package can start later; it ends at the latest
`not_after + duration`. Lost time granted at a venue may run past that; a venue's own record of
when it ended (`session.ended_at` in its response package) moves the end later, never earlier.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from paperpack.authority import Authority
from paperpack.canonical import canonical_hash
from paperpack.crypto import CryptoError, unwrap, zeroise
from paperpack.model import Paper, paper_from_dict
from paperpack.pack import central_context
from server.errors import CbtError


class ScoringError(CbtError):
    """Scoring was refused or cannot go on; the subclass and message say why and what to do."""


class MaterialMissing(ScoringError):
    """The authority holds no (or unreadable) central-only material for a session or venue."""


class KeysNotReleased(ScoringError):
    """Scoring was asked for before the session's end: the answer keys stay sealed."""


@dataclass(frozen=True)
class VenueMaterial:
    """One venue's central-only material, opened."""

    venue_id: str
    package_id: str  # the venue package these secrets belong to
    paper: Paper  # with keys and pass mark
    paper_sha256: str  # canonical hash of the keyed paper as packed
    variant_secret: bytes
    ends_at: datetime  # the latest end of an exam unlocked inside the window


def packed_venues(authority: Authority, session_id: str) -> list[str]:
    """Venue ids the session was packed for at this authority, sorted."""
    folder = authority.directory / "sessions" / session_id
    if not folder.is_dir():
        raise MaterialMissing(
            f"session {session_id} was never packed with the authority at "
            f"{authority.directory}: check the session id and the central directory's authority"
        )
    return sorted(p.name for p in folder.iterdir() if (p / "pack-record.json").is_file())


def _open_sealed(
    authority: Authority, path: Path, what: str, session_id: str, venue: str
) -> dict[str, Any]:
    try:
        blob = path.read_bytes()
    except OSError as exc:
        raise MaterialMissing(
            f"cannot read {path}: {exc.strerror}; the pack output of {session_id}/{venue} is "
            "incomplete: restore the authority directory from its backup"
        ) from None
    try:
        plain = unwrap(
            authority.wrapping_key,
            blob,
            context=central_context(what, session_id, venue),
            legacy=True,  # sealed files carry no version of their own outside the wrap
        )
    except CryptoError as exc:
        raise MaterialMissing(f"{path} does not open with this authority's key: {exc}") from None
    try:
        return dict(json.loads(bytes(plain)))
    finally:
        zeroise(plain)


def session_end(record: dict[str, Any], paper: Paper) -> datetime:
    """The latest end of an exam of this package: window close plus the paper's duration."""
    not_after = datetime.fromisoformat(record["window"]["not_after"])
    return not_after + timedelta(minutes=paper.duration_minutes)


def open_material(authority: Authority, session_id: str, venue_id: str) -> VenueMaterial:
    """Open one venue's keys and variant secret (no time check here: see `release_keys`)."""
    central = authority.central_dir(session_id, venue_id)
    try:
        record = json.loads((central / "pack-record.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise MaterialMissing(
            f"no pack record for venue {venue_id} in session {session_id} under "
            f"{authority.directory}: was the venue packed by this authority?"
        ) from None
    keys_doc = _open_sealed(
        authority, central / "answer-keys.sealed", "answer-keys", session_id, venue_id
    )
    secrets = _open_sealed(authority, central / "secrets.sealed", "secrets", session_id, venue_id)
    if not keys_doc.get("package_id") == secrets.get("package_id") == record.get("package_id"):
        raise MaterialMissing(
            f"the answer keys, secrets and pack record of {session_id}/{venue_id} name different"
            " packages: the directory mixes two packs; restore it from the backup"
        )
    if canonical_hash(keys_doc["paper"]) != keys_doc["paper_sha256"]:
        raise MaterialMissing(f"the answer-key record of {session_id}/{venue_id} is inconsistent")
    paper = paper_from_dict(keys_doc["paper"])
    return VenueMaterial(
        venue_id=venue_id,
        package_id=str(record["package_id"]),
        paper=paper,
        paper_sha256=str(keys_doc["paper_sha256"]),
        variant_secret=base64.b64decode(secrets["variant_secret"]),
        ends_at=session_end(record, paper),
    )


def release_keys(
    authority: Authority,
    session_id: str,
    now: datetime,
    venue_ended: dict[str, datetime] | None = None,
) -> dict[str, VenueMaterial]:
    """Every venue's material, but only once the whole session has ended; else KeysNotReleased."""
    venues = packed_venues(authority, session_id)
    if not venues:
        raise MaterialMissing(f"session {session_id} has no packed venue at this authority")
    material = {v: open_material(authority, session_id, v) for v in venues}
    ends = [m.ends_at for m in material.values()] + list((venue_ended or {}).values())
    ends_at = max(ends)
    if now < ends_at:
        raise KeysNotReleased(
            f"session {session_id} ends at {ends_at.isoformat()}; the answer keys are released "
            f"to scoring only after the end (now {now.isoformat()}): score again after that time"
        )
    return material
