"""Similar answers a person can judge (art. 35(5), issue 14 point 6): per room the closest
pairs even below significance, and identical or near-identical essays always flagged.

The planted test is the trial's pattern: seven candidates in one room, two neighbours sharing
six wrong answers and one essay. It runs through the real chain: the venue's own journal and
tables, `export_session`, the venue's uploader into a real central app, `score_session`,
`build_report`, `render_report_html`."""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path
from typing import Any

from paperpack.model import CHOICE_TYPES, Paper
from server.clock import iso
from server.scoring.near_misses import closest_pairs, matching_texts
from server.scoring.report import build_report, render_report_html
from server.store import transaction
from server.venue.workspace import open_venue_db
from tests.server.scoring.conftest import START
from tests.server.scoring.real_chain import RealVenue, answer_and_submit, seat_roster

SESSION = "S-TRIAL"
TICKETS = [f"7{n:04d}" for n in range(1, 8)]
SOURCE, COPIER = TICKETS[0], TICKETS[1]  # seated side by side: row 1, seats 1 and 2
WORDS = [
    *("market", "supply", "demand", "price", "elasticity", "cost", "margin", "trade"),
    *("labour", "capital", "rent", "tax", "growth", "money", "credit", "bank", "firm"),
    *("output", "wage", "policy", "state", "risk", "return"),
]
ESSAY = (
    "When the price of a good rises the quantity demanded falls, because buyers turn to "
    "substitutes and their real income shrinks; the steeper the fall, the more elastic demand."
)


def _essay(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(30))


def _wrong_option(item: Any, rng: random.Random) -> list[str]:
    return [rng.choice([o.option_id for o in item.options if o.option_id not in item.key])]


def _answers(paper: Paper, rng: random.Random) -> dict[str, Any]:
    """An honest candidate: right 60% of the time, else a wrong answer of their own."""
    out: dict[str, Any] = {}
    for item in paper.items():
        if item.type in CHOICE_TYPES:
            right = rng.random() < 0.6
            out[item.item_id] = list(item.key) if right else _wrong_option(item, rng)
        elif item.type == "fill_blank":
            out[item.item_id] = [f"guess-{rng.randrange(10**6)}" for _ in item.blanks]
        else:
            out[item.item_id] = _essay(rng)
    return out


def _planted(paper: Paper) -> dict[str, dict[str, Any]]:
    """Seven candidates; the copier takes six of the source's wrong answers and an essay."""
    rng = random.Random(11)
    sheets = {ticket: _answers(paper, rng) for ticket in TICKETS}
    choice = [i for i in paper.items() if i.type in CHOICE_TYPES and len(i.options) > 2]
    copied = choice[:6]
    for item in copied:
        sheets[SOURCE][item.item_id] = _wrong_option(item, rng)
        sheets[COPIER][item.item_id] = list(sheets[SOURCE][item.item_id])
    for item in choice[6:]:  # elsewhere the copier is right: no accidental extra overlap
        sheets[COPIER][item.item_id] = list(item.key)
    essay = next(i for i in paper.items() if i.type == "essay")
    sheets[SOURCE][essay.item_id] = ESSAY
    sheets[COPIER][essay.item_id] = ESSAY.upper().replace(" ", "  ")  # same text, other case
    return sheets


def _sit(venue_dir: Path, sheets: dict[str, dict[str, Any]]) -> None:
    """The venue's tables as the sitting leaves them: roster, one room, seats, the journal."""
    db = open_venue_db(venue_dir)
    with transaction(db):
        seat_roster(db, SESSION, TICKETS, ended=True)
        db.execute("INSERT INTO rooms (room_id, name, rows, columns) VALUES ('R1', 'R1', 2, 4)")
        db.execute(
            "INSERT INTO seeds (seed_id, session_id, purpose, seed, created_at, created_by)"
            " VALUES (1, ?, 'seats', ?, ?, 'test')",
            (SESSION, "00" * 32, iso(START)),
        )
        db.execute(
            "INSERT INTO seat_plans (plan_id, session_id, seed_id, algorithm, roster_hash,"
            " rooms_hash, plan_hash, created_at, created_by) VALUES (1, ?, 1, 'test', '', '',"
            " '', ?, 'test')",
            (SESSION, iso(START)),
        )
        for n, ticket in enumerate(TICKETS):
            row, column = divmod(n, 4)
            db.execute(
                "INSERT INTO seats (session_id, ticket, plan_id, room_id, seat_no, row_no,"
                " column_no) VALUES (?, ?, 1, 'R1', ?, ?, ?)",
                (SESSION, ticket, n + 1, row + 1, column + 1),
            )
            answer_and_submit(db, ticket, sheets[ticket])
    db.close()


async def _report(tmp_path: Path) -> dict[str, Any]:
    real = RealVenue.make(tmp_path, SESSION, TICKETS)
    _sit(real.venue.directory, _planted(real.paper))
    assert await real.export_and_upload(START + timedelta(hours=3)) == 1
    return build_report(await real.score(START + timedelta(days=1)))


async def test_the_trial_pattern_is_listed_and_its_essays_flagged(tmp_path: Path) -> None:
    """Seven candidates: the neighbours sharing six wrong answers head their room's list, with
    their seats and the evidence, and their identical essays are flagged; nobody else is."""
    report = await _report(tmp_path)
    top = report["close_pairs"][0]
    assert (top["first"], top["second"]) == (SOURCE, COPIER)
    assert top["identical_wrong"] >= 6 and top["neighbours"] is True
    assert top["room_id"] == "R1"
    evidence = top["evidence"]
    assert evidence["seats"] == [
        {"room_id": "R1", "row": 1, "column": 1},
        {"room_id": "R1", "row": 1, "column": 2},
    ]
    assert len(evidence["items"]) == top["identical_wrong"]
    assert evidence["package_sha256"] == report["venues"][0]["package_sha256"]
    assert all(p["identical_wrong"] < top["identical_wrong"] for p in report["close_pairs"][1:])
    [match] = report["text_matches"]
    assert (match["first"], match["second"], match["identical"]) == (SOURCE, COPIER, True)
    html = render_report_html(report, "zh-CN", "Asia/Shanghai")
    assert f'id="{evidence["flag_id"]}"' in html and "完全相同" in html
    assert "R1 第 1 排第 1 座" in html


def test_a_lightly_edited_essay_is_still_flagged_and_different_essays_are_not() -> None:
    rng = random.Random(3)
    edited = ESSAY.replace("buyers", "consumers").replace("shrinks", "falls")
    texts = {
        "A": {"E1": ESSAY},
        "B": {"E1": edited},
        "C": {"E1": _essay(rng)},
        "D": {"E1": _essay(rng)},
        "E": {"E1": "不知道"},  # too short to say anything
        "F": {"E1": "不知道"},
    }
    venues = dict.fromkeys(texts, "V1")
    [match] = matching_texts(texts, venues)
    assert (match.first, match.second, match.identical) == ("A", "B", False)
    assert 0.6 <= match.similarity < 1.0


def test_texts_are_compared_within_a_venue_only() -> None:
    texts = {"A": {"E1": ESSAY}, "B": {"E1": ESSAY}}
    assert matching_texts(texts, {"A": "V1", "B": "V2"}) == []
    assert len(matching_texts(texts, {"A": "V1", "B": "V1"})) == 1


def test_closest_pairs_are_listed_per_room_below_any_significance() -> None:
    """Two shared wrong answers out of three items would never be significant; listed anyway,
    per room, and never across rooms."""
    wrong: dict[str, list[object]] = {
        "A": ["x", "y", None], "B": ["x", "y", "z"], "C": ["x", "y", "z"], "D": [None, None, "q"],
    }  # fmt: skip
    seats = {"A": ("V1", "R1", 1, 1), "B": ("V1", "R1", 1, 3), "C": ("V1", "R2", 1, 1),
             "D": ("V1", "R2", 1, 2)}  # fmt: skip
    pairs = closest_pairs(wrong, ["i1", "i2", "i3"], seats, dict.fromkeys(wrong, "V1"))
    assert [(p.room_id, p.first, p.second, p.identical_wrong, p.neighbours) for p in pairs] == [
        ("R1", "A", "B", 2, False)
    ]
    assert pairs[0].items == ("i1", "i2")
