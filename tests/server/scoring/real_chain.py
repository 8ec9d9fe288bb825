"""The venue-to-centre chain with the real producers, for tests that follow answers home.

`RealVenue.make` packs a synthetic paper for one real venue directory (`paperpack pack`), and
unlocks it as the venue does, for the variant digests; the test fills the venue's tables its own
way (the sitting it needs; `seat_roster` and `answer_and_submit` do the usual part);
`export_and_upload` runs the venue's `export_session` and its signed
uploader into a real central app on a loopback port; `score` scores the session from that store.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestServer
from sqlite_utils import Database

from paperpack.authority import Authority, init_authority, load_authority
from paperpack.model import Paper
from paperpack.pack import pack_session
from paperpack.session import session_from_dict
from paperpack.synthetic import synthetic_paper
from paperpack.variants import VariantPlan
from server.central import keys
from server.central.app import create_app, open_storage
from server.central.settings import CentralSettings
from server.central.storage import VenueRecord
from server.clock import SettableClock, iso
from server.scoring.pipeline import ScoredSession, score_session
from server.venue import journal
from server.venue.export import export_session
from server.venue.submission import finalise_attempt
from server.venue.upload import drain_outbox
from server.venue.workspace import Venue, init_venue, load_venue, load_wrapping_key
from tests.server.scoring.conftest import START, unlock_at_venue


@dataclass
class RealVenue:
    root: Path
    session_id: str
    authority: Authority
    venue: Venue
    paper: Paper
    digests: dict[str, str]

    @classmethod
    def make(cls, root: Path, session_id: str, tickets: tuple[str, ...] | list[str],
             items: int = 30, seed: int = 4) -> RealVenue:  # fmt: skip
        init_authority(root / "auth")
        authority = load_authority(root / "auth")
        venue = init_venue(root / "venue", "V1", now=START)
        paper = dataclasses.replace(
            synthetic_paper(items, seed=seed), subject_code="27", duration_minutes=120
        )
        session = session_from_dict(
            {"session_id": session_id, "subject": {"code": "27", "name": "Economics"},
             "start": START.isoformat(),
             "venues": [{"id": "V1", "name": "Venue 1", "public_key": venue.wrap_public,
                         "supervisors": 3, "threshold": 2}]}
        )  # fmt: skip
        [pack] = pack_session(paper, session, authority, root / "out",
                              now=START - timedelta(days=2))  # fmt: skip
        device = load_wrapping_key(load_venue(venue.directory))
        unlocked = unlock_at_venue(pack.package_dir, pack.shares_dir, authority, device, session_id)
        plan = VariantPlan(unlocked.paper)
        digests = {t: plan.build(unlocked.variant_secret, session_id, t).digest for t in tickets}
        return cls(root, session_id, authority, venue, paper, digests)

    @property
    def database(self) -> str:
        return str(self.root / "central.db")

    async def export_and_upload(self, moment: datetime, **export: Any) -> int:
        """The venue's export (as given) and its signed uploader into a real central app whose
        clock reads `moment`; returns how many packages were delivered."""
        await asyncio.to_thread(
            export_session, self.venue.directory, self.session_id,
            central_key=self.root / "auth" / "upload.pub", variant_digests=self.digests,
            now=moment, **export,
        )  # fmt: skip
        settings = CentralSettings(directory=self.root, database=self.database, log_requests=False)
        app = create_app(settings, clock=SettableClock(moment), authority=self.authority)
        async with TestServer(app, host="127.0.0.1") as server:
            storage = app[keys.STORAGE]
            if await storage.get_venue("V1") is None:
                venue = self.venue
                await storage.add_venue(VenueRecord("V1", "V1", venue.sign_public,
                                                    venue.wrap_public, iso(START)))  # fmt: skip
            url = str(server.make_url("")).rstrip("/")
            delivered = await drain_outbox(
                self.venue.directory, url, self.authority.signing_public, clock=app[keys.CLOCK]
            )
        return len(delivered)

    async def score(self, moment: datetime) -> ScoredSession:
        storage = open_storage(self.database)
        await storage.open()
        try:
            return await score_session(
                storage, self.authority, self.session_id, moment, self.root / "results"
            )
        finally:
            await storage.close()


def seat_roster(db: Database, session_id: str, tickets: Sequence[str], *, ended: bool) -> None:
    """The session (ended two hours after START, or still unlocked), its roster and one
    attempt per ticket (`att-<ticket>`), as the venue's tables hold them after the login."""
    db.execute(
        "INSERT INTO sessions (session_id, subject, starts_at, duration_ms, status,"
        " unlocked_at, ended_at) VALUES (?, '27', ?, 7200000, ?, ?, ?)",
        (session_id, iso(START), "ended" if ended else "unlocked", iso(START),
         iso(START + timedelta(hours=2)) if ended else None),
    )  # fmt: skip
    for n, ticket in enumerate(tickets):
        db.execute(
            "INSERT INTO candidates (session_id, ticket, name, id_number, subject, row_no,"
            " imported_at) VALUES (?, ?, 'N', 'X', '27', ?, ?)",
            (session_id, ticket, n + 2, iso(START)),
        )
        db.execute(
            "INSERT INTO attempts (attempt_id, session_id, ticket, logged_in_at, status)"
            " VALUES (?, ?, ?, ?, 'answering')",
            (f"att-{ticket}", session_id, ticket, iso(START)),
        )


def answer_and_submit(db: Database, ticket: str, answers: dict[str, Any]) -> dict[str, Any]:
    """Saves through the real journal (seven answers a save), then the venue's own submission;
    returns the final answers as the journal holds them."""
    attempt_id = f"att-{ticket}"
    items = list(answers.items())
    for seq, first in enumerate(range(0, len(items), 7), start=1):
        journal.append_save(db, attempt_id, seq, dict(items[first : first + 7]), START)
    finalise_attempt(db, attempt_id, "candidate", START + timedelta(minutes=100))
    return dict(journal.current_responses(db, attempt_id))
