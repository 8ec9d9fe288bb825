"""Reading a session's response packages out of the central store for scoring.

Per venue the newest accepted export counts (the store refuses older replays, and a venue
re-exports the whole session each time). Each package is verified and decrypted again with
the venue's registered key and the centre's key (`server.protocol.response_package`):
scoring never trusts bytes it has not checked itself. What a package holds is documented in
docs/scoring.md.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from paperpack import crypto
from paperpack.authority import Authority
from server.central.storage import CentralStorage, StoredPackage
from server.protocol import response_package
from server.scoring.material import ScoringError


class PackagesMissing(ScoringError):
    """A venue of the session has no accepted response package (yet)."""


@dataclass(frozen=True)
class VenuePackage:
    """One venue's newest accepted response package, verified and opened."""

    venue_id: str
    package_sha256: str
    export_seq: int
    received_at: str
    contents: dict[str, Any]
    # The opened package, for its evidence (journals), decoded only when they are checked.
    opened: response_package.OpenedPackage | None = None


def newest_per_venue(stored: list[StoredPackage]) -> dict[str, StoredPackage]:
    """The accepted package with the highest export number of each venue."""
    newest: dict[str, StoredPackage] = {}
    for package in stored:
        if package.deleted_at is not None:
            continue
        seen = newest.get(package.venue_id)
        if seen is None or package.export_seq > seen.export_seq:
            newest[package.venue_id] = package
    return newest


async def read_session_packages(
    storage: CentralStorage, authority: Authority, session_id: str, venues: list[str]
) -> dict[str, VenuePackage]:
    """Open the newest package of every venue in `venues`; PackagesMissing names the absent."""
    newest = newest_per_venue(await storage.list_packages(session_id))
    missing = [v for v in venues if v not in newest]
    if missing:
        raise PackagesMissing(
            f"session {session_id}: no response package accepted yet from venue(s) "
            f"{', '.join(missing)}; have them upload (cbt venue upload) and score again"
        )
    out: dict[str, VenuePackage] = {}
    for venue_id in venues:
        stored = newest[venue_id]
        record = await storage.get_venue(venue_id)
        if record is None:
            raise PackagesMissing(f"venue {venue_id} is no longer registered at this centre")
        data = await storage.package_data(stored.package_sha256)
        public = crypto.read_signing_public(record.signing_public)
        opened = await asyncio.to_thread(
            response_package.open_response_package, data, public, authority.wrapping_key
        )
        out[venue_id] = VenuePackage(
            venue_id,
            opened.package_sha256,
            stored.export_seq,
            stored.received_at,
            opened.contents,
            opened,
        )
    return out
