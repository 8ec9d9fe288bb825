"""Browser tests: the real venue server on a real port, driven by Debian's Chromium.

`exam_venue` (once per run) packs the sample paper (examples/paper.yaml: every item type,
Chinese and English, an image, forms A/B) for venue BJ-001, and sets the venue up the way an
administrator does: rooms from examples/rooms.yaml, the roster examples/roster.csv (30
candidates), the seeded seat draw, four staff accounts. `live_venue` copies it and serves the
real app from a background thread with an injected clock, so a test can move time to the
start, the sealed period or the end; `browser` is one headless Chromium per test module.
`central_url` serves the real central app (SQLite) with one operator, li.na, two registered
venues and one release served.
"""

from __future__ import annotations

import asyncio
import csv
import json
import shutil
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from paperpack import crypto
from paperpack.authority import init_authority, load_authority
from paperpack.paperfile import load_paper
from server.central.app import create_app as create_central_app
from server.central.app import open_storage
from server.central.settings import CentralSettings
from server.central.storage import VenueRecord
from server.clock import SettableClock
from server.staffauth import hash_password
from server.store import transaction
from server.venue.app import create_app
from server.venue.photos import import_roster_photos
from server.venue.rooms import load_rooms, store_rooms
from server.venue.roster import import_roster_file
from server.venue.seats import draw_seats
from server.venue.settings import Settings
from server.venue.staff import add_staff
from server.venue.workspace import init_venue, open_venue_db
from tests.conftest import EXAMPLES, require
from tests.server.conftest import pack_for_venue

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
START = datetime(2026, 11, 7, 1, 0, tzinfo=UTC)  # 09:00 in Beijing
SESSION_ID = "2026H2-27-AM"
VENUE_ID = "BJ-001"
PASSWORD = "correct horse battery"
CENTRAL_PASSWORD = "operator-pass-2026"  # li.na's, at the centre
STAFF = {
    "admin": ("system_administrator", "王管理 / Admin Wang"),
    "chief": ("chief_examiner", "李主考 / Chief Li"),
    "inv1": ("invigilator", "张监考 / Invigilator Zhang"),
    "inv2": ("invigilator", "刘监考 / Invigilator Liu"),
}


@dataclass(frozen=True)
class ExamVenue:
    directory: Path  # the prepared venue directory, copied per test
    package_dir: Path
    cards: dict[int, str]  # holder number -> share card text
    release_code: str
    candidates: list[dict[str, str]]  # roster rows (ticket, name, id_number, ...)


# The shared venue's session asks for no identity check (art. 30): its tests answer at once;
# tests/client/test_room_rules.py packs the regulation's default.
SAMPLE_RULES = {"identity_check": 0}
# The inspection checklist the centre signs into the sample package (art. 21(3)).
INSPECTION = (
    "每台考试机均显示登录页 / Every room PC shows the login page",
    "备份盘已挂载 / The backup disk is mounted",
)


def _pack_sample(
    root: Path, wrap_public: str, rules: dict[str, int] | None = None
) -> tuple[Path, dict[int, str], str]:
    package_dir, cards, release = pack_for_venue(
        root,
        load_paper(EXAMPLES / "paper.yaml"),
        session_id=SESSION_ID,
        venue_id=VENUE_ID,
        venue_name="北京 第一考点 / Beijing centre 1",
        wrap_public=wrap_public,
        start=START,
        rules=SAMPLE_RULES if rules is None else rules,
        inspection=list(INSPECTION),
    )
    return package_dir, cards, release.code


def _set_up_venue(directory: Path) -> None:
    db = open_venue_db(directory)
    now = START - timedelta(days=1)
    with transaction(db):
        for login, (role, name) in STAFF.items():
            add_staff(db, login, name, role, hash_password(PASSWORD), actor="cli:test", now=now)
        store_rooms(db, load_rooms(EXAMPLES / "rooms.yaml"), actor="cli:test", now=now)
        import_roster_file(
            db, EXAMPLES / "roster.csv", SESSION_ID, actor="cli:test", now=now, subject="27"
        )
        import_roster_photos(db, SESSION_ID, EXAMPLES, directory / "photos")
        # Drawn before the package is imported: a venue seed, and no forms (none are known yet).
        draw_seats(db, SESSION_ID, actor="cli:test", now=now, seed=b"\x01" * 32)
        # An invigilator acts only on their drawn room (art. 31): inv1 has R101, inv2 R102
        # (two accounts cannot fill the real draw's two per room).
        db.execute(
            "INSERT INTO invigilator_assignments (session_id, staff_id, room_id, seed_id)"
            " SELECT ?, staff_id, CASE login WHEN 'inv1' THEN 'R101' ELSE 'R102' END,"
            " (SELECT MAX(seed_id) FROM seeds) FROM staff WHERE role = 'invigilator'",
            (SESSION_ID,),
        )
    db.close()


@pytest.fixture(scope="session")
def exam_venue(tmp_path_factory: pytest.TempPathFactory) -> ExamVenue:
    root = tmp_path_factory.mktemp("exam-venue")
    venue = init_venue(root / "venue", VENUE_ID, "北京 第一考点", now=START - timedelta(days=5))
    package_dir, cards, code = _pack_sample(root, venue.wrap_public)
    shutil.copy(root / "authority-sign.pub", venue.keys_dir / "authority-sign.pub")
    _set_up_venue(venue.directory)
    with (EXAMPLES / "roster.csv").open(encoding="utf-8-sig") as handle:
        candidates = list(csv.DictReader(handle))
    return ExamVenue(venue.directory, package_dir, cards, code, candidates)


@dataclass
class LiveVenue:
    """The real venue app on a real loopback port, served from a background thread."""

    directory: Path
    clock: SettableClock
    exam: ExamVenue
    port: int = 0
    staff_headers: dict[str, dict[str, str]] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)  # more Settings (a central URL)
    _loop: asyncio.AbstractEventLoop | None = None
    _runner: web.AppRunner | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        ready = threading.Event()

        async def serve() -> None:
            settings = Settings(venue_dir=self.directory, log_requests=False, **self.settings)
            self._runner = web.AppRunner(create_app(settings, clock=self.clock))
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            await site.start()
            server = site._server
            assert server is not None
            self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            ready.set()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            self._loop.run_until_complete(serve())
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        assert ready.wait(30), "the venue server did not start"

    def stop(self) -> None:
        assert self._loop is not None and self._runner is not None
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        assert self._thread is not None
        self._thread.join(30)
        self._loop.close()  # an unclosed loop warns when collected, in whichever test that is

    def call(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any, Any]:
        """One JSON request; returns (status, parsed body, response headers)."""
        data = None if body is None else json.dumps(body).encode()
        # Only ever http://127.0.0.1:<port>: the URL is built here, never taken from input.
        request = urllib.request.Request(self.url + path, data=data, method=method)  # noqa: S310
        request.add_header("Content-Type", "application/json")
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 (loopback)
                return response.status, json.loads(response.read() or b"null"), response.headers
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null"), error.headers

    def staff(self, login: str) -> dict[str, str]:
        if login not in self.staff_headers:
            status, body, headers = self.call(
                "POST", "/api/v1/staff/login", {"login": login, "password": PASSWORD}
            )
            assert status == 200, body
            cookie = headers["Set-Cookie"].split(";")[0]
            self.staff_headers[login] = {"Cookie": cookie, "X-CSRF-Token": body["csrf_token"]}
        return self.staff_headers[login]

    def import_package(self) -> None:
        """The two-person import (art. 23(4)): the administrator, then the chief confirms."""
        status, body, _ = self.call(
            "POST",
            "/api/v1/staff/packages",
            {"path": str(self.exam.package_dir)},
            self.staff("admin"),
        )
        assert status == 201 and body["status"] == "pending", body
        status, body, _ = self.call(
            "POST",
            f"/api/v1/staff/packages/{body['package_id']}/confirm",
            None,
            self.staff("chief"),
        )
        assert status == 200 and body["status"] == "in_force", body

    def unlock(self) -> None:
        """Import, then the ceremony through the API: two supervisors and the release code."""
        self.import_package()
        status, body, _ = self.call(
            "POST", "/api/v1/staff/ceremony", {"session_id": SESSION_ID}, self.staff("admin")
        )
        assert status == 201, body
        for login, holder in (("chief", 1), ("inv1", 2)):
            status, body, _ = self.call(
                "POST",
                "/api/v1/staff/ceremony/shares",
                {"share": self.exam.cards[holder]},
                self.staff(login),
            )
            assert status == 200, body
        status, body, _ = self.call(
            "POST",
            "/api/v1/staff/ceremony/release",
            {"code": self.exam.release_code},
            self.staff("admin"),
        )
        assert status == 200 and body["status"] == "unlocked", body

    def candidate(self, n: int) -> dict[str, str]:
        return self.exam.candidates[n]


@pytest.fixture
def live_venue(exam_venue: ExamVenue, tmp_path: Path) -> Iterator[LiveVenue]:
    """A fresh copy of the prepared venue, served for one test; the clock in the window."""
    directory = tmp_path / "venue"
    shutil.copytree(exam_venue.directory, directory)
    live = LiveVenue(directory, SettableClock(START - timedelta(minutes=30)), exam_venue)
    live.start()
    yield live
    live.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Debian Chromium per test module (never a downloaded browser).

    Module scope, not session: Playwright's sync API keeps an event loop running in this
    thread while it is open, and the async tests of later modules need the thread's loop free.
    """
    require(
        CHROMIUM.exists(),
        "Chromium not found at /usr/bin/chromium: apt-get install -y chromium",
    )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def screenshot_dir() -> Path | None:
    """Where to write screenshots for docs/ (set CBT_SCREENSHOTS=docs/screenshots), or None."""
    import os

    target = os.environ.get("CBT_SCREENSHOTS")
    if not target:
        return None
    path = Path(target)
    path.mkdir(parents=True, exist_ok=True)
    return path


async def _add_operator(database: Path) -> None:
    """One operator, two registered venues, and one release served (a row on the status page)."""
    storage = open_storage(str(database))
    await storage.open()
    try:
        await storage.add_staff(
            "li.na", "李娜 / Li Na", "operator", hash_password(CENTRAL_PASSWORD), "cli:test",
            "2026-11-01T00:00:00.000Z",
        )  # fmt: skip
        for venue_id in ("BJ-001", "BJ-002"):
            signing, wrapping = crypto.generate_signing_key(), crypto.generate_wrapping_key()
            await storage.add_venue(
                VenueRecord(
                    venue_id, venue_id, crypto.public_key_text(signing.public_key()),
                    crypto.public_key_text(wrapping.public_key()), "2026-11-01T00:00:00.000Z",
                )
            )  # fmt: skip
        at = "2026-11-07T00:45:00.000Z"
        await storage.record_release("2026H2-27-AM", "BJ-001", at, at)
    finally:
        await storage.close()


@pytest.fixture
def central_url(tmp_path: Path) -> Iterator[str]:
    """The central server with one operator (li.na), served for one test."""
    init_authority(tmp_path / "authority")
    authority = load_authority(tmp_path / "authority")
    settings = CentralSettings(directory=tmp_path, log_requests=False)
    ready, state = threading.Event(), {}

    async def serve() -> None:
        # In the server's own loop: Playwright's sync API keeps this thread's loop busy.
        await _add_operator(tmp_path / "central.db")
        runner = web.AppRunner(create_central_app(settings, authority=authority))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        state["port"] = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        state["runner"] = runner
        ready.set()

    loop = asyncio.new_event_loop()

    def run() -> None:
        loop.run_until_complete(serve())
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(30), "the central server did not start"
    yield f"http://127.0.0.1:{state['port']}"
    asyncio.run_coroutine_threadsafe(state["runner"].cleanup(), loop).result(30)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(30)
    loop.close()  # an unclosed loop warns when collected, in whichever test that happens
