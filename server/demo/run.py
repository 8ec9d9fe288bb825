"""Run the demo: the central and the venue server in one process, the optional unlock, the
printed guide, and a clean stop on Ctrl-C, SIGTERM or `--exit-after`.

Both servers are the real apps (`server.central.app.create_app`, `server.venue.app.create_app`)
on two aiohttp runners in one event loop; the venue's `central_url` points at the central
runner, so the online time release goes over HTTP as it would between two machines.
`--auto-unlock` performs the ceremony through the venue's staff API exactly as the console
does: the administrator opens it, the chief examiner and an invigilator each enter their own
share card under their own login, and the administrator fetches the time release online.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TextIO

import aiohttp
from aiohttp import web

from server.central.app import create_app as create_central_app
from server.central.settings import CentralSettings
from server.demo.workspace import DemoWorkspace
from server.errors import CbtError
from server.serving import ProblemAppRunner
from server.venue.app import create_app as create_venue_app
from server.venue.settings import Settings

UNLOCK_TIMEOUT_S = 60.0


class DemoUnlockFailed(CbtError):
    """The automatic unlock ceremony was refused by the venue server."""


@dataclass(frozen=True)
class Addresses:
    host: str  # where the servers listen
    venue_port: int
    central_port: int

    @property
    def shown_host(self) -> str:
        """The host a browser on this machine uses (a wildcard address is not one)."""
        wildcards = ("0.0.0.0", "", "::")  # noqa: S104 - compared with, never bound to
        return "127.0.0.1" if self.host in wildcards else self.host

    @property
    def venue_url(self) -> str:
        return f"http://{self.shown_host}:{self.venue_port}"

    @property
    def central_url(self) -> str:
        return f"http://{self.shown_host}:{self.central_port}"


async def start_runner(app: web.Application, host: str, port: int) -> web.AppRunner:
    """Set up `app` on host:port; CbtError (not a traceback) when the port is taken."""
    runner = ProblemAppRunner(app, access_log=None)  # parser errors as problem+json (F8)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        await runner.cleanup()
        raise CbtError(
            f"cannot listen on {host}:{port} ({exc.strerror}): "
            "pass --venue-port / --central-port with free ports"
        ) from None
    return runner


class StaffClient:
    """One staff member's signed-in requests (their own cookie and CSRF token)."""

    def __init__(self, http: aiohttp.ClientSession, base: str) -> None:
        self.http, self.base = http, base
        self.headers: dict[str, str] = {}

    async def login(self, login: str, password: str) -> None:
        body = {"login": login, "password": password}
        async with self.http.post(f"{self.base}/api/v1/staff/login", json=body) as resp:
            await _expect(resp, 200, f"staff login {login}")
            csrf = (await resp.json())["csrf_token"]
            cookie = resp.cookies["cbt_staff"].value
        self.headers = {"Cookie": f"cbt_staff={cookie}", "X-CSRF-Token": csrf}

    async def post(self, path: str, body: dict[str, Any], expected: int) -> dict[str, Any]:
        async with self.http.post(self.base + path, json=body, headers=self.headers) as resp:
            await _expect(resp, expected, path)
            return dict(await resp.json())


async def _expect(resp: aiohttp.ClientResponse, status: int, what: str) -> None:
    if resp.status != status:
        detail = (await resp.text())[:500]
        raise DemoUnlockFailed(f"{what} answered {resp.status}: {detail}")


async def auto_unlock(workspace: DemoWorkspace, venue_url: str) -> dict[str, Any]:
    """The unlock ceremony through the venue's API: two supervisors' shares, online release."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=UNLOCK_TIMEOUT_S)) as http:
        people = {login: StaffClient(http, venue_url) for login in ("admin", "chief", "inv1")}
        for login, client in people.items():
            await client.login(login, workspace.member(login).password)
        await people["admin"].post(
            "/api/v1/staff/ceremony", {"session_id": workspace.session_id}, 201
        )
        for login in ("chief", "inv1"):
            holder = workspace.member(login).holder
            assert holder is not None  # both hold cards by construction
            card = workspace.cards[holder]
            await people[login].post("/api/v1/staff/ceremony/shares", {"share": card}, 200)
        done = await people["admin"].post("/api/v1/staff/ceremony/release", {}, 200)
    if done.get("status") != "unlocked":
        raise DemoUnlockFailed(f"the ceremony did not finish: {done}")
    return done


def print_cards(workspace: DemoWorkspace, out: TextIO) -> None:
    """The share cards and the release code, for a ceremony done by hand in the console."""
    out.write("\n== Share cards (any 2 of 3 unlock; each holder enters their own) ==\n")
    for holder, card in sorted(workspace.cards.items()):
        who = next(m.login for m in workspace.staff if m.holder == holder)
        out.write(f"\n-- card {holder}, held by {who} --\n{card.rstrip()}\n")
    out.write(
        "\nTo unlock: in the staff console, admin opens the ceremony for session "
        f"{workspace.session_id}; chief and inv1 (or inv2) each sign in and type their "
        "card's code; then fetch the time release.\n"
        "\n== Time release ==\n"
        "The venue fetches it online from the central server (button in the ceremony screen).\n"
        f"Offline, the centre reads out this code: {workspace.release_code}\n"
    )


def print_guide(workspace: DemoWorkspace, where: Addresses, unlocked: bool, out: TextIO) -> None:
    """URLs and sample logins for each role."""
    first = workspace.candidates[0]
    pw = {m.login: m.password for m in workspace.staff}
    op = workspace.central_staff[0]
    state = "unlocked (auto)" if unlocked else "locked: run the ceremony in the staff console"
    out.write(
        f"\n== cbt demo: session {workspace.session_id} at venue {workspace.venue_id} ==\n"
        f"directory:        {workspace.directory}\n"
        f"exam starts at:   {workspace.starts_at.isoformat()}  (paper {state})\n"
        f"candidate page:   {where.venue_url}/\n"
        f"staff console:    {where.venue_url}/staff\n"
        f"central status:   {where.central_url}/status\n"
        "live line:        the venue's counts (logged in, answering, submitted, incidents) and\n"
        '                  serious violations appear there under "Live from the venues"\n'
        "                  every minute (CBT_HEARTBEAT_S), a serious violation at once\n"
        "\nSample logins (invented people; all 30 candidates are in roster.csv):\n"
        f"candidate:        ticket {first.ticket}  ID number {first.id_number}\n"
        f"invigilator:      inv1 / {pw['inv1']}   (also inv2 / {pw['inv2']})\n"
        f"supervisor:       chief / {pw['chief']}   (chief examiner, holds card 1)\n"
        f"administrator:    admin / {pw['admin']}   (venue system administrator)\n"
        f"operator:         {op.login} / {op.password}   (central status page, reports)\n"
        f"                  cbt central venues list {workspace.central_dir}\n"
        f"                  paperpack release {workspace.session_id} {workspace.venue_id}"
        f" --authority {workspace.authority_dir}\n"
        "after the exam:   the venue exports and uploads by itself once the session has ended;\n"
        "                  by hand (an export while attempts are open needs --partial --reason):\n"
        f"                  cbt venue export {workspace.venue_dir} --out answers.cbtresp\n"
        f"                  cbt venue upload {workspace.venue_dir} --central {where.central_url}\n"
        "\nPress Ctrl-C to stop.\n"
    )
    out.flush()


async def serve_demo(
    workspace: DemoWorkspace,
    where: Addresses,
    *,
    auto: bool,
    exit_after_s: float | None,
    out: TextIO = sys.stdout,
) -> None:
    """Start both servers, unlock if asked, print the guide, run until stopped."""
    central = create_central_app(
        CentralSettings(directory=workspace.central_dir, host=where.host,
                        port=where.central_port, log_requests=False)
    )  # fmt: skip
    venue = create_venue_app(
        Settings(venue_dir=workspace.venue_dir, host=where.host, port=where.venue_port,
                 central_url=where.central_url, log_requests=False)
    )  # fmt: skip
    runners = [await start_runner(central, where.host, where.central_port)]
    try:
        runners.append(await start_runner(venue, where.host, where.venue_port))
        if auto:
            await auto_unlock(workspace, where.venue_url)
        else:
            print_cards(workspace, out)
        # The handlers go in before the guide is printed: whoever reads "Press Ctrl-C" may
        # signal at once, and a signal before them would kill the demo uncleanly.
        with stop_on_signals() as stop:
            print_guide(workspace, where, auto, out)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), exit_after_s)
        out.write("stopping the venue and central servers\n")
        out.flush()
    finally:
        for runner in reversed(runners):
            await runner.cleanup()


@contextlib.contextmanager
def stop_on_signals() -> Iterator[asyncio.Event]:
    """An event set by SIGINT or SIGTERM while the block runs."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        yield stop
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
