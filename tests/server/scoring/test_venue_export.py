"""A session sat at a real venue directory, exported and uploaded by the venue's own code, is
scored at the centre exactly as the simple scorer scores the candidates' answers."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import random
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from paperpack.authority import init_authority, load_authority
from paperpack.canonical import canonical_hash
from paperpack.model import CHOICE_TYPES, Paper
from paperpack.pack import pack_session
from paperpack.session import session_from_dict
from paperpack.synthetic import synthetic_paper
from paperpack.variants import VariantPlan
from server.central import keys
from server.central.app import create_app, open_storage
from server.central.settings import CentralSettings
from server.central.storage import VenueRecord
from server.clock import SettableClock, iso
from server.scoring.pipeline import score_session
from server.store import transaction
from server.venue import journal
from server.venue.export import export_session
from server.venue.upload import drain_outbox
from server.venue.workspace import init_venue, load_venue, load_wrapping_key, open_venue_db
from tests.server.scoring.conftest import START, unlock_at_venue
from tests.server.scoring.test_scoring import simple_total

SESSION = "S-REAL"
TICKETS = [f"3{n:04d}" for n in range(1, 13)]


def _answers(paper: Paper, rng: random.Random) -> dict[str, Any]:
    """Canonical answers as the venue journal holds them (JSON: lists, strings)."""
    out: dict[str, Any] = {}
    for item in paper.items():
        if item.type in CHOICE_TYPES:
            ids = [o.option_id for o in item.options]
            out[item.item_id] = list(item.key) if rng.random() < 0.6 else [rng.choice(ids)]
        elif item.type == "fill_blank":
            out[item.item_id] = [b.accepted[0] if rng.random() < 0.5 else "x" for b in item.blanks]
        else:
            out[item.item_id] = "答" * rng.randint(1, 9)
    return out


def _sit(venue_dir: Path, paper: Paper) -> dict[str, dict[str, Any]]:
    """Fill the venue tables as the sitting would: saves through the real journal, submissions."""
    rng = random.Random(5)
    finals: dict[str, dict[str, Any]] = {}
    db = open_venue_db(venue_dir)
    with transaction(db):
        db.execute(
            "INSERT INTO sessions (session_id, subject, starts_at, duration_ms, status,"
            " unlocked_at, ended_at) VALUES (?, '27', ?, 7200000, 'ended', ?, ?)",
            (SESSION, iso(START), iso(START), iso(START + timedelta(hours=2))),
        )
        for n, ticket in enumerate(TICKETS):
            db.execute(
                "INSERT INTO candidates (session_id, ticket, name, id_number, subject, row_no,"
                " imported_at) VALUES (?, ?, 'N', 'X', '27', ?, ?)",
                (SESSION, ticket, n + 2, iso(START)),
            )
            attempt_id = f"att{n}"
            db.execute(
                "INSERT INTO attempts (attempt_id, session_id, ticket, logged_in_at)"
                " VALUES (?, ?, ?, ?)",
                (attempt_id, SESSION, ticket, iso(START)),
            )
            answers = _answers(paper, rng)
            items = list(answers.items())
            for seq, start in enumerate(range(0, len(items), 7), start=1):
                journal.append_save(db, attempt_id, seq, dict(items[start : start + 7]), START)
            final = journal.current_responses(db, attempt_id)
            finals[ticket] = final
            db.execute(
                "INSERT INTO submissions (attempt_id, submitted_at, how, final_seq, answers,"
                " receipt)"
                " VALUES (?, ?, 'candidate', ?, ?, ?)",
                (attempt_id, iso(START), seq, json.dumps(final), canonical_hash(final)),
            )
            db.execute(  # what finalise_attempt does beside the submission row
                "UPDATE attempts SET status = 'submitted', submitted_at = ? WHERE attempt_id = ?",
                (iso(START), attempt_id),
            )
    db.close()
    return finals


async def test_real_venue_export_scores_like_the_simple_scorer(tmp_path: Path) -> None:
    """Venue tables -> export_session -> drain_outbox -> central store -> score_session."""
    init_authority(tmp_path / "auth")
    authority = load_authority(tmp_path / "auth")
    venue = init_venue(tmp_path / "venue", "V1", now=START)
    paper = dataclasses.replace(
        synthetic_paper(30, seed=4), subject_code="27", duration_minutes=120
    )
    session = session_from_dict(
        {"session_id": SESSION, "subject": {"code": "27", "name": "Economics"},
         "start": START.isoformat(),
         "venues": [{"id": "V1", "name": "Venue 1", "public_key": venue.wrap_public,
                     "supervisors": 3, "threshold": 2}]}
    )  # fmt: skip
    [pack] = pack_session(
        paper, session, authority, tmp_path / "out", now=START - timedelta(days=2)
    )
    device = load_wrapping_key(load_venue(venue.directory))
    unlocked = unlock_at_venue(pack.package_dir, pack.shares_dir, authority, device, SESSION)
    plan = VariantPlan(unlocked.paper)
    digests = {t: plan.build(unlocked.variant_secret, SESSION, t).digest for t in TICKETS}
    finals = _sit(venue.directory, paper)
    await asyncio.to_thread(
        export_session, venue.directory, SESSION, central_key=tmp_path / "auth" / "upload.pub",
        variant_digests=digests,
    )  # fmt: skip

    database = str(tmp_path / "central.db")
    settings = CentralSettings(directory=tmp_path, database=database, log_requests=False)
    app = create_app(settings, clock=SettableClock(START + timedelta(hours=3)), authority=authority)
    async with TestServer(app, host="127.0.0.1") as server:
        record = VenueRecord("V1", "V1", venue.sign_public, venue.wrap_public, iso(START))
        await app[keys.STORAGE].add_venue(record)
        url = str(server.make_url("")).rstrip("/")
        delivered = await drain_outbox(
            venue.directory, url, authority.signing_public, clock=app[keys.CLOCK]
        )
    assert len(delivered) == 1

    storage = open_storage(database)
    await storage.open()
    try:
        scored = await score_session(
            storage, authority, SESSION, START + timedelta(days=1), tmp_path / "results"
        )
    finally:
        await storage.close()
    assert [r.status for r in scored.results] == ["pending"] * len(TICKETS)
    for result in scored.results:
        expected = simple_total(paper, finals[result.score.ticket])
        assert result.objective == pytest.approx(expected, abs=1e-9)
        assert result.score.receipt_venue == result.score.receipt_centre
