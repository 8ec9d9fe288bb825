"""Make the central databases of commit 546a924 that the migration tests open.

Run with THAT commit's code, never today's (its own checkout and virtualenv):

    git worktree add --detach /tmp/old546 546a924
    cd /tmp/old546 && python3 -m venv .venv && .venv/bin/pip install -q -e '.[dev]'
    createdb -h /var/run/postgresql cbt_legacy_546a924
    .venv/bin/python /work/wt-schema/tests/server/central/legacy/make_legacy.py \
        /work/wt-schema/tests/server/central/legacy/546a924 \
        --pg 'postgresql:///cbt_legacy_546a924?host=/var/run/postgresql'

It drives that commit's real CLI (`cbt central init`, `venues add`, `staff add`, `results`,
`delete`) and its real app on a loopback port (a release served in the window, staff logins,
a failed login and a logout, uploads with the venue's own client, one upload left half-way),
on SQLite and on PostgreSQL, and scores the session with that commit's scorer. What it wrote
and what it read back are in `expected.json`; the PostgreSQL database is kept as a plain
`pg_dump` (`postgres.sql`). The keys in here are test-only keys made for this fixture.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

from aiohttp import ClientSession, CookieJar
from aiohttp.test_utils import TestServer

from paperpack import crypto
from paperpack.authority import load_authority
from server.central import keys
from server.central.app import create_app
from server.central.settings import CentralSettings
from server.clock import SettableClock, iso
from server.protocol.release import sign_release_request
from server.scoring.pipeline import score_session
from server.venue.upload import upload_package
from tests.server.central.conftest import VenueKeys, make_package
from tests.server.scoring.conftest import AFTER_END, SESSION_ID, START, build_packed_session

PASSWORD = "legacy-pass-0123"  # the staff accounts' password (test-only)
HALF = 1000  # bytes of the half-way upload that were sent


def cbt(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "server.cli", *args], check=True, timeout=300)


async def drive_app(
    central: Path,
    database: str,
    venues: dict[str, VenueKeys],
    out: Path,
    packages: dict[str, bytes],
) -> dict[str, Any]:
    authority = load_authority(out / "authority")
    settings = CentralSettings(
        directory=central, database=database, log_requests=False, pg_pool_size=2
    )
    clock = SettableClock(START - timedelta(minutes=30))
    app = create_app(settings, clock=clock, authority=authority)
    seen: dict[str, Any] = {"receipts": {}}
    async with (
        TestServer(app, host="127.0.0.1") as server,
        ClientSession(cookie_jar=CookieJar(unsafe=True)) as http,
    ):
        url = str(server.make_url("")).rstrip("/")
        body = sign_release_request(venues["V001"].signing, SESSION_ID, "V001", iso(clock.now()))
        resp = await http.post(url + "/api/v1/release", json=body)
        assert resp.status == 200, await resp.text()
        clock.set(START + timedelta(hours=4))
        bad = {"login": "op", "password": "wrong-password-1"}
        assert (await http.post(url + "/api/v1/staff/login", json=bad)).status == 401
        for login in ("op", "aud"):
            resp = await http.post(
                url + "/api/v1/staff/login", json={"login": login, "password": PASSWORD}
            )
            assert resp.status == 200, await resp.text()
            if login == "op":
                csrf = (await resp.json())["csrf_token"]
                resp = await http.post(url + "/api/v1/staff/logout", headers={"X-CSRF-Token": csrf})
                assert resp.status in (200, 204), await resp.text()
                http.cookie_jar.clear()
        half = packages.pop("half")
        for name, data in packages.items():
            result = await upload_package(http, url, data, authority.signing_public)
            seen["receipts"][name] = result.receipt
        digest = hashlib.sha256(half).hexdigest()
        resp = await http.post(
            url + "/api/v1/uploads",
            json={"package_sha256": digest, "size": len(half), "venue_id": "V001"},
        )
        assert resp.status == 201, await resp.text()
        import base64

        checksum = base64.b64encode(hashlib.sha256(half[:HALF]).digest()).decode()
        resp = await http.patch(
            url + f"/api/v1/uploads/{digest}",
            data=half[:HALF],
            headers={"Upload-Offset": "0", "Upload-Checksum": "sha256 " + checksum},
        )
        assert resp.status == 204, await resp.text()
        storage = app[keys.STORAGE]
        seen["audit_events"] = len(await storage.audit_events())
        seen["log"] = [
            [p.log_position, p.package_sha256, p.log_root, p.deleted_at]
            for p in await storage.list_packages()
        ]
    return seen


async def after_cli(database: str, out: Path) -> dict[str, Any]:
    from server.central.app import open_storage

    authority = load_authority(out / "authority")
    storage = open_storage(database, pg_pool_size=2)
    await storage.open()
    try:
        with tempfile.TemporaryDirectory() as folder:
            scored = await score_session(storage, authority, SESSION_ID, AFTER_END, Path(folder))
        events = await storage.audit_events()
        return {
            "totals": {r.score.ticket: r.total for r in scored.results},
            "audit": [[e["seq"], e["action"], e["object"], e["hash"]] for e in events],
            "log": [
                [p.log_position, p.package_sha256, p.log_root, p.deleted_at]
                for p in await storage.list_packages()
            ],
            "staff": [[s.login, s.role, s.active] for s in await storage.list_staff()],
            "venues": [v.venue_id for v in await storage.list_venues()],
            "releases": [[*k, n] for k, n in (await storage.release_counts()).items()],
        }
    finally:
        await storage.close()


def scenario(
    out: Path,
    central: Path,
    database: str | None,
    venues: dict[str, VenueKeys],
    packages: dict[str, bytes],
) -> dict[str, Any]:
    db = ["--database", database] if database else []
    cbt("central", "init", str(central), "--authority", str(out / "authority"))
    url = database or str(central / "central.db")
    password = central.parent / f"{central.name}.password"
    password.write_text(PASSWORD + "\n")
    cbt(
        "central",
        "staff",
        "add",
        str(central),
        "--login",
        "op",
        "--role",
        "operator",
        "--name",
        "Op Erator",
        "--password-file",
        str(password),
        *db,
    )
    cbt(
        "central",
        "staff",
        "add",
        str(central),
        "--login",
        "aud",
        "--role",
        "auditor",
        "--name",
        "Au Ditor",
        "--password-file",
        str(password),
        *db,
    )
    cbt(
        "central",
        "staff",
        "add",
        str(central),
        "--login",
        "gone",
        "--role",
        "operator",
        "--name",
        "Gone Away",
        "--password-file",
        str(password),
        *db,
    )
    cbt("central", "staff", "disable", str(central), "--login", "gone", "--reason", "left", *db)
    password.unlink()
    for venue in venues.values():
        info = central.parent / f"{venue.venue_id}.json"
        record = venue.record()
        info.write_text(
            json.dumps(
                {
                    "venue_id": venue.venue_id,
                    "name": record.name,
                    "sign_public": record.signing_public,
                    "wrap_public": record.wrap_public,
                }
            )
        )
        cbt(
            "central",
            "venues",
            "add",
            str(central),
            "--venue-id",
            venue.venue_id,
            "--public-key",
            str(info),
            *db,
        )
        info.unlink()
    seen = asyncio.run(drive_app(central, url, venues, out, dict(packages)))
    old = next(
        sha
        for _, sha, _, _ in seen["log"]
        if sha == hashlib.sha256(packages["V002-old"]).hexdigest()
    )
    cbt(
        "central",
        "results",
        str(central),
        "--session",
        "S2025-OLD",
        "--published-at",
        "2025-01-01T00:00:00+00:00",
        *db,
    )
    cbt("central", "delete", str(central), "--package", old, *db)
    cbt(
        "central",
        "results",
        str(central),
        "--session",
        SESSION_ID,
        "--published-at",
        iso(AFTER_END + timedelta(days=10)),
        *db,
    )
    return {**seen, **asyncio.run(after_cli(url, out))}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--pg", required=True, help="an EMPTY PostgreSQL database's URL")
    args = parser.parse_args()
    out: Path = args.out
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    with tempfile.TemporaryDirectory() as tmp:
        packed = build_packed_session(Path(tmp))
        shutil.copytree(Path(tmp) / "authority", out / "authority")
    authority = load_authority(out / "authority")
    venues = {
        v: VenueKeys(v, key, crypto.generate_wrapping_key()) for v, key in packed.venue_keys.items()
    }
    packages = dict(packed.packages)
    packages["V002-old"] = make_package(
        venues["V002"], authority, session_id="S2025-OLD", candidates=3, seed=3
    )
    packages["half"] = make_package(
        venues["V001"], authority, session_id="S-HALF", candidates=5, seed=7
    )
    (out / "half-upload.bin").write_bytes(packages["half"])
    (out / "venues").mkdir()
    for v, k in venues.items():
        crypto.write_private_key(out / "venues" / f"{v}.sign.pem", k.signing)
        crypto.write_private_key(out / "venues" / f"{v}.wrap.pem", k.wrapping)
    expected = {"sqlite": scenario(out, out / "central", None, venues, packages)}
    with tempfile.TemporaryDirectory() as tmp:
        expected["postgres"] = scenario(out, Path(tmp) / "central", args.pg, venues, packages)
    dump = subprocess.run(
        ["pg_dump", "--no-owner", "--no-privileges", "--column-inserts", "--dbname", args.pg],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    (out / "postgres.sql").write_text(dump)
    (out / "expected.json").write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
