"""`cbt demo` as a newcomer runs it: a real subprocess on free loopback ports.

The acceptance test of the front door: the demo builds everything, unlocks through the venue
API with the release fetched online from its central server, a candidate logs in with the
printed ticket and ID number, answers every item and submits; the venue exports and uploads
with the real `cbt venue export/upload`; the centre's status shows the upload with one
submitted attempt, and the package it holds decrypts to the candidate's receipted answers.
Ctrl-C (SIGINT) then stops both servers cleanly.
"""

from __future__ import annotations

import asyncio
import filecmp
import hashlib
import json
import os
import re
import signal
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from paperpack.authority import load_authority
from paperpack.crypto import read_signing_public
from server.demo import people
from server.demo.workspace import data_path
from server.protocol.candidate_receipt import candidate_receipt
from server.protocol.response_package import open_response_package
from tests.conftest import EXAMPLES, REPO_ROOT

READY = "Press Ctrl-C to stop."
BOOT_TIMEOUT_S = 60.0  # build + start + unlock; ~5 s on an idle machine
EXIT_AFTER_S = 85  # the subprocess ends itself even if the test dies


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Demo:
    process: asyncio.subprocess.Process
    lines: list[str]

    def value(self, label: str) -> str:
        line = next(x for x in self.lines if x.startswith(label + ":"))
        return line.split(":", 1)[1].strip()


async def start_demo(directory: Path, *extra: str) -> Demo:
    """Run `cbt demo` and read its output until it says it is ready."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "server.cli", "demo", "--dir", str(directory),
        "--venue-port", str(free_port()), "--central-port", str(free_port()), *extra,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=REPO_ROOT,
    )  # fmt: skip
    lines: list[str] = []
    try:
        await _read_until_ready(process, lines)
    except BaseException:
        if process.returncode is None:  # never leave a demo running behind a failed test
            process.kill()
            await process.wait()
        raise
    return Demo(process, lines)


async def _read_until_ready(process: asyncio.subprocess.Process, lines: list[str]) -> None:
    assert process.stdout is not None
    deadline = time.monotonic() + BOOT_TIMEOUT_S
    while READY not in lines:
        remaining = deadline - time.monotonic()
        raw = await asyncio.wait_for(process.stdout.readline(), max(remaining, 0.1))
        if not raw:
            raise AssertionError("cbt demo ended early:\n" + "\n".join(lines))
        lines.append(raw.decode().rstrip("\n"))


async def stop_demo(demo: Demo) -> str:
    """SIGINT, as Ctrl-C would; the rest of the output."""
    demo.process.send_signal(signal.SIGINT)
    assert demo.process.stdout is not None
    rest = await asyncio.wait_for(demo.process.stdout.read(), 30)
    await asyncio.wait_for(demo.process.wait(), 30)
    return rest.decode()


def answer_for(item: dict[str, Any]) -> list[str] | str:
    if item["type"] == "essay":
        return "项目管理的核心是沟通。Communication is the core of project management."
    if item["type"] == "fill_blank":
        return ["42"] * len(item["blanks"])
    return [item["options"][0]["id"]]


async def take_exam(venue_url: str, ticket: str, id_number: str) -> tuple[dict[str, Any], str]:
    """Log in, fetch the paper, answer every item, submit; the answers sent and the receipt."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        login = {"ticket": ticket, "id_number": id_number}
        async with http.post(f"{venue_url}/api/v1/candidate/login", json=login) as resp:
            assert resp.status == 200, await resp.text()
            auth = {"Authorization": f"Bearer {(await resp.json())['token']}"}
        async with http.get(f"{venue_url}/api/v1/attempt/paper", headers=auth) as resp:
            assert resp.status == 200, await resp.text()
            paper = await resp.json()
        answers = {i["id"]: answer_for(i) for s in paper["sections"] for i in s["items"]}
        batch = {"seq": 1, "responses": answers}
        async with http.put(f"{venue_url}/api/v1/attempt/responses", json=batch,
                            headers=auth) as resp:  # fmt: skip
            assert (resp.status, await resp.json()) == (200, {"acked_seq": 1})
        async with http.post(f"{venue_url}/api/v1/attempt/submit", headers=auth) as resp:
            assert resp.status == 200, await resp.text()
            receipt = (await resp.json())["receipt"]
    return answers, str(receipt)


async def cbt(*args: str) -> str:
    """Run the real `cbt` command line; its output, failing the test on a non-zero exit."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "server.cli", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=REPO_ROOT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, out.decode()
    return out.decode()


def centre_view_of(directory: Path, package: Path, ticket: str) -> dict[str, Any]:
    """The ticket's attempt as the centre decrypts it from the uploaded package."""
    venue_public = read_signing_public(
        (directory / "venue" / "keys" / "venue-sign.pub").read_text(), "venue"
    )
    authority = load_authority(directory / "authority")
    opened = open_response_package(package.read_bytes(), venue_public, authority.wrapping_key)
    return next(a for a in opened.contents["attempts"] if a["ticket"] == ticket)


async def central_status(central_url: str, login: str) -> dict[str, Any]:
    """The central status as the printed operator ("operator / PASSWORD") sees it."""
    name, password = login.split()[0], login.split()[2]
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{central_url}/api/v1/status") as resp:
            assert resp.status == 401  # the console needs a staff login
        body = {"login": name, "password": password}
        async with http.post(f"{central_url}/api/v1/staff/login", json=body) as resp:
            assert resp.status == 200, await resp.text()
            cookie = resp.cookies["cbt_central"].value
        headers = {"Cookie": f"cbt_central={cookie}"}
        async with http.get(f"{central_url}/api/v1/status", headers=headers) as resp:
            assert resp.status == 200
            return dict(await resp.json())


@pytest.mark.slow
async def test_demo_runs_an_exam_from_login_to_the_centre(tmp_path: Path) -> None:
    """A candidate of the auto-unlocked demo submits, and the answers reach the centre."""
    began = time.monotonic()
    directory = tmp_path / "demo"
    demo = await start_demo(directory, "--auto-unlock", "--start-in", "0",
                            "--exit-after", str(EXIT_AFTER_S))  # fmt: skip
    try:
        venue_url = demo.value("candidate page").rstrip("/")
        central_url = demo.value("central status").removesuffix("/status")
        found = re.search(r"ticket (\S+)\s+ID number (\S+)", demo.value("candidate"))
        assert found, demo.lines
        answers, receipt = await take_exam(venue_url, found[1], found[2])
        assert len(answers) >= 5
        session_id = json.loads((directory / "demo.json").read_text())["session_id"]
        exported = tmp_path / "answers.cbtresp"
        await cbt("venue", "export", str(directory / "venue"), "--out", str(exported))
        await cbt("venue", "upload", str(directory / "venue"), "--central", central_url)
        status = await central_status(central_url, demo.value("operator"))
        row = next(r for r in status["sessions"] if r["session_id"] == session_id)
        assert (row["venue_id"], row["released"], row["submitted"]) == ("DEMO-01", 1, 1)
        assert row["package_sha256"] == hashlib.sha256(exported.read_bytes()).hexdigest()
        attempt = centre_view_of(directory, exported, found[1])
        assert attempt["submission"]["receipt"] == receipt
        assert attempt["submission"]["receipt_format"] == "attempt-v2"
        assert receipt == candidate_receipt(
            attempt["final_answers"],
            session_id=attempt["session_id"],
            ticket=attempt["ticket"],
            attempt_id=attempt["attempt_id"],
        )
        assert len(attempt["final_answers"]) == len(answers)
    finally:
        rest = await stop_demo(demo)
    assert demo.process.returncode == 0, rest
    assert "stopping the venue and central servers" in rest
    for url in (venue_url, central_url):  # both ports are closed again
        with pytest.raises(aiohttp.ClientConnectionError):
            await central_status(url, demo.value("operator"))
    assert time.monotonic() - began < 90


async def test_demo_without_auto_unlock_prints_cards_and_the_release_code(
    tmp_path: Path,
) -> None:
    """Without --auto-unlock the three share cards and the release code are printed, and
    --exit-after ends the demo by itself with status 0."""
    demo = await start_demo(tmp_path / "demo", "--exit-after", "1")
    rest = await asyncio.wait_for(demo.process.communicate(), 30)
    assert demo.process.returncode == 0
    text = "\n".join(demo.lines) + rest[0].decode()
    assert all(f"-- card {n}, held by" in text for n in (1, 2, 3))
    assert "Offline, the centre reads out this code: " in text
    assert 'serious violations appear there under "Live from the venues"' in text  # issue 14
    assert "paper locked" in text


async def test_a_second_run_rebuilds_the_demo_directory(tmp_path: Path) -> None:
    """--dir pointing at an earlier demo is emptied and rebuilt (new session, new passwords);
    SIGTERM stops a demo as cleanly as Ctrl-C."""
    directory = tmp_path / "demo"
    first = await start_demo(directory, "--exit-after", "0.1")
    await first.process.communicate()
    before = (directory / "logins.txt").read_text()
    second = await start_demo(directory)
    second.process.terminate()
    rest, _ = await asyncio.wait_for(second.process.communicate(), 30)
    assert second.process.returncode == 0
    assert "stopping the venue and central servers" in rest.decode()
    assert (directory / "logins.txt").read_text() != before
    assert oct((directory / "logins.txt").stat().st_mode & 0o777) == "0o600"


async def test_a_port_in_use_is_a_one_line_error(tmp_path: Path) -> None:
    """When the venue port is taken the demo says which and how to fix it, and exits 1."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "server.cli", "demo", "--dir", str(tmp_path / "demo"),
            "--venue-port", port, "--central-port", str(free_port()), "--exit-after", "5",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=REPO_ROOT,
        )  # fmt: skip
        _, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 1
    assert f"cbt: error: cannot listen on 127.0.0.1:{port}" in err.decode()
    assert "--venue-port" in err.decode()


async def test_a_directory_that_is_not_a_demo_is_refused(tmp_path: Path) -> None:
    """A non-empty directory without demo.json is left alone, with a one-line error."""
    (tmp_path / "precious.txt").write_text("keep me")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "server.cli", "demo", "--dir", str(tmp_path),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=REPO_ROOT,
    )  # fmt: skip
    _, err = await process.communicate()
    assert process.returncode == 1
    assert err.decode().startswith("cbt: error: ") and "not a demo directory" in err.decode()
    assert (tmp_path / "precious.txt").read_text() == "keep me"


def test_the_embedded_sample_data_equals_examples() -> None:
    """server/demo/data is a copy of examples/ (installed as package data); they must agree."""
    for name in ("paper.yaml", "rooms.yaml", "assets/evm-chart.png"):
        assert filecmp.cmp(data_path(name), EXAMPLES / name, shallow=False), name


def test_demo_id_numbers_pass_the_roster_check() -> None:
    """Every invented ID number is a valid GB 11643 number and names are not empty."""
    from server.venue.roster import resident_id_problem

    roster = people.demo_candidates()
    assert len(roster) == 30 and len({c.id_number for c in roster}) == 30
    assert all(resident_id_problem(c.id_number) is None and c.name for c in roster)


def test_demo_staff_passwords_differ_each_time() -> None:
    """Four accounts, three holding cards 1-3, with fresh random passwords."""
    one, two = people.demo_staff(), people.demo_staff()
    assert sorted(m.holder for m in one if m.holder) == [1, 2, 3]
    assert {m.password for m in one}.isdisjoint({m.password for m in two})


async def test_the_demo_prints_a_central_operator_login_that_works(tmp_path: Path) -> None:
    """The printed central operator signs in to the status page; logins.txt holds it too."""
    directory = tmp_path / "demo"
    demo = await start_demo(directory, "--exit-after", "20")
    try:
        login = demo.value("operator")
        assert re.fullmatch(r"operator / \S+ +\(central status page, reports\)", login), login
        central_url = demo.value("central status").removesuffix("/status")
        status = await central_status(central_url, login)
        assert status["venues"] == ["DEMO-01"]
        assert f"operator\toperator\t{login.split()[2]}" in (directory / "logins.txt").read_text()
    finally:
        await stop_demo(demo)


def not_private(directory: Path) -> list[str]:
    """Every path under `directory` (itself included) that is not a 0600 file or 0700 folder."""
    loose = []
    for path in [directory, *directory.rglob("*")]:
        want = 0o700 if path.is_dir() else 0o600
        if path.stat().st_mode & 0o777 != want:
            loose.append(f"{oct(path.stat().st_mode & 0o777)} {path.relative_to(directory)}")
    return loose


# The demo's own sample inputs (paper.yaml, assets/) are copies of the examples: not checked.
DEMO_PRIVATE = ("venue", "central", "authority", "packages")


@pytest.fixture
def loose_umask() -> Any:
    """The umask most accounts have (022): what cbt must not rely on."""
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.mark.slow
async def test_f10_venue_and_centre_files_are_private(tmp_path: Path, loose_umask: None) -> None:
    """F10: after init, serving, saves, submission, the continuous backup, `cbt venue backup`,
    export and upload, every file of the venue, the centre and the authority is 0600 and every
    folder 0700 (they were 0644/0755, world-readable)."""
    directory = tmp_path / "demo"
    demo = await start_demo(directory, "--auto-unlock", "--start-in", "0",
                            "--exit-after", str(EXIT_AFTER_S))  # fmt: skip
    try:
        venue_url = demo.value("candidate page").rstrip("/")
        central_url = demo.value("central status").removesuffix("/status")
        found = re.search(r"ticket (\S+)\s+ID number (\S+)", demo.value("candidate"))
        assert found, demo.lines
        await take_exam(venue_url, found[1], found[2])
        venue = directory / "venue"
        await cbt("venue", "backup", str(venue))
        exports = tmp_path / "exports"
        exports.mkdir(mode=0o700)  # the folder is the operator's; the package must be private
        await cbt("venue", "export", str(venue), "--out", str(exports / "answers.cbtresp"))
        await cbt("venue", "upload", str(venue), "--central", central_url)
        assert (venue / "venue.db-wal").exists()  # the live database's WAL is checked too
        assert list((venue / "backup").iterdir()), "no backup was written"
        for part in DEMO_PRIVATE:
            assert not_private(directory / part) == [], part
        assert not_private(exports) == []
    finally:
        await stop_demo(demo)
    for part in DEMO_PRIVATE:  # after a clean stop too (the WAL checkpointed, run/ cleared)
        assert not_private(directory / part) == [], part
