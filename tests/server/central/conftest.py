"""Fixtures for the central server: an authority, venues, packages, and the app on BOTH stores.

`backend` is parametrised over SQLite and PostgreSQL; PostgreSQL uses a fresh database per
test module (CREATE DATABASE cbt_test_<random>, dropped afterwards) with the schema reset
before each test, and `require`s a server reachable at CBT_TEST_PG_DSN.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import json
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from paperpack import crypto
from paperpack.authority import Authority, init_authority, load_authority
from server.central import keys
from server.central.app import create_app
from server.central.settings import CentralSettings
from server.central.storage import VenueRecord
from server.clock import SettableClock, iso
from server.protocol.response_package import build_response_package, head_length, read_header
from server.protocol.upload_auth import EMPTY_SHA256, sign_upload_request
from server.staffauth import hash_password

START = datetime(2026, 6, 1, 1, 0, tzinfo=UTC)
STAFF_PASSWORD = "central-pass-0123"


@functools.cache
def staff_password_hash() -> str:
    """The test accounts' argon2 hash, computed once per run (hashing is slow on purpose)."""
    return hash_password(STAFF_PASSWORD)


async def reset_pg(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The database URL of one back-end, empty."""
    if request.param == "sqlite":
        return str(tmp_path / "central.db")
    dsn: str = request.getfixturevalue("pg_database")
    asyncio.run(reset_pg(dsn))
    return dsn


@pytest.fixture(scope="session")
def authority_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("authority") / "auth"
    init_authority(path)
    return path


@pytest.fixture(scope="session")
def authority(authority_dir: Path) -> Authority:
    return load_authority(authority_dir)


@dataclass(frozen=True)
class VenueKeys:
    venue_id: str
    signing: crypto.Ed25519PrivateKey
    wrapping: crypto.X25519PrivateKey

    def record(self) -> VenueRecord:
        return VenueRecord(
            self.venue_id,
            f"Venue {self.venue_id}",
            crypto.public_key_text(self.signing.public_key()),
            crypto.public_key_text(self.wrapping.public_key()),
            iso(START),
        )


def new_venue(venue_id: str) -> VenueKeys:
    return VenueKeys(venue_id, crypto.generate_signing_key(), crypto.generate_wrapping_key())


def sample_contents(
    session_id: str, venue_id: str, candidates: int, seed: int = 0
) -> dict[str, Any]:
    """Plain response data as a venue exports it: journals, final answers, seating, events."""
    attempts = []
    for n in range(candidates):
        ticket = f"T{seed:03d}{n:05d}"
        final = {f"i{k}": [f"o{(n + k + seed) % 4}"] for k in range(20)}
        journal = [
            {"seq": s, "position": s, "saved_at": iso(START),
             "responses": {f"i{s}": final[f"i{s}"]},
             "prev_hash": "0" * 64, "hash": secrets.token_hex(32)}
            for s in range(1, 4)
        ]  # fmt: skip
        attempts.append(
            {"attempt_id": f"a{n}", "ticket": ticket, "status": "submitted", "journal": journal,
             "final_answers": final,
             "submission": {"submitted_at": iso(START), "how": "candidate", "answers": final},
             "variant": {"ticket": ticket, "digest": secrets.token_hex(32)}}
        )  # fmt: skip
    return {
        "format": "cbt-response-contents",
        "session": {"session_id": session_id, "unlocked_at": iso(START)},
        "attempts": attempts,
        "seating": [
            {"ticket": a["ticket"], "room_id": "R1", "seat_no": i + 1}
            for i, a in enumerate(attempts)
        ],
        "absences": [],
        "incidents": [],
        "violations": [],
        "time_grants": [],
        "pauses": [],
        "audit": [],
    }


def make_package(
    venue: VenueKeys,
    authority: Authority,
    *,
    session_id: str = "S1",
    export_seq: int = 1,
    candidates: int = 5,
    seed: int = 0,
    contents: dict[str, Any] | None = None,
) -> bytes:
    return build_response_package(
        contents or sample_contents(session_id, venue.venue_id, candidates, seed),
        session_id=session_id,
        venue_id=venue.venue_id,
        export_seq=export_seq,
        created_at=iso(START),
        venue_key=venue.signing,
        central_wrap_public=authority.wrapping_public,
    )


@dataclass
class Central:
    client: TestClient[Any, Any]
    clock: SettableClock
    database: str
    logins: dict[str, dict[str, str]] = field(default_factory=dict)
    venues: dict[str, VenueKeys] = field(default_factory=dict)  # registered here, by id

    @property
    def app(self) -> Any:
        return self.client.server.app

    @property
    def storage(self) -> Any:
        return self.app[keys.STORAGE]

    @property
    def url(self) -> str:
        return str(self.client.make_url("")).rstrip("/")

    async def register(self, venue: VenueKeys) -> None:
        await self.storage.add_venue(venue.record())
        self.venues[venue.venue_id] = venue

    def signer(self, data: bytes) -> dict[str, Any]:
        """`upload_package`'s options signing as the venue the package names (registered
        here), at the centre's clock."""
        return {"venue_key": self.venues[read_header(data).venue_id].signing, "clock": self.clock}

    def signed(
        self, venue: VenueKeys, method: str, path: str, content: str = EMPTY_SHA256,
        offset: str = "",
    ) -> dict[str, str]:  # fmt: skip
        """The Authorization header of one upload call signed by `venue` now."""
        value = sign_upload_request(
            venue.signing, venue.venue_id, method, path, iso(self.clock.now()), content, offset
        )
        return {"Authorization": value}

    async def create(self, venue: VenueKeys, data: bytes, **fields: Any) -> Any:
        """POST /api/v1/uploads for `data` as its venue's uploader sends it (`fields` override)."""
        body = json.dumps(
            {"package_sha256": hashlib.sha256(data).hexdigest(), "size": len(data),
             "venue_id": venue.venue_id,
             "head": base64.b64encode(data[: head_length(data)]).decode(), **fields}
        ).encode()  # fmt: skip
        headers = self.signed(venue, "POST", "/api/v1/uploads", hashlib.sha256(body).hexdigest())
        headers["Content-Type"] = "application/json"
        return await self.client.post("/api/v1/uploads", data=body, headers=headers)

    async def patch(self, venue: VenueKeys, digest: str, chunk: bytes, offset: int) -> Any:
        """One signed PATCH of `chunk` at `offset`."""
        checksum = hashlib.sha256(chunk).digest()
        headers = {
            **self.signed(venue, "PATCH", f"/api/v1/uploads/{digest}", checksum.hex(), str(offset)),
            "Upload-Offset": str(offset),
            "Upload-Checksum": "sha256 " + base64.b64encode(checksum).decode(),
        }
        return await self.client.patch(f"/api/v1/uploads/{digest}", data=chunk, headers=headers)

    async def call(self, venue: VenueKeys, method: str, path: str) -> Any:
        """A signed HEAD, GET or finish (no body)."""
        return await self.client.request(method, path, headers=self.signed(venue, method, path))

    async def add_staff(self, login: str, role: str = "operator") -> None:
        """A central staff account with the test password, as `cbt central staff add` makes."""
        await self.storage.add_staff(
            login, login.title(), role, staff_password_hash(), "cli:test", iso(self.clock.now())
        )

    async def login(self, login: str, password: str = STAFF_PASSWORD) -> dict[str, str]:
        """Log in through the JSON API; the headers of that staff member's own requests."""
        resp = await self.client.post(
            "/api/v1/staff/login", json={"login": login, "password": password}
        )
        assert resp.status == 200, await resp.text()
        csrf = (await resp.json())["csrf_token"]
        cookie = resp.cookies["cbt_central"].value
        assert resp.cookies["cbt_central_csrf"].value == csrf
        # Keep each login's cookies to its own requests, never in the shared jar.
        self.client.session.cookie_jar.clear()
        return {"Cookie": f"cbt_central={cookie}; cbt_central_csrf={csrf}", "X-CSRF-Token": csrf}

    async def as_staff(self, login: str = "operator", role: str = "operator") -> dict[str, str]:
        """Headers of a logged-in staff member (the account is made on first use)."""
        if login not in self.logins:
            await self.add_staff(login, role)
            self.logins[login] = await self.login(login)
        return self.logins[login]


CentralFactory = Callable[..., Any]


@pytest.fixture
async def central(
    aiohttp_client: Any, database: str, tmp_path: Path, authority: Authority
) -> AsyncIterator[Central]:
    """The central app on a real loopback port, on the parametrised back-end."""
    settings = CentralSettings(
        directory=tmp_path, database=database, log_requests=False, pg_pool_size=4
    )
    clock = SettableClock(START)
    app = create_app(settings, clock=clock, authority=authority)
    client = await aiohttp_client(app)
    yield Central(client, clock, database)
