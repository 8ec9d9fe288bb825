"""Where the central server's releases come from: the authority directory.

`paperpack pack` leaves each venue's central-only material (window, wrapped release secret)
under AUTH/sessions/<session>/<venue>/; `paperpack.release.issue_release` turns it into the
signed release record. This adapter gives the endpoint that record and its unlock window.
"""

from __future__ import annotations

from datetime import datetime

from paperpack.authority import Authority
from paperpack.release import ReleaseError, issue_release
from server.central.release import ReleaseOffer


class AuthorityReleaseSource:
    """Release offers read from an authority directory (the default source)."""

    def __init__(self, authority: Authority) -> None:
        self.authority = authority

    def find(self, session_id: str, venue_id: str) -> ReleaseOffer | None:
        try:
            release = issue_release(self.authority, session_id, venue_id)
        except ReleaseError:
            return None
        window = release.record["window"]
        return ReleaseOffer(
            not_before=datetime.fromisoformat(window["not_before"]),
            not_after=datetime.fromisoformat(window["not_after"]),
            record=release.record,
        )
