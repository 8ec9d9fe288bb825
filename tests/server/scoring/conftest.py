"""A realistic scored session, built the way the real system builds one.

`packed_session` (once per run) packs a 100-item synthetic paper with paperpack for two venues
(three share cards each, any two unlock), unlocks each venue's package as the venue does
(shares + the time-release code + the venue's device key) to get the paper without keys and
the variant secret, and simulates candidates under a simple ability model. Their answers are
mapped to each candidate's variant tokens (`to_display`, the forward map) and sealed in a
response package per venue with `server.protocol.response_package`, signed by the venue's key.

Venue V001 ships the browser's token answers with names in its roster; V002 ships what
`server.venue.export` does: canonical answers (mapped at save time), `form_id`, seating as
plans/seats/moves, no names or ID numbers, violations without numbers.

Planted on purpose: one item whose packed key is wrong (able candidates choose the true
answer, weak ones the keyed distractor), one candidate whose recorded variant digest is not the
real one, two copiers seated beside their sources, one candidate with a violation the chief
examiner proposed to cancel for (`central_store` adds the centre's determination: only that
cancels), one marked absent and one who never came.

`upload_all` registers the venues and uploads the packages with the venue's own upload client
to the real central app on a loopback port (chunks, finish, verified receipt); `central_store`
is that store, opened again for scoring.
"""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np
import pytest

from paperpack import crypto
from paperpack.authority import Authority, init_authority, load_authority
from paperpack.canonical import canonical_hash
from paperpack.model import CHOICE_TYPES, Item, Paper
from paperpack.pack import pack_session
from paperpack.package import open_package
from paperpack.release import issue_release
from paperpack.scoring import Answer
from paperpack.session import session_from_dict
from paperpack.synthetic import synthetic_paper
from paperpack.unlock import Unlock
from paperpack.variants import VariantPlan, to_display
from server.central.storage import CentralStorage, VenueRecord
from server.clock import iso
from server.protocol import response_package

SESSION_ID = "S2026-ECON"
START = datetime(2026, 6, 13, 1, 0, tzinfo=UTC)
AFTER_END = START + timedelta(days=1)
VENUES = ("V001", "V002")
PER_VENUE = 60
COLUMNS = 6


@dataclass(frozen=True)
class Plants:
    wrong_key_item: str  # the item packed with a wrong key
    mismatch_ticket: str  # recorded digest altered
    copiers: tuple[tuple[str, str], ...]  # (source, copier), seated side by side
    cancelled_ticket: str  # a violation proposed for cancelling (not yet determined)
    absent_marked: str  # marked absent by the venue
    absent_unmarked: str  # on the roster, never came


@dataclass(frozen=True)
class PackedSession:
    authority_dir: Path
    paper: Paper  # as packed (with the planted wrong key)
    true_paper: Paper  # the same paper with the right key
    packages: dict[str, bytes]  # venue id -> response package bytes
    venue_keys: dict[str, crypto.Ed25519PrivateKey]
    canonical: dict[str, dict[str, Answer]]  # ticket -> what the candidate answered
    plants: Plants
    people: dict[str, tuple[str, str]]  # ticket -> (name, id number)


def ticket_of(venue: int, n: int) -> str:
    return f"{venue + 1}{n:04d}"


def _session(wrap_keys: dict[str, str]) -> Any:
    return session_from_dict(
        {
            "session_id": SESSION_ID,
            "subject": {"code": "9001", "name": "Management"},
            "start": START.isoformat(),
            "venues": [
                {"id": v, "name": f"Centre {v}", "public_key": wrap_keys[v],
                 "supervisors": 3, "threshold": 2}
                for v in VENUES
            ],
        }
    )  # fmt: skip


def unlock_at_venue(
    package_dir: Path,
    shares_dir: Path,
    authority: Authority,
    device: Any,
    session_id: str = SESSION_ID,
) -> Any:
    """What the venue does in its ceremony: two shares and the release code."""
    now = START - timedelta(minutes=30)
    opened = open_package(package_dir, authority.signing_public)
    unlock = Unlock(opened, device, now)
    for login, card in zip(
        ("chief", "inv1"), sorted(shares_dir.glob("holder-*.txt")), strict=False
    ):
        unlock.add_share(card.read_text(encoding="utf-8"), login)
    venue_id = opened.manifest.raw["venue_id"]
    unlock.add_release(issue_release(authority, session_id, venue_id, now=now).code, now)
    return unlock.open(now)


def _plant_wrong_key(paper: Paper) -> tuple[Paper, str, str]:
    """Re-key the fifth single-choice item to a distractor; returns paper, item, keyed option."""
    singles = [i for i in paper.items() if i.type == "single_choice"]
    target = singles[4]
    wrong = next(
        o.option_id for o in target.options if o.option_id not in target.key and not o.fixed
    )
    sections = tuple(
        dataclasses.replace(
            s,
            items=tuple(
                dataclasses.replace(i, key=(wrong,)) if i.item_id == target.item_id else i
                for i in s.items
            ),
        )
        for s in paper.sections
    )
    return dataclasses.replace(paper, sections=sections), target.item_id, wrong


def _answer(item: Item, right: bool, rng: np.random.Generator, lure: str | None) -> Answer:
    if item.type == "essay":
        return "答：" + "要点" * int(rng.integers(1, 5))
    if item.type == "fill_blank":
        return tuple(
            b.accepted[0] if right else "错" + str(rng.integers(0, 3)) for b in item.blanks
        )
    ids = [o.option_id for o in item.options]
    if right:
        return item.key
    wrong = [i for i in ids if (i,) != item.key]
    if lure is not None and rng.random() < 0.7:
        return (lure,)
    if item.type == "multiple_choice":
        while True:
            chosen = set(rng.choice(ids, size=int(rng.integers(1, len(ids))), replace=False))
            if chosen != set(item.key):
                return tuple(i for i in ids if i in chosen)
    return (wrong[int(rng.integers(0, len(wrong)))],)


def simulate(
    true_paper: Paper, tickets: list[str], lure_item: str, lure: str, seed: int
) -> dict[str, dict[str, Answer]]:
    """Independent candidates: P(right) = logistic(ability - difficulty)."""
    rng = np.random.default_rng(seed)
    items = true_paper.items()
    difficulty = rng.uniform(-1.0, 1.0, len(items))
    out: dict[str, dict[str, Answer]] = {}
    for ticket in tickets:
        ability = rng.normal(0.0, 2.0)
        answers: dict[str, Answer] = {}
        for n, item in enumerate(items):
            if rng.random() < 0.03:
                continue  # left unanswered
            right = rng.random() < 1.0 / (1.0 + np.exp(-(ability - difficulty[n])))
            answers[item.item_id] = _answer(
                item, bool(right), rng, lure if item.item_id == lure_item else None
            )
        out[ticket] = answers
    return out


def _plant_copiers(
    canonical: dict[str, dict[str, Answer]], true_paper: Paper, venue: int, rng: np.random.Generator
) -> tuple[tuple[str, str], ...]:
    """The weakest candidate of seats 1 and 13 is copied by the one beside them (90%)."""
    pairs = []
    for source_n in (1, 13):
        source, copier = ticket_of(venue, source_n), ticket_of(venue, source_n + 1)
        for item in true_paper.items():
            if rng.random() < 0.9 and item.item_id in canonical[source]:
                canonical[copier][item.item_id] = canonical[source][item.item_id]
        pairs.append((source, copier))
    return tuple(pairs)


def _weaken(canonical: dict[str, Answer], true_paper: Paper, rng: np.random.Generator) -> None:
    """Make a copying source weak enough to leave evidence: ~45% of choice items wrong."""
    for item in true_paper.items():
        if item.type in CHOICE_TYPES and item.type != "true_false" and rng.random() < 0.45:
            canonical[item.item_id] = _answer(item, False, rng, None)


def _contents(
    venue_index: int,
    venue_id: str,
    unlocked: Any,
    canonical: dict[str, dict[str, Answer]],
    plants: Plants,
    people: dict[str, tuple[str, str]],
) -> dict[str, Any]:
    roster = [ticket_of(venue_index, n) for n in range(1, PER_VENUE + 1)]
    attempts, seating, absences, violations = [], [], [], []
    plan = VariantPlan(unlocked.paper)
    for n, ticket in enumerate(roster, start=1):
        row, column = (n - 1) // COLUMNS + 1, (n - 1) % COLUMNS + 1
        seating.append(
            {"ticket": ticket, "room_id": "R1", "seat_no": n, "row_no": row, "column_no": column}
        )
        if ticket == plants.absent_marked:
            absences.append({"ticket": ticket, "marked_by": "inv1", "marked_at": iso(START)})
            continue
        if ticket == plants.absent_unmarked:
            continue
        variant = plan.build(unlocked.variant_secret, SESSION_ID, ticket)
        digest = variant.digest if ticket != plants.mismatch_ticket else "f" * 64
        if venue_index == 0:  # the browser's tokens, as saved
            given: dict[str, Any] = to_display(variant, canonical[ticket])
        else:  # as server.venue.export ships them: canonical ids, mapped at save time
            given = {k: v if isinstance(v, str) else list(v) for k, v in canonical[ticket].items()}
        attempts.append(
            {"attempt_id": secrets.token_hex(8), "ticket": ticket, "status": "submitted",
             "variant": {"ticket": ticket, "digest": digest, "session_id": SESSION_ID,
                         "form_id": None},
             "final_answers": given,
             "submission": {"submitted_at": iso(START + timedelta(minutes=140)),
                            "how": "candidate", "answers": given,
                            "receipt": canonical_hash(given)}}
        )  # fmt: skip
        if ticket == plants.cancelled_ticket:
            # What server.venue.export writes: the kind from the rules, the chief examiner's
            # proposed handling. It cancels nothing until the centre determines it.
            violations.append({"violation_id": 1, "ticket": ticket,
                               "kind": "unauthorised_material", "text": "phone on the desk",
                               "recorded_by": "inv1", "recorded_at": iso(START),
                               "handling": "cancel_subject", "confirmed_by": "chief",
                               "confirmed_at": iso(START), "serious": False})  # fmt: skip
    if venue_index == 0:
        candidates = [
            {"ticket": t, "name": people[t][0], "id_number": people[t][1]} for t in roster
        ]
    else:  # the venue export leaves registration data to the centre
        candidates = [{"ticket": t, "form_id": None} for t in roster]
    return {
        "format": "cbt-response-contents",
        "session": {
            "session_id": SESSION_ID,
            "unlocked_at": iso(START - timedelta(minutes=30)),
            "ended_at": iso(START + timedelta(minutes=125)),
        },
        "candidates": candidates,
        "attempts": attempts,
        "seating": seating if venue_index == 0 else {"plans": [], "seats": seating, "moves": []},
        "absences": absences,
        "incidents": [],
        "violations": violations,
        "time_grants": [],
        "pauses": [],
        "audit": [],
    }


def build_packed_session(root: Path) -> PackedSession:
    init_authority(root / "authority")
    authority = load_authority(root / "authority")
    true_paper = dataclasses.replace(synthetic_paper(100, seed=5), duration_minutes=120)
    true_paper = dataclasses.replace(true_paper, pass_mark=round(true_paper.total_points * 0.6))
    paper, wrong_item, lure = _plant_wrong_key(true_paper)
    devices = {v: crypto.generate_wrapping_key() for v in VENUES}
    signing = {v: crypto.generate_signing_key() for v in VENUES}
    session = _session({v: crypto.public_key_text(devices[v].public_key()) for v in VENUES})
    packed = pack_session(paper, session, authority, root / "out", now=START - timedelta(days=3))
    tickets = [ticket_of(v, n) for v in range(len(VENUES)) for n in range(1, PER_VENUE + 1)]
    people = {t: (f"考生{t}", f"11010119900101{int(t) % 10000:04d}") for t in tickets}
    canonical = simulate(true_paper, tickets, wrong_item, lure, seed=21)
    rng = np.random.default_rng(99)
    for source_n in (1, 13):
        _weaken(canonical[ticket_of(0, source_n)], true_paper, rng)
    copiers = _plant_copiers(canonical, true_paper, 0, rng)
    plants = Plants(
        wrong_key_item=wrong_item,
        mismatch_ticket=ticket_of(1, 30),
        copiers=copiers,
        cancelled_ticket=ticket_of(1, 40),
        absent_marked=ticket_of(0, 50),
        absent_unmarked=ticket_of(1, 55),
    )
    packages = {}
    for v, (venue_id, pack) in enumerate(zip(VENUES, packed, strict=True)):
        unlocked = unlock_at_venue(pack.package_dir, pack.shares_dir, authority, devices[venue_id])
        contents = _contents(v, venue_id, unlocked, canonical, plants, people)
        packages[venue_id] = response_package.build_response_package(
            contents, session_id=SESSION_ID, venue_id=venue_id, export_seq=1,
            created_at=iso(START + timedelta(hours=3)), venue_key=signing[venue_id],
            central_wrap_public=authority.wrapping_public,
        )  # fmt: skip
    return PackedSession(
        root / "authority", paper, true_paper, packages, signing, canonical, plants, people
    )


@pytest.fixture(scope="session")
def packed_session(tmp_path_factory: pytest.TempPathFactory) -> PackedSession:
    """The packed, sat and exported session (built once per test run)."""
    return build_packed_session(tmp_path_factory.mktemp("scoring-session"))


@pytest.fixture(scope="session")
def authority(packed_session: PackedSession) -> Authority:
    return load_authority(packed_session.authority_dir)


async def upload_all(
    database: str, directory: Path, authority: Authority, packed: PackedSession
) -> None:
    """Register both venues and upload their packages to a central app on a loopback port,
    with the venue's own upload client (create, PATCH chunks, finish, verified receipt)."""
    from aiohttp import ClientSession
    from aiohttp.test_utils import TestServer

    from server.central import keys
    from server.central.app import create_app
    from server.central.settings import CentralSettings
    from server.clock import SettableClock
    from server.venue.upload import upload_package

    settings = CentralSettings(
        directory=directory, database=database, log_requests=False, pg_pool_size=2
    )
    app = create_app(settings, clock=SettableClock(START + timedelta(hours=4)), authority=authority)
    async with TestServer(app, host="127.0.0.1") as server, ClientSession() as http:
        for venue, data in packed.packages.items():
            key = packed.venue_keys[venue]
            wrap = crypto.public_key_text(crypto.generate_wrapping_key().public_key())
            signing = crypto.public_key_text(key.public_key())
            record = VenueRecord(venue, f"Centre {venue}", signing, wrap, iso(START))
            await app[keys.STORAGE].add_venue(record)
            url = str(server.make_url("")).rstrip("/")
            await upload_package(
                http, url, data, authority.signing_public, venue_key=key, clock=app[keys.CLOCK]
            )


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty central database on one back-end."""
    if request.param == "sqlite":
        return str(tmp_path / "central.db")
    dsn: str = request.getfixturevalue("pg_database")

    async def reset() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        finally:
            await conn.close()

    asyncio.run(reset())
    return dsn


@pytest.fixture
async def central_store(
    packed_session: PackedSession, authority: Authority, tmp_path: Path
) -> AsyncIterator[CentralStorage]:
    """A fresh SQLite central store holding both venues' uploaded packages."""
    from server.central.app import open_storage

    database = str(tmp_path / "central.db")
    await upload_all(database, tmp_path, authority, packed_session)
    storage = open_storage(database)
    await storage.open()
    await determine_the_planted_violation(storage, packed_session, tmp_path)
    yield storage
    await storage.close()


async def determine_the_planted_violation(
    storage: CentralStorage, packed_session: PackedSession, results_dir: Path
) -> None:
    """The centre's determination of V002's violation (art. 32): operator alice confirms the
    proposed cancellation as a change citing it, operator bob approves; only this cancels."""
    from server.scoring.changes import ChangeRequest, decide_change, propose_change

    ticket = packed_session.plants.cancelled_ticket
    reason = "determined: phone on the desk"
    request = ChangeRequest(ticket, "cancel", reason, evidence="violation:V002/1")
    points = {i.item_id: i.points for i in packed_session.paper.items()}
    change = await propose_change(storage, SESSION_ID, request, "alice", AFTER_END,
                                  item_points=points, results_dir=results_dir)  # fmt: skip
    await decide_change(storage, SESSION_ID, change.change_id, "bob", AFTER_END)
