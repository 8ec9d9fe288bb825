"""The venue the load test runs against: built, served (pinned to a core) and unlocked.

Used by `loadtests/run_venue_load.py`: `set_up_venue` makes an authority, packs a synthetic
paper for one venue, stores staff and a roster and imports the package; `running_server`
starts `cbt venue serve` from a checkout (this one or another, for before/after runs) under
`taskset`; `unlock` runs the ceremony over HTTP; `wait_idle` waits until the server has
finished rendering every paper after the unlock.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.cookies
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from loadtests.venue_client import proc_cpu_s  # noqa: E402
from paperpack.authority import init_authority, load_authority  # noqa: E402
from paperpack.crypto import public_key_text  # noqa: E402
from paperpack.pack import pack_venue  # noqa: E402
from paperpack.release import issue_release  # noqa: E402
from paperpack.session import session_from_dict  # noqa: E402
from paperpack.synthetic import synthetic_paper  # noqa: E402
from server.staffauth import hash_password  # noqa: E402
from server.store import transaction  # noqa: E402
from server.venue.packages import import_package  # noqa: E402
from server.venue.roster import Candidate, store_roster  # noqa: E402
from server.venue.staff import add_staff  # noqa: E402
from server.venue.workspace import init_venue, load_venue, open_venue_db  # noqa: E402

PASSWORD = "load test password"
SESSION_ID = "LOAD1"
VENUE_ID = "VLOAD"


@dataclasses.dataclass
class Setup:
    directory: Path
    tickets_file: Path
    cards: dict[int, str]
    release_code: str


def set_up_venue(root: Path, candidates: int, items: int) -> Setup:
    """An authority, a packed synthetic paper for one venue, staff, roster, imported package."""
    now = datetime.now(UTC)
    init_authority(root / "authority")
    authority = load_authority(root / "authority")
    venue = init_venue(root / "venue", VENUE_ID, "Load test centre")
    paper = dataclasses.replace(
        synthetic_paper(items, seed=1), subject_code="LOAD", duration_minutes=180
    )
    session = session_from_dict(
        {
            "session_id": SESSION_ID,
            "subject": {"code": "LOAD", "name": "Load"},
            "start": (now - timedelta(minutes=1)).isoformat(),
            "duration_minutes": 180,
            # No identity check (art. 30): the simulated candidates answer at once.
            "rules": {"entry_cutoff_minutes": 120, "identity_check": 0},
            "venues": [
                {"id": VENUE_ID, "name": "Load", "public_key": venue.wrap_public,
                 "supervisors": 3, "threshold": 2}
            ],
        }
    )  # fmt: skip
    packed = pack_venue(paper, session, session.venues[0], authority, root / "out", now=now)
    cards = {
        int(p.stem.split("-")[1]): p.read_text() for p in packed.shares_dir.glob("holder-*.txt")
    }
    release = issue_release(authority, SESSION_ID, VENUE_ID, now=now)
    (venue.keys_dir / "authority-sign.pub").write_text(
        public_key_text(authority.signing_public) + "\n"
    )
    db = open_venue_db(venue.directory)
    tickets = [(f"L{n:05d}", f"ID{n:016d}") for n in range(1, candidates + 1)]
    roster = [
        Candidate(ticket=t, name=f"Candidate {t}", id_number=i, subject="LOAD", id_type="other",
                  row_no=n + 2)
        for n, (t, i) in enumerate(tickets)
    ]  # fmt: skip
    with transaction(db):
        for login, role in (
            ("admin", "system_administrator"),
            ("chief", "chief_examiner"),
            ("inv1", "invigilator"),
        ):
            add_staff(db, login, login, role, hash_password(PASSWORD), actor="cli:load", now=now)
        import_package(load_venue(venue.directory), db, packed.package_dir,
                       actor="admin", confirmed_by="chief", now=now)  # fmt: skip
        store_roster(db, SESSION_ID, roster, actor="cli:load", now=now)
    db.close()
    tickets_file = root / "tickets.csv"
    tickets_file.write_text("".join(f"{t},{i}\n" for t, i in tickets))
    return Setup(venue.directory, tickets_file, cards, release.code)


def copy_venue(setup: Setup, to: Path) -> Setup:
    """A fresh copy of the (locked) venue directory, for another server of the same run."""
    if to.exists():
        shutil.rmtree(to)
    shutil.copytree(setup.directory, to)
    return dataclasses.replace(setup, directory=to)


@contextlib.contextmanager
def running_server(
    directory: Path, host: str, port: int, log: Path, *, tree: Path = ROOT, core: str | None
) -> Iterator[subprocess.Popen[bytes]]:
    """`cbt venue serve` from the checkout `tree`, pinned to `core` (taskset) if given."""
    env = {**os.environ, "CBT_LOG_REQUESTS": "0", "PYTHONPATH": str(tree)}
    command = [sys.executable, "-m", "server.cli", "venue", "serve", str(directory),
               "--host", host, "--port", str(port)]  # fmt: skip
    if core is not None:
        command = ["taskset", "-c", core, *command]
    with (
        log.open("w") as out,
        subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=tree) as proc,
    ):
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    urllib.request.urlopen(f"http://{host}:{port}/ping", timeout=2).close()
                    break
                except OSError:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise SystemExit(f"the server did not start: {log.read_text()}") from None
                    time.sleep(0.2)
            yield proc
        finally:
            proc.terminate()
            proc.wait(timeout=60)


def call(base: str, method: str, path: str, body: Any, headers: dict[str, str]) -> Any:
    # The URL is always http://<host>:<port> given to this script.
    request = urllib.request.Request(  # noqa: S310
        base + path, data=json.dumps(body).encode(), method=method,
        headers={"Content-Type": "application/json", **headers},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310
        cookie = response.headers.get("Set-Cookie")
        return json.load(response), cookie


def staff_headers(base: str, login: str) -> dict[str, str]:
    body, cookie = call(base, "POST", "/api/v1/staff/login",
                        {"login": login, "password": PASSWORD}, {})  # fmt: skip
    morsel = http.cookies.SimpleCookie(cookie)["cbt_staff"]
    return {"Cookie": f"cbt_staff={morsel.value}", "X-CSRF-Token": body["csrf_token"]}


def unlock(base: str, setup: Setup) -> float:
    """The ceremony over HTTP; returns the seconds from the release to 'unlocked'."""
    admin = staff_headers(base, "admin")
    call(base, "POST", "/api/v1/staff/ceremony", {"session_id": SESSION_ID}, admin)
    call(base, "POST", "/api/v1/staff/ceremony/shares", {"share": setup.cards[1]},
         staff_headers(base, "chief"))  # fmt: skip
    call(base, "POST", "/api/v1/staff/ceremony/shares", {"share": setup.cards[2]},
         staff_headers(base, "inv1"))  # fmt: skip
    began = time.perf_counter()
    body, _ = call(base, "POST", "/api/v1/staff/ceremony/release",
                   {"code": setup.release_code}, admin)  # fmt: skip
    assert body["status"] == "unlocked", body
    return time.perf_counter() - began


def wait_idle(pid: int, *, share: float = 0.05, timeout_s: float = 120.0) -> float:
    """Wait until the server uses under `share` of a core over 1 s (the papers are rendered
    in the background after the unlock); return the seconds waited."""
    began = time.monotonic()
    while time.monotonic() - began < timeout_s:
        before = proc_cpu_s(pid)
        time.sleep(1.0)
        if proc_cpu_s(pid) - before < share:
            break
    return time.monotonic() - began


def fsync_rate(directory: Path, seconds: float = 2.0) -> float:
    """4 KiB write + fdatasync per iteration, per second, on the database's file system."""
    path = directory / "fsync-probe.bin"
    block = os.urandom(4096)
    count = 0
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            os.pwrite(fd, block, 0)
            os.fdatasync(fd)
            count += 1
    finally:
        os.close(fd)
        path.unlink()
    return count / seconds
