"""Each candidate's variant digest is recorded at the unlock and travels in the export."""

from __future__ import annotations

from typing import Any

from server.venue import keys
from server.venue.export import collect_session
from server.venue.workspace import open_venue_db
from tests.server.conftest import CANDIDATES, SESSION_ID, VenueKit


async def test_unlock_records_every_variant_digest_for_a_later_export(venue_kit: VenueKit) -> None:
    """After the unlock the database holds one digest per candidate, equal to the variant's;
    an export made without the paper in memory (e.g. after a restart) still carries them."""
    await venue_kit.unlock()
    exam: Any = venue_kit.app[keys.LIVE].exam
    db = open_venue_db(venue_kit.directory)
    try:
        stored = dict(
            db.execute("SELECT ticket, digest FROM variants WHERE session_id = ?", (SESSION_ID,))
        )
        assert len(stored) == CANDIDATES
        assert stored == {t: v.digest for t, v in exam.variants.items()}
        await venue_kit.login_candidate(1)
        contents = collect_session(db, SESSION_ID)
    finally:
        db.close()
    exported = {a["ticket"]: a["variant"]["digest"] for a in contents["attempts"]}
    assert exported == {"T0001": stored["T0001"]}
