"""Similar answers a person can judge (art. 35(5), issue 14 point 6): per room the closest
pairs even below significance, and identical or near-identical essays always flagged.

The planted test is the trial's pattern: seven candidates in one room, two neighbours sharing
six wrong answers and one essay. It runs through the real chain: the venue's own journal and
tables, `export_session`, the venue's uploader into a real central app, `score_session`,
`build_report`, `render_report_html`."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import random
from datetime import timedelta
from pathlib import Path
from typing import Any

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
from server.scoring.near_misses import closest_pairs, matching_texts
from server.scoring.pipeline import score_session
from server.scoring.report import build_report, render_report_html
from server.store import transaction
from server.venue import journal
from server.venue.export import export_session
from server.venue.upload import drain_outbox
from server.venue.workspace import init_venue, load_venue, load_wrapping_key, open_venue_db
from tests.server.scoring.conftest import START, unlock_at_venue

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
        db.execute(
            "INSERT INTO sessions (session_id, subject, starts_at, duration_ms, status,"
            " unlocked_at, ended_at) VALUES (?, '27', ?, 7200000, 'ended', ?, ?)",
            (SESSION, iso(START), iso(START), iso(START + timedelta(hours=2))),
        )
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
                "INSERT INTO candidates (session_id, ticket, name, id_number, subject, row_no,"
                " imported_at) VALUES (?, ?, 'N', 'X', '27', ?, ?)",
                (SESSION, ticket, n + 2, iso(START)),
            )
            db.execute(
                "INSERT INTO seats (session_id, ticket, plan_id, room_id, seat_no, row_no,"
                " column_no) VALUES (?, ?, 1, 'R1', ?, ?, ?)",
                (SESSION, ticket, n + 1, row + 1, column + 1),
            )
            attempt_id = f"att{n}"
            db.execute(
                "INSERT INTO attempts (attempt_id, session_id, ticket, logged_in_at)"
                " VALUES (?, ?, ?, ?)",
                (attempt_id, SESSION, ticket, iso(START)),
            )
            items = list(sheets[ticket].items())
            for seq, start in enumerate(range(0, len(items), 7), start=1):
                journal.append_save(db, attempt_id, seq, dict(items[start : start + 7]), START)
            final = journal.current_responses(db, attempt_id)
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


async def _report(tmp_path: Path) -> dict[str, Any]:
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
    _sit(venue.directory, _planted(paper))
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
    return build_report(scored)


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
