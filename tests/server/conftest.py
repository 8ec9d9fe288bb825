"""Fixtures for server tests: a real sealed package for a real venue, and the venue app.

`venue_template` (once per test run) packs a synthetic paper with paperpack's own pack API for
venue V001 (3 share cards, any 2 unlock), creates the venue directory with four staff
accounts, 50 roster rows and a seat plan, and pins the authority key. `venue_kit` copies that
directory for one test and starts the real venue app in process (pytest-aiohttp) with an
injected SettableClock; its helpers log staff in, import, unlock and log candidates in.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from paperpack.authority import init_authority, load_authority
from paperpack.crypto import public_key_text
from paperpack.model import Paper
from paperpack.pack import pack_venue
from paperpack.release import issue_release
from paperpack.session import session_from_dict
from paperpack.synthetic import synthetic_paper
from server.clock import SettableClock
from server.staffauth import hash_password
from server.store import transaction
from server.venue.app import create_app
from server.venue.settings import Settings
from server.venue.staff import add_staff
from server.venue.workspace import init_venue, load_venue, open_venue_db
from tests.conftest import require

START = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)  # the exam starts; the window opens at 08:00
BEFORE_WINDOW = START - timedelta(minutes=61)
IN_WINDOW = START - timedelta(minutes=30)
SESSION_ID = "S1"
VENUE_ID = "V001"
PASSWORD = "correct horse battery"
STAFF = {
    "admin": "system_administrator",
    "chief": "chief_examiner",
    "inv1": "invigilator",
    "inv2": "invigilator",
}
CANDIDATES = 50
ROOM_COLUMNS = 10


def ticket(n: int) -> str:
    return f"T{n:04d}"


def id_number(n: int) -> str:
    return f"11010119900101{n:04d}"


@dataclass(frozen=True)
class VenueTemplate:
    directory: Path  # the venue directory to copy
    package_dir: Path  # the sealed package for V001
    cards: dict[int, str]  # holder number -> share card text
    release_code: str
    release_record: dict[str, Any]
    duration_minutes: int
    authority_dir: Path  # the centre's keys (for a real central server in tests)


def pack_for_venue(
    root: Path,
    paper: Paper,
    *,
    session_id: str,
    venue_id: str,
    venue_name: str,
    wrap_public: str,
    start: datetime,
    rules: dict[str, int] | None = None,
    **session_fields: Any,
) -> tuple[Path, dict[int, str], Any]:
    """Pack `paper` for one venue (3 share cards, any 2 unlock) with a new authority in
    `root/authority`; returns the package, the cards by holder and the time release.
    `rules`: the session's signed rule overrides (none: the regulation's defaults);
    `session_fields`: more of the session file (e.g. its inspection checklist)."""
    init_authority(root / "authority")
    authority = load_authority(root / "authority")
    session = session_from_dict(
        {
            "session_id": session_id,
            "subject": {"code": paper.subject_code, "name": paper.subject_name},
            "start": start.isoformat(),
            "duration_minutes": paper.duration_minutes,
            "rules": rules or {},
            "venues": [
                {
                    "id": venue_id,
                    "name": venue_name,
                    "public_key": wrap_public,
                    "supervisors": 3,
                    "threshold": 2,
                }
            ],
            **session_fields,
        }
    )
    packed = pack_venue(
        paper, session, session.venues[0], authority, root / "out", now=start - timedelta(days=3)
    )
    cards = {
        int(p.stem.split("-")[1]): p.read_text(encoding="utf-8")
        for p in sorted(packed.shares_dir.glob("holder-*.txt"))
    }
    release = issue_release(authority, session_id, venue_id, now=start - timedelta(hours=1))
    (root / "authority-sign.pub").write_text(public_key_text(authority.signing_public) + "\n")
    return packed.package_dir, cards, release


def pack_another(
    template: VenueTemplate,
    root: Path,
    session_id: str,
    *,
    paper: Paper | None = None,
    practice: bool = False,
    start: datetime = START,
    **session_fields: Any,
) -> tuple[Path, dict[int, str], str]:
    """Another package for the template's venue from (a copy in `root` of) the template's
    authority (3 cards, any 2 unlock): `session_fields` go into the session file
    (inspection, rules over TEMPLATE_RULES, manifest_version). Returns the package, cards by
    holder, release code."""
    if not (root / "authority").exists():  # a copy: packing records versions in it
        shutil.copytree(template.authority_dir, root / "authority")
    authority = load_authority(root / "authority")
    paper = paper or dataclasses.replace(
        synthetic_paper(8, seed=11), subject_code="ECON", subject_name="Economics"
    )
    venue = load_venue(template.directory)
    session = session_from_dict(
        {
            "session_id": session_id,
            "subject": {"code": paper.subject_code, "name": paper.subject_name},
            "start": start.isoformat(),
            "duration_minutes": paper.duration_minutes,
            "venues": [
                {
                    "id": VENUE_ID,
                    "name": "Test centre",
                    "public_key": venue.wrap_public,
                    "supervisors": 3,
                    "threshold": 2,
                }
            ],
            **session_fields,
            "rules": {**TEMPLATE_RULES, **session_fields.get("rules", {})},
        }
    )
    packed = pack_venue(
        paper, session, session.venues[0], authority, root / "out", now=start - timedelta(days=3),
        practice=practice,
    )  # fmt: skip
    cards = {
        int(p.stem.split("-")[1]): p.read_text(encoding="utf-8")
        for p in sorted(packed.shares_dir.glob("holder-*.txt"))
    }
    release = issue_release(authority, session_id, VENUE_ID, now=start - timedelta(hours=1))
    return packed.package_dir, cards, release.code


# The shared template's session asks for no identity check (art. 30, `identity_check`): its
# tests are about other things and answer at once; tests/server/venue/test_art30_identity.py
# packs the regulation's default (checked before answering).
TEMPLATE_RULES = {"identity_check": 0}


def _pack(
    root: Path, wrap_public: str, duration: int, rules: dict[str, int] | None = None
) -> tuple[Path, dict[int, str], Any]:
    paper = synthetic_paper(24, seed=7)
    paper = dataclasses.replace(
        paper, subject_code="ECON", subject_name="Economics", duration_minutes=duration
    )
    return pack_for_venue(
        root,
        paper,
        session_id=SESSION_ID,
        venue_id=VENUE_ID,
        venue_name="Test centre",
        wrap_public=wrap_public,
        start=START,
        rules=TEMPLATE_RULES if rules is None else rules,
    )


def _populate(directory: Path) -> None:
    db = open_venue_db(directory)
    now = START - timedelta(days=1)
    with transaction(db):
        for login, role in STAFF.items():
            add_staff(
                db, login, login.title(), role, hash_password(PASSWORD), actor="cli:test", now=now
            )
        db.execute(
            "INSERT INTO rooms (room_id, name, rows, columns, spare_seats) VALUES (?, ?, ?, ?, ?)",
            ("R1", "Room 1", 6, ROOM_COLUMNS, 10),
        )
        db.execute(
            "INSERT INTO seeds (session_id, purpose, seed, created_at, created_by)"
            " VALUES (?, 'seats', ?, ?, 'cli:test')",
            (SESSION_ID, "00" * 32, now.isoformat()),
        )
        # Both invigilators drawn to R1 (an invigilator acts only on their rooms, art. 31).
        db.execute(
            "INSERT INTO invigilator_assignments (session_id, staff_id, room_id, seed_id)"
            " SELECT ?, staff_id, 'R1', 1 FROM staff WHERE role = 'invigilator'",
            (SESSION_ID,),
        )
        db.execute(
            "INSERT INTO seat_plans (session_id, seed_id, algorithm, roster_hash, rooms_hash,"
            " plan_hash, created_at, created_by)"
            " VALUES (?, 1, 'test/1', '', '', '', ?, 'cli:test')",
            (SESSION_ID, now.isoformat()),
        )
        for n in range(1, CANDIDATES + 1):
            db.execute(
                "INSERT INTO candidates (session_id, ticket, name, id_number, subject, row_no,"
                " imported_at) VALUES (?, ?, ?, ?, 'ECON', ?, ?)",
                (SESSION_ID, ticket(n), f"Candidate {n}", id_number(n), n + 1, now.isoformat()),
            )
            db.execute(
                "INSERT INTO seats (session_id, ticket, plan_id, room_id, seat_no, row_no,"
                " column_no) VALUES (?, ?, 1, 'R1', ?, ?, ?)",
                (SESSION_ID, ticket(n), n, (n - 1) // ROOM_COLUMNS + 1, (n - 1) % ROOM_COLUMNS + 1),
            )
    db.close()


def build_template(
    root: Path, duration: int = 120, rules: dict[str, int] | None = None
) -> VenueTemplate:
    venue = init_venue(root / "venue", VENUE_ID, "Test centre", now=START - timedelta(days=5))
    package_dir, cards, release = _pack(root, venue.wrap_public, duration, rules)
    shutil.copy(root / "authority-sign.pub", venue.keys_dir / "authority-sign.pub")
    _populate(venue.directory)
    return VenueTemplate(
        venue.directory,
        package_dir,
        cards,
        release.code,
        release.record,
        duration,
        root / "authority",
    )


@pytest.fixture(scope="session")
def venue_template(tmp_path_factory: pytest.TempPathFactory) -> VenueTemplate:
    """A packed 120-minute session S1 for venue V001 and a populated venue directory."""
    return build_template(tmp_path_factory.mktemp("venue-template"))


@dataclass
class StaffLogin:
    login: str
    headers: dict[str, str]


@dataclass
class Candidate:
    ticket: str
    token: str
    attempt: dict[str, Any]

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class VenueKit:
    """The running venue app for one test, with helpers that go through the real API."""

    client: TestClient[Any, Any]
    clock: SettableClock
    template: VenueTemplate
    directory: Path
    staff: dict[str, StaffLogin] = field(default_factory=dict)

    @property
    def app(self) -> web.Application:
        return self.client.app  # type: ignore[return-value]

    async def login_staff(self, login: str) -> StaffLogin:
        resp = await self.client.post(
            "/api/v1/staff/login", json={"login": login, "password": PASSWORD}
        )
        assert resp.status == 200, await resp.text()
        body = await resp.json()
        cookie = resp.cookies["cbt_staff"].value
        # Keep each staff member's cookie to their own requests, never in the shared jar.
        self.client.session.cookie_jar.clear()
        found = StaffLogin(
            login, {"Cookie": f"cbt_staff={cookie}", "X-CSRF-Token": body["csrf_token"]}
        )
        self.staff[login] = found
        return found

    async def as_staff(self, login: str) -> dict[str, str]:
        if login not in self.staff:
            await self.login_staff(login)
        return self.staff[login].headers

    async def import_package(
        self, path: Path | None = None, confirm_by: str = "chief"
    ) -> dict[str, Any]:
        """The two-person import (art. 23(4)): the administrator imports, `confirm_by`
        confirms under their own login; returns the confirmation (the package in force)."""
        resp = await self.client.post(
            "/api/v1/staff/packages",
            json={"path": str(path or self.template.package_dir)},
            headers=await self.as_staff("admin"),
        )
        assert resp.status == 201, await resp.text()
        staged = await resp.json()
        assert staged["status"] == "pending"
        resp = await self.client.post(
            f"/api/v1/staff/packages/{staged['package_id']}/confirm",
            headers=await self.as_staff(confirm_by),
        )
        assert resp.status == 200, await resp.text()
        return dict(await resp.json())

    async def unlock(self) -> dict[str, Any]:
        """Import, open the ceremony, two supervisors' shares and the release code."""
        await self.import_package()
        resp = await self.client.post(
            "/api/v1/staff/ceremony",
            json={"session_id": SESSION_ID},
            headers=await self.as_staff("admin"),
        )
        assert resp.status == 201, await resp.text()
        for login, holder in (("chief", 1), ("inv1", 2)):
            resp = await self.client.post(
                "/api/v1/staff/ceremony/shares",
                json={"share": self.template.cards[holder]},
                headers=await self.as_staff(login),
            )
            assert resp.status == 200, await resp.text()
        resp = await self.client.post(
            "/api/v1/staff/ceremony/release",
            json={"code": self.template.release_code},
            headers=await self.as_staff("admin"),
        )
        assert resp.status == 200, await resp.text()
        body = dict(await resp.json())
        assert body["status"] == "unlocked"
        return body

    async def login_candidate(self, n: int) -> Candidate:
        resp = await self.client.post(
            "/api/v1/candidate/login", json={"ticket": ticket(n), "id_number": id_number(n)}
        )
        assert resp.status == 200, await resp.text()
        body = await resp.json()
        return Candidate(ticket(n), body["token"], body["attempt"])


async def start_venue(
    template: VenueTemplate, tmp_path: Path, aiohttp_client: Any, **settings: Any
) -> VenueKit:
    """A fresh copy of the template venue served by the real app; the clock at 08:30."""
    directory = tmp_path / "venue"
    shutil.copytree(template.directory, directory)
    clock = SettableClock(IN_WINDOW)
    options = {"log_requests": False, "close_interval_s": 3600, **settings}
    client = await aiohttp_client(create_app(Settings(venue_dir=directory, **options), clock=clock))
    return VenueKit(client, clock, template, directory)


@pytest.fixture
async def venue_kit(venue_template: VenueTemplate, tmp_path: Path, aiohttp_client: Any) -> VenueKit:
    """A fresh copy of the template venue served by the real app; the clock at 08:30."""
    return await start_venue(venue_template, tmp_path, aiohttp_client)


# --- PostgreSQL for the central store's tests (central and scoring) ---------------------

PG_DSN = os.environ.get("CBT_TEST_PG_DSN", "postgresql:///postgres?host=/var/run/postgresql")


def with_database(dsn: str, name: str) -> str:
    """The DSN `dsn` pointed at database `name`."""
    parts = urlsplit(dsn)
    query = f"?{parts.query}" if parts.query else ""
    return f"{parts.scheme}://{parts.netloc}/{name}{query}"


def _pg_available() -> bool:
    async def probe() -> bool:
        try:
            conn = await asyncpg.connect(PG_DSN, timeout=3)
        except (OSError, asyncpg.PostgresError):
            return False
        await conn.close()
        return True

    return asyncio.run(probe())


@pytest.fixture(scope="module")
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this test module; dropped at the end."""
    require(
        _pg_available(), f"PostgreSQL not reachable at {PG_DSN}: set CBT_TEST_PG_DSN or start it"
    )
    name = "cbt_test_" + secrets.token_hex(6)

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(PG_DSN)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    yield with_database(PG_DSN, name)
    asyncio.run(admin(f'DROP DATABASE "{name}" WITH (FORCE)'))
