"""schemathesis against both servers: no 5xx, and every reply as documented.

Each server runs for real on a loopback port (the app in a thread of its own, with the
tests' SettableClock), set up so that most operations can succeed. The venue has its package
imported and unlocked, the exam running and a candidate logged in; one run uses the chief
examiner's session on every operation, a shorter one the administrator's on the
administrator's own operations. The centre (on SQLite and on PostgreSQL) has a registered
venue, an accepted upload, a half-sent upload and an auditor's session; one run covers every
operation, a shorter one the upload operations on the half-sent upload. Each run is
`st run` (schemathesis's command line, a dev dependency) on the server's own
/api/v1/openapi.json within a time budget: the document's examples, the boundaries of every
documented limit (coverage), then random valid and invalid requests (fuzzing), with all of
schemathesis's checks (no 5xx, status codes, content types, headers and bodies as
documented, schema-violating requests refused, auth not ignored, Allow on 405) but those in
EXCLUDED_CHECKS, which cannot hold for this API.

It takes about a minute and a quarter per server and store, so it runs in CI
(CBT_REQUIRE_ALL=1) and otherwise only when asked:
`CBT_SCHEMATHESIS_S=60 python -m pytest tests/server/test_schemathesis.py`.
The budget of a main run is CBT_SCHEMATHESIS_S seconds (60 by default), of a shorter one a
quarter of it; each run's whole output and JSON report are left in the test's tmp_path.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from paperpack.authority import init_authority, load_authority
from server.central import keys as central_keys
from server.central.app import create_app as create_central
from server.central.settings import CentralSettings
from server.clock import SettableClock, iso
from server.staffauth import hash_password
from server.venue.app import create_app as create_venue
from server.venue.settings import Settings
from server.venue.upload import upload_package
from tests.conftest import REPO_ROOT
from tests.server.central.conftest import START as CENTRAL_START
from tests.server.central.conftest import Central, make_package, new_venue
from tests.server.conftest import IN_WINDOW, START, StaffLogin, VenueKit, VenueTemplate

T = TypeVar("T")
BUDGET_S = int(os.environ.get("CBT_SCHEMATHESIS_S", "60"))
RUN = os.environ.get("CBT_REQUIRE_ALL") == "1" or "CBT_SCHEMATHESIS_S" in os.environ
EXCLUDED_CHECKS = {
    # Valid data is refused for reasons of state on most operations (a share that is not a
    # real card, a seat already taken, a release outside its window): 4xx is the right answer.
    "positive_data_acceptance": "valid bodies are refused by the exam's rules and state",
    # Fuzzed ids point at objects that do not exist, and the API says so with 404.
    "use_after_free": "no resource is deleted by this API",
    "ensure_resource_availability": "no resource is created and then listed by id",
}
AUDITOR_PASSWORD = "auditor-pass-0123"

pytestmark = pytest.mark.skipif(
    not RUN, reason="set CBT_SCHEMATHESIS_S=60 to run schemathesis here (CI always runs it)"
)


class LoopThread:
    """An event loop in a thread of its own: the servers answer while `st` runs."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=120)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


@pytest.fixture(scope="module")
def loop_thread() -> Iterator[LoopThread]:
    looper = LoopThread()
    yield looper
    looper.close()


@dataclass
class Run:
    """One `st run` on a server: credentials per security scheme of its document, headers for
    every request, which operations (by operationId) and fixed parameter values."""

    name: str
    auth: dict[str, dict[str, str]]
    headers: dict[str, str] = field(default_factory=dict)
    include: tuple[str, ...] = ()  # only these operations (all when empty)
    exclude: tuple[str, ...] = ()
    parameters: dict[str, str] = field(default_factory=dict)
    budget_s: int = BUDGET_S


@dataclass
class Target:
    """A server for schemathesis and the runs to make against it."""

    client: TestClient[Any, Any]
    runs: list[Run]


# Logging out would end the session the rest of the run uses (its own tests cover it).
VENUE_LOGOUT = ("staff_logout",)
# The system administrator's own operations (the chief examiner gets 403 on them).
ADMIN_OPERATIONS = ("open_ceremony", "import_package", "enter_release", "reset_ceremony")
UPLOAD_OPERATIONS = ("upload", "upload_offset", "upload_chunk", "upload_finish")


async def serve_venue(template: VenueTemplate, directory: Path) -> Target:
    """The venue, unlocked, the exam running, candidate 1 logged in: one run with the chief
    examiner's session (everything but logout), then one with the administrator's on the
    administrator's own operations."""
    shutil.copytree(template.directory, directory)
    clock = SettableClock(IN_WINDOW)
    settings = Settings(venue_dir=directory, log_requests=False, close_interval_s=3600)
    client: TestClient[Any, Any] = TestClient(TestServer(create_venue(settings, clock=clock)))
    await client.start_server()
    kit = VenueKit(client, clock, template, directory)
    await kit.unlock()
    candidate = await kit.login_candidate(1)
    clock.set(START + timedelta(minutes=2))
    chief, admin = await kit.login_staff("chief"), kit.staff["admin"]

    def run(name: str, staff: StaffLogin, **options: Any) -> Run:
        cookie = staff.headers["Cookie"].removeprefix("cbt_staff=")
        auth = {"staffCookie": {"api_key": cookie}, "candidateToken": {"bearer": candidate.token}}
        return Run(name, auth, {"X-CSRF-Token": staff.headers["X-CSRF-Token"]}, **options)

    return Target(
        client,
        [
            run("chief", chief, exclude=VENUE_LOGOUT),
            run("admin", admin, include=ADMIN_OPERATIONS, budget_s=max(5, BUDGET_S // 4)),
        ],
    )


async def serve_central(root: Path, database: str) -> Target:
    """The centre with venue V001 registered, one accepted upload, one upload half sent and
    an auditor's session: one run on everything but logout, then one on the upload
    operations with the half-sent upload's id."""
    init_authority(root / "authority")
    authority = load_authority(root / "authority")
    settings = CentralSettings(
        directory=root, database=database, log_requests=False, pg_pool_size=4
    )
    clock = SettableClock(CENTRAL_START)
    app = create_central(settings, clock=clock, authority=authority)
    client: TestClient[Any, Any] = TestClient(TestServer(app))
    await client.start_server()
    storage = app[central_keys.STORAGE]
    venue = new_venue("V001")
    await storage.add_venue(venue.record())
    password = hash_password(AUDITOR_PASSWORD)
    await storage.add_staff("aud", "Aud", "auditor", password, "cli:test", iso(CENTRAL_START))
    async with aiohttp.ClientSession() as http:
        url = str(client.make_url("")).rstrip("/")
        await upload_package(
            http, url, make_package(venue, authority), authority.signing_public,
            venue_key=venue.signing, clock=clock,
        )  # fmt: skip
    pending = make_package(venue, authority, export_seq=2)
    pending_id = hashlib.sha256(pending).hexdigest()
    centre = Central(client, clock, database)
    centre.venues[venue.venue_id] = venue
    assert (await centre.create(venue, pending)).status == 201
    resp = await client.post(
        "/api/v1/staff/login", json={"login": "aud", "password": AUDITOR_PASSWORD}
    )
    assert resp.status == 200, await resp.text()
    client.session.cookie_jar.clear()
    # An auditor only reads (GET), so no CSRF token is needed; logging out is not fuzzed.
    auth = {"centralCookie": {"api_key": resp.cookies["cbt_central"].value}}
    return Target(
        client,
        [
            Run("all", auth, exclude=("central_staff_logout",)),
            Run("pending upload", auth, include=UPLOAD_OPERATIONS,
                parameters={"upload_id": pending_id}, budget_s=max(5, BUDGET_S // 4)),
        ],
    )  # fmt: skip


def toml_table(name: str, values: dict[str, str]) -> str:
    return f"[{name}]\n" + "".join(
        f"{key} = {json.dumps(value)}\n" for key, value in values.items()
    )


def run_schemathesis(client: TestClient[Any, Any], run: Run, folder: Path) -> dict[str, Any]:
    """`st run` against the server's own document; returns its JSON run report (the whole
    output is in folder/schemathesis.txt)."""
    folder.mkdir(parents=True, exist_ok=True)
    base = str(client.make_url("")).rstrip("/")
    config = folder / "schemathesis.toml"
    tables = [toml_table(f"auth.openapi.{scheme}", values) for scheme, values in run.auth.items()]
    if run.parameters:
        tables.append(toml_table("parameters", run.parameters))
    config.write_text("".join(tables), encoding="utf-8")
    report = folder / "schemathesis.json"
    command = [
        str(Path(sys.executable).with_name("st")), "--config-file", str(config),
        "run", f"{base}/api/v1/openapi.json", "--url", base,
        "--checks", "all", "--exclude-checks", ",".join(EXCLUDED_CHECKS),
        "--max-time", str(run.budget_s), "--phases", "examples,coverage,fuzzing",
        "--workers", "1", "--seed", "20261205", "--request-timeout", "20",
        "--report", "json", "--report-json-path", str(report),
    ]  # fmt: skip
    for option, names in (
        ("--include-operation-id", run.include),
        ("--exclude-operation-id", run.exclude),
    ):
        for name in names:
            command += [option, name]
    for name, value in run.headers.items():
        command += ["--header", f"{name}: {value}"]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.server.schemathesis_hooks"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    done = subprocess.run(  # our own dev dependency's CLI, no shell
        command, capture_output=True, text=True, timeout=run.budget_s * 4 + 120, check=False,
        cwd=folder, env=env,
    )  # fmt: skip
    (folder / "schemathesis.txt").write_text(done.stdout + done.stderr, encoding="utf-8")
    print(f"== schemathesis run: {run.name}\n{done.stdout}")
    assert done.returncode == 0, done.stdout[-20000:] + done.stderr[-5000:]
    return dict(json.loads(report.read_text(encoding="utf-8")))


def run_all(loop_thread: LoopThread, target: Target, folder: Path) -> None:
    try:
        for n, run in enumerate(target.runs):
            run_schemathesis(target.client, run, folder / f"run-{n}")
    finally:
        loop_thread.run(target.client.close())


def test_venue_api_survives_schemathesis(
    venue_template: VenueTemplate, loop_thread: LoopThread, tmp_path: Path
) -> None:
    """Fuzzing every venue operation finds no 5xx and no reply unlike its documented one."""
    run_all(loop_thread, loop_thread.run(serve_venue(venue_template, tmp_path / "venue")), tmp_path)


@pytest.fixture(params=["sqlite", "postgres"])
def central_database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty central database on each back-end (PostgreSQL: a fresh database)."""
    if request.param == "sqlite":
        return str(tmp_path / "central.db")
    return str(request.getfixturevalue("pg_database"))


def test_central_api_survives_schemathesis(
    loop_thread: LoopThread, tmp_path: Path, central_database: str
) -> None:
    """Fuzzing every central operation, on each store, finds no 5xx and no reply unlike its
    documented one."""
    run_all(loop_thread, loop_thread.run(serve_central(tmp_path, central_database)), tmp_path)
