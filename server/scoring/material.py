"""The central-only material scoring needs, and the rule that keys wait for the session's end.

`paperpack pack` leaves, per venue, under `AUTH/sessions/<session>/<venue>/`:
`answer-keys.sealed` (the keyed paper), `secrets.sealed` (release and variant secrets) and
`pack-record.json` (the unlock window, package id). Both sealed files are wrapped to the
authority's X25519 key; this module opens them, checks they belong together, and refuses to
hand out the keys before the session has ended (art. 14, 35(2)).

When the keys go to scoring (art. 35(2)): as soon as every venue of the session has sent a
*final* end-of-session report (inside its export: `server.venue.end_report`), at the latest
of their actual ends, however early that is. Until then each venue without a final report has
a backstop: the latest possible end given what is on record, the unlock window's close plus the
paper's duration (`not_after + duration`), plus the longest start delay the centre approved
for that venue (`paperpack approve-delay` keeps each in `delay-approvals.jsonl`), moved later,
never earlier, by what the venue reported: a partial export's latest expected end (a grant
running past), or an older export's `session.ended_at`.
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


APPROVALS_FILE = "delay-approvals.jsonl"  # AUTH/sessions/<s>/<v>/: each approve-delay issued


@dataclass(frozen=True)
class VenueEnd:
    """What a venue's newest export says about the session's end there."""

    final: bool  # its end-of-session report is final: no attempt open, the session ended
    at: datetime | None  # final: when it ended; else the latest end it expects, if any


def approved_delay_minutes(authority: Authority, session_id: str, venue_id: str) -> int:
    """The longest start delay the centre approved for this venue (0 when none)."""
    path = authority.central_dir(session_id, venue_id) / APPROVALS_FILE
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return 0
    minutes = [int(json.loads(line)["minutes"]) for line in lines if line.strip()]
    return max(minutes, default=0)


def venue_end(
    authority: Authority, material: VenueMaterial, session_id: str, reported: VenueEnd | None
) -> tuple[datetime, bool]:
    """When this venue's exam is over for scoring, and whether it said so itself."""
    if reported is not None and reported.final and reported.at is not None:
        return reported.at, True
    delay = approved_delay_minutes(authority, session_id, material.venue_id)
    backstop = material.ends_at + timedelta(minutes=delay)
    if reported is not None and reported.at is not None:
        backstop = max(backstop, reported.at)
    return backstop, False


def release_keys(
    authority: Authority,
    session_id: str,
    now: datetime,
    venue_ends: dict[str, VenueEnd] | None = None,
) -> dict[str, VenueMaterial]:
    """Every venue's material once the whole session has ended (every venue's final report,
    else its backstop); else KeysNotReleased naming what is awaited."""
    venues = packed_venues(authority, session_id)
    if not venues:
        raise MaterialMissing(f"session {session_id} has no packed venue at this authority")
    material = {v: open_material(authority, session_id, v) for v in venues}
    ends = {
        v: venue_end(authority, m, session_id, (venue_ends or {}).get(v))
        for v, m in material.items()
    }
    ends_at = max(at for at, _ in ends.values())
    if now < ends_at:
        awaited = sorted(v for v, (_, final) in ends.items() if not final)
        raise KeysNotReleased(
            f"session {session_id} ends at {ends_at.isoformat()} at the latest; the answer keys"
            f" are released to scoring only after the end (now {now.isoformat()}): waiting for"
            f" the final end-of-session report of {', '.join(awaited)}; score again when they"
            " have uploaded, or after that time"
        )
    return material
