"""Reading accepted response packages at the centre (for scoring and reconciliation).

`session_packages(storage, authority, session_id)` returns, per venue, the newest accepted
export of the session, verified and decrypted; `check_journals(contents)` re-checks every
attempt's journal hash chain (the venue's `server.venue.journal.link_hash`), so an answer
edited after it was saved is caught at the centre too.
"""

from __future__ import annotations

import asyncio
from typing import Any

from paperpack import crypto
from paperpack.authority import Authority
from paperpack.canonical import canonical_json
from server.central.storage import CentralStorage
from server.errors import CbtError
from server.responsepkg import OpenedPackage, open_response_package
from server.venue.journal import GENESIS, link_hash


class JournalMismatch(CbtError):
    """An attempt's journal in a package does not chain: it was altered."""


async def session_packages(
    storage: CentralStorage, authority: Authority, session_id: str
) -> dict[str, OpenedPackage]:
    """venue_id -> the newest accepted package of `session_id` from that venue, opened."""
    newest: dict[str, Any] = {}
    for package in await storage.list_packages(session_id):
        if package.deleted_at is None:
            current = newest.get(package.venue_id)
            if current is None or package.export_seq > current.export_seq:
                newest[package.venue_id] = package
    opened = {}
    for venue_id, package in newest.items():
        venue = await storage.get_venue(venue_id)
        if venue is None:
            raise CbtError(f"venue {venue_id} is no longer registered: re-register its key")
        data = await storage.package_data(package.package_sha256)
        public = crypto.read_signing_public(venue.signing_public)
        opened[venue_id] = await asyncio.to_thread(
            open_response_package, data, public, authority.wrapping_key
        )
    return opened


def check_journals(contents: dict[str, Any]) -> int:
    """Verify every attempt's journal chain; return how many saves were checked."""
    checked = 0
    for attempt in contents.get("attempts", []):
        previous = GENESIS
        for save in attempt.get("journal", []):
            digest = link_hash(
                attempt["attempt_id"], save["seq"], save["position"], save["saved_at"],
                canonical_json(save["responses"]).decode(), previous,
            )  # fmt: skip
            if save["prev_hash"] != previous or digest != save["hash"]:
                raise JournalMismatch(
                    f"attempt of ticket {attempt.get('ticket')} journal position "
                    f"{save['position']} does not chain: the package's journal was altered; "
                    "hold this candidate's score"
                )
            previous = digest
            checked += 1
    return checked
