"""A session sat at a real venue directory, exported and uploaded by the venue's own code, is
scored at the centre exactly as the simple scorer scores the candidates' answers."""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from paperpack.model import CHOICE_TYPES, Paper
from server.store import transaction
from server.venue.workspace import open_venue_db
from tests.server.scoring.conftest import START
from tests.server.scoring.real_chain import RealVenue, answer_and_submit, seat_roster
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
    db = open_venue_db(venue_dir)
    with transaction(db):
        seat_roster(db, SESSION, TICKETS, ended=True)
        finals = {t: answer_and_submit(db, t, _answers(paper, rng)) for t in TICKETS}
    db.close()
    return finals


async def test_real_venue_export_scores_like_the_simple_scorer(tmp_path: Path) -> None:
    """Venue tables -> export_session -> drain_outbox -> central store -> score_session."""
    real = RealVenue.make(tmp_path, SESSION, TICKETS)
    finals = _sit(real.venue.directory, real.paper)
    assert await real.export_and_upload(START + timedelta(hours=3)) == 1
    scored = await real.score(START + timedelta(days=1))
    paper = real.paper
    assert [r.status for r in scored.results] == ["pending"] * len(TICKETS)
    for result in scored.results:
        expected = simple_total(paper, finals[result.score.ticket])
        assert result.objective == pytest.approx(expected, abs=1e-9)
        assert result.score.receipt_venue == result.score.receipt_centre
