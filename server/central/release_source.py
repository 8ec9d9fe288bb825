"""Where the central server's releases come from: the authority directory.

`paperpack pack` leaves each venue's central-only material (window, wrapped release secret)
under AUTH/sessions/<session>/<venue>/. This adapter reads the window from the plaintext pack
record without opening anything, and issues a release only through
`paperpack.release.accountable_release`: window checked first, then the secret unwrapped,
then the issuance appended to the authority's release log (channel "online").
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from paperpack.authority import Authority
from paperpack.release import ReleaseError, accountable_release, release_window
from server.central.release import ReleaseWindow


class AuthorityReleaseSource:
    """Release windows and records read from an authority directory (the default source)."""

    def __init__(self, authority: Authority) -> None:
        self.authority = authority

    def find(self, session_id: str, venue_id: str) -> ReleaseWindow | None:
        try:
            not_before, not_after = release_window(self.authority, session_id, venue_id)
        except ReleaseError:
            return None
        return ReleaseWindow(not_before=not_before, not_after=not_after)

    def issue(self, session_id: str, venue_id: str, now: datetime) -> dict[str, Any]:
        """The signed record; ReleaseMaterialUnreadable names what to check."""
        release = accountable_release(
            self.authority,
            session_id,
            venue_id,
            now=now,
            channel="online",
            who=venue_id,  # the venue server whose signed request it answers (channel online)
        )
        return release.record
