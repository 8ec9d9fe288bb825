"""The venue load test: set up an unlocked venue with N candidates, start the real server, run
the locust scenarios against it on loopback, and write the figures to docs/performance.md.

    python loadtests/run_venue_load.py --candidates 3000 --steady-seconds 60

Phases, all against one server process started with `cbt venue serve`:

1. fsync: 4 KiB write + fdatasync in a loop beside the database, for the raw durable rate;
2. ping: locust PingUser (no database, no auth): what locust + aiohttp reach on this machine;
3. herd: N HerdUsers spawned within 1 s, each logs in and fetches its paper;
4. steady: N SteadyUsers, autosave every 5 s and heartbeat every 15 s; server CPU measured;
5. capacity: SaveCapacityUsers saving back to back: acknowledged durable saves per second.

Everything is bounded: loopback only, fixed user counts and durations, a timeout per phase.
The exit code is 1 if any locust phase failed its thresholds (see venue_locust.py).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import http.cookies
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from paperpack.authority import init_authority, load_authority  # noqa: E402
from paperpack.crypto import public_key_text  # noqa: E402
from paperpack.pack import pack_venue  # noqa: E402
from paperpack.release import issue_release  # noqa: E402
from paperpack.session import session_from_dict  # noqa: E402
from paperpack.synthetic import synthetic_paper  # noqa: E402
from server.staffauth import hash_password  # noqa: E402
from server.store import transaction  # noqa: E402
from server.venue.packages import import_package  # noqa: E402
from server.venue.staff import add_staff  # noqa: E402
from server.venue.workspace import init_venue, load_venue, open_venue_db  # noqa: E402

LOCUSTFILE = ROOT / "loadtests" / "venue_locust.py"
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
    """An authority, a packed 100-item paper for one venue, staff, roster, imported package."""
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
            "rules": {"entry_cutoff_minutes": 120},
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
    with transaction(db):
        for login, role in (
            ("admin", "system_administrator"),
            ("chief", "chief_examiner"),
            ("inv1", "invigilator"),
        ):
            add_staff(db, login, login, role, hash_password(PASSWORD), actor="cli:load", now=now)
        db.conn.executemany(
            "INSERT INTO candidates (session_id, ticket, name, id_number, subject, row_no,"
            " imported_at) VALUES (?, ?, ?, ?, 'LOAD', ?, ?)",
            [(SESSION_ID, t, f"Candidate {t}", i, n + 2, now.isoformat())
             for n, (t, i) in enumerate(tickets)],
        )  # fmt: skip
        import_package(load_venue(venue.directory), db, packed.package_dir,
                       practice=False, actor="cli:load", now=now)  # fmt: skip
    db.close()
    tickets_file = root / "tickets.csv"
    tickets_file.write_text("".join(f"{t},{i}\n" for t, i in tickets))
    return Setup(venue.directory, tickets_file, cards, release.code)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def running_server(directory: Path, port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    env = {**os.environ, "CBT_LOG_REQUESTS": "0"}
    command = [sys.executable, "-m", "server.cli", "venue", "serve", str(directory)]
    with (
        log.open("w") as out,
        subprocess.Popen(
            [*command, "--port", str(port)], stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT
        ) as proc,
    ):
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2).close()
                    break
                except OSError:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise SystemExit(f"the server did not start: {log.read_text()}") from None
                    time.sleep(0.2)
            yield proc
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def call(base: str, method: str, path: str, body: Any, headers: dict[str, str]) -> Any:
    # The URL is always http://127.0.0.1:<port> built by this script.
    request = urllib.request.Request(  # noqa: S310
        base + path, data=json.dumps(body).encode(), method=method,
        headers={"Content-Type": "application/json", **headers},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
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


@dataclasses.dataclass
class Phase:
    name: str
    exit_code: int
    rows: dict[str, dict[str, str]]
    seconds: float
    cpu_percent: float  # server process CPU, % of one core, over the measured window
    locust_cpu_percent: float  # the load generator's CPU, % of one core, same window
    load_average: float  # the machine's 1-minute load average at the end of the phase
    events: dict[str, Any]


def run_locust(
    name: str,
    user: str,
    users: int,
    rate: float,
    seconds: int,
    base: str,
    setup: Setup,
    out: Path,
    server: psutil.Process,
    extra_env: dict[str, str] | None = None,
    reset_stats: bool = False,
    measure_after_s: float = 0.0,
) -> Phase:
    """Run one locust phase; CPU figures cover the phase from `measure_after_s` to its end
    (so a steady phase's figures leave out its login ramp)."""
    events_file = out / f"{name}_events.json"
    env = {**os.environ, "CBT_LOAD_TICKETS": str(setup.tickets_file),
           "CBT_LOAD_EVENTS": str(events_file), **(extra_env or {})}  # fmt: skip
    command = [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), user, "--headless",
        "-u", str(users), "-r", str(rate), "-t", f"{seconds}s", "--host", base,
        "--csv", str(out / name), "--only-summary", "--stop-timeout", "5", "--loglevel", "WARNING",
        *(["--reset-stats"] if reset_stats else []),
    ]  # fmt: skip
    began = time.perf_counter()
    cpu_before, window_began = server.cpu_times(), began
    with (out / f"{name}.log").open("w") as log:
        locust = psutil.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT
        )  # fmt: skip
        locust_cpu = locust_cpu_before = 0.0
        measuring = measure_after_s <= 0
        try:
            deadline = time.monotonic() + seconds + 120
            while locust.poll() is None and time.monotonic() < deadline:
                with contextlib.suppress(psutil.Error):
                    times = locust.cpu_times()
                    locust_cpu = times.user + times.system
                if not measuring and time.perf_counter() - began >= measure_after_s:
                    measuring = True
                    cpu_before, window_began = server.cpu_times(), time.perf_counter()
                    locust_cpu_before = locust_cpu
                time.sleep(0.5)
        finally:
            if locust.poll() is None:
                locust.kill()
            code = locust.wait()
    wall = time.perf_counter() - window_began
    cpu_after = server.cpu_times()
    cpu = (cpu_after.user + cpu_after.system - cpu_before.user - cpu_before.system) / wall * 100
    with (out / f"{name}_stats.csv").open() as handle:
        rows = {row["Name"]: row for row in csv.DictReader(handle)}
    events = json.loads(events_file.read_text()) if events_file.exists() else {}
    locust_percent = (locust_cpu - locust_cpu_before) / wall * 100
    return Phase(name, code, rows, wall, cpu, locust_percent, os.getloadavg()[0], events)


def number(row: dict[str, str], column: str) -> float:
    value = row.get(column, "0") or "0"
    return float(value) if value != "N/A" else 0.0


def summarise(phases: dict[str, Phase], fsync: float, unlock_s: float, rss: dict[str, float],
              args: argparse.Namespace) -> tuple[list[str], bool]:  # fmt: skip
    """Markdown lines with the figures and whether every target was met."""
    ping = phases["ping"].rows["ping"]
    ping_rps, ping_p50 = number(ping, "Requests/s"), number(ping, "50%")
    herd = phases["herd"]
    ping_herd = phases["ping_herd"].rows["ping"]
    paper = herd.rows.get("paper", {})
    times = herd.events.get("paper_times", [])
    herd_span = (max(times) - herd.events["started"]) if times else float("nan")
    steady = phases["steady"]
    save = steady.rows.get("save", {})
    steady_rps = number(steady.rows["Aggregated"], "Requests/s")
    capacity = phases["capacity"].rows.get("save", {})
    cap_rps = number(capacity, "Requests/s")
    n = args.candidates
    steady_target = n / 5 + n / 15  # a save every 5 s and a heartbeat every 15 s
    per_request_ms = steady.cpu_percent * 10 / max(steady_rps, 0.001)  # server CPU ms/request
    ping_cpu_ms = phases["ping"].cpu_percent * 10 / max(ping_rps, 0.001)  # the same for /ping
    ping_herd_max_s = number(ping_herd, "Max Response Time") / 1000
    checks = {
        "herd: 100% served, 0 failures": number(paper, "Request Count") == n
        and number(herd.rows["Aggregated"], "Failure Count") == 0,
        "herd: all papers within 10 s": herd_span <= 10,
        "herd: paper p50 <= 3x ping p50 (same herd size)": number(paper, "50%")
        <= 3 * max(number(ping_herd, "50%"), 1),
        "steady: 0 failures": number(steady.rows["Aggregated"], "Failure Count") == 0,
        "steady: save p99 <= 250 ms and <= 10x p50": number(save, "99%") <= 250
        and number(save, "99%") <= 10 * max(number(save, "50%"), 1),
        # At the rate the candidates ask for: a server that falls behind serves fewer
        # requests and so shows less CPU than the scenario would take.
        "steady: server CPU <= 50% (at the demanded request rate)": steady.cpu_percent <= 50
        and per_request_ms * steady_target / 10 <= 50,
        "capacity: saves/s >= 35% of ping/s": cap_rps >= 0.35 * ping_rps,
        "capacity: saves/s >= 10x fsync/s": cap_rps >= 10 * fsync,
        "locust drives ping >= 3x the steady request rate": ping_rps >= 3 * steady_rps,
    }
    lines = [
        "## Venue load",
        "",
        f"Command: `python loadtests/run_venue_load.py --candidates {n} "
        f"--steady-seconds {args.steady_seconds}` (locust FastHttpUser, headless, one locust "
        "process and the server on the same 2-core machine, loopback only). "
        f"Measured {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}.",
        "",
        "| Figure | Value |",
        "|---|---|",
        f"| raw fsync (4 KiB write + fdatasync) | {fsync:,.0f} /s |",
        f"| unlock: release entered to paper decrypted + {n} variants | {unlock_s:.2f} s |",
        f"| ping calibration ({args.ping_users} users, no wait) | {ping_rps:,.0f} req/s, "
        f"p50 {ping_p50:.0f} ms |",
        f"| /ping herd: {n} users spawned within 1 s, no wait (connections alone) | "
        f"{number(ping_herd, 'Requests/s'):,.0f} req/s, p50 {number(ping_herd, '50%'):.0f} ms, "
        f"max {number(ping_herd, 'Max Response Time'):.0f} ms |",
        f"| herd: {n} candidates spawned within 1 s, login + paper | last paper after "
        f"{herd_span:.1f} s; paper p50 {number(paper, '50%'):.0f} ms, p99 "
        f"{number(paper, '99%'):.0f} ms; failures "
        f"{number(herd.rows['Aggregated'], 'Failure Count'):.0f} |",
        f"| steady (after the login ramp): {n} candidates, save every 5 s + heartbeat every 15 s | "
        f"{steady_rps:,.0f} req/s; save p50 {number(save, '50%'):.0f} ms, p99 "
        f"{number(save, '99%'):.0f} ms; failures "
        f"{number(steady.rows['Aggregated'], 'Failure Count'):.0f}; server CPU "
        f"{steady.cpu_percent:.0f}% of one core |",
        f"| what else ran: load generator CPU in herd / steady; machine load average (2 cores) | "
        f"{herd.locust_cpu_percent:.0f}% / {steady.locust_cpu_percent:.0f}% of one core; "
        f"load average {herd.load_average:.1f} / {steady.load_average:.1f} |",
        f"| capacity: {args.capacity_users} users saving back to back | {cap_rps:,.0f} "
        f"acknowledged durable saves/s = {cap_rps / max(ping_rps, 1):.2f}x ping, "
        f"{cap_rps / max(fsync, 1):.1f}x fsync; p99 {number(capacity, '99%'):.0f} ms |",
        f"| server RSS: idle after unlock / after herd / after steady | "
        f"{rss['unlocked']:.0f} / {rss['herd']:.0f} / {rss['steady']:.0f} MiB "
        f"({(rss['steady'] - rss['unlocked']) * 1024 / n:.1f} KiB per candidate) |",
        "",
        "What limits these figures (computed from the same run):",
        "",
        f"- The machine is shared: the 1-minute load average was {herd.load_average:.1f} / "
        f"{steady.load_average:.1f} on 2 cores during the herd / steady phases; the server used "
        f"{herd.cpu_percent:.0f}% / {steady.cpu_percent:.0f}% of one core and locust "
        f"{herd.locust_cpu_percent:.0f}% / {steady.locust_cpu_percent:.0f}%.",
        (
            "- In the steady phase the server and locust together kept "
            f"{(steady.cpu_percent + steady.locust_cpu_percent) / 100:.1f} of the 2 cores busy: "
            "the run is CPU-bound on this machine."
            if steady.cpu_percent + steady.locust_cpu_percent >= 100
            else "- Neither process was CPU-bound: latencies are mostly waiting for a CPU taken "
            "by other work on the shared machine."
        ),
        f"- Server CPU per request in the steady phase: {per_request_ms:.1f} ms (Python, aiohttp, "
        "JSON, the attempt cache, and one group-committed write per save); the "
        f"{steady_target:,.0f} req/s that {n} candidates ask for would need about "
        f"{per_request_ms * steady_target / 1000:.1f} cores for the server alone.",
        f"- Durable saves ran at {cap_rps / max(fsync, 1):.1f}x the raw fsync rate measured "
        "beside them"
        + (
            ": more saves than fsyncs, so group commit shares each commit among many saves."
            if cap_rps > fsync
            else ": fewer saves than the disk could sync, so its sync rate was not the limit."
        ),
        f"- The calibration itself is low ({ping_rps:,.0f} /ping per second), so the ratios "
        "to /ping are the meaningful figures here, not the absolute rates.",
        f"- A bare /ping cost the server {ping_cpu_ms:.2f} ms of CPU in the ping phase, so a "
        f"steady-phase request costs {per_request_ms / max(ping_cpu_ms, 0.001):.1f}x a /ping. "
        "Candidate requests authenticate from the in-memory attempt cache (a database read "
        "only after a change that matters, such as a login) and a save is 4 SQL statements in "
        "the group commit; what is left is mostly aiohttp and asyncio per request, and the "
        "writer thread trading the GIL with the event loop.",
        (
            f"- The /ping herd alone (no database, no login) took {ping_herd_max_s:.1f} s for "
            "its slowest request: opening this many connections at once on this machine "
            "already takes longer than the herd target, whatever the server does behind them."
            if ping_herd_max_s > 10
            else f"- The /ping herd's slowest request took {ping_herd_max_s:.1f} s."
        ),
        "",
        "| Target (PERFORMANCE.md) | Met |",
        "|---|---|",
        *[f"| {name} | {'yes' if ok else '**no**'} |" for name, ok in checks.items()],
        "",
    ]
    return lines, all(checks.values())


def write_section(doc: Path, lines: list[str]) -> None:
    """Replace the "## Venue load" section of docs/performance.md (others are kept)."""
    text = doc.read_text() if doc.exists() else "# Performance\n\n"
    section = "\n".join(lines)
    start = text.find("## Venue load")
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = text.find("\n## ", start + 1)
        text = text[:start] + section + ("\n" + text[end + 1 :] if end >= 0 else "")
    doc.write_text(text.rstrip("\n") + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--candidates", type=int, default=3000)
    parser.add_argument("--items", type=int, default=100)
    parser.add_argument("--steady-seconds", type=int, default=60)
    parser.add_argument("--ping-users", type=int, default=64)
    parser.add_argument("--capacity-users", type=int, default=200)
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "venue-load")
    parser.add_argument("--doc", type=Path, default=ROOT / "docs" / "performance.md")
    parser.add_argument("--no-doc", action="store_true", help="print, do not write the doc")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 4 * args.candidates)), hard))
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="venue-load-") as tmp:
        setup = set_up_venue(Path(tmp), args.candidates, args.items)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        with running_server(setup.directory, port, args.out / "server.log") as proc:
            server = psutil.Process(proc.pid)
            fsync = fsync_rate(setup.directory)
            unlock_s = unlock(base, setup)
            time.sleep(3)  # let the background rendering of every paper finish
            rss = {"unlocked": server.memory_info().rss / 2**20}
            run = lambda *a, **k: run_locust(*a, base=base, setup=setup, out=args.out,  # noqa: E731
                                             server=server, **k)  # fmt: skip
            phases = {"ping": run("ping", "PingUser", args.ping_users, args.ping_users, 15)}
            phases["ping_herd"] = run(
                "ping_herd", "PingUser", args.candidates, args.candidates, 20
            )  # the same number of connections opened at once, with nothing behind them
            phases["herd"] = run(
                "herd", "HerdUser", args.candidates, args.candidates, 180,
                extra_env={"CBT_LOAD_STOP_AFTER_PAPERS": str(args.candidates)},
            )  # fmt: skip
            rss["herd"] = server.memory_info().rss / 2**20
            spawn_rate = max(1, args.candidates // 10)
            phases["steady"] = run(
                "steady", "SteadyUser", args.candidates, spawn_rate,
                args.steady_seconds + 15, extra_env={"CBT_LOAD_P99_MS": "250"},
                reset_stats=True,  # the figures are the steady state, not the login ramp
                # CPU too: from when every user has spawned, waited up to 5 s and logged in.
                measure_after_s=args.candidates / spawn_rate + 6,
            )  # fmt: skip
            rss["steady"] = server.memory_info().rss / 2**20
            phases["capacity"] = run(
                "capacity", "SaveCapacityUser", args.capacity_users, args.capacity_users, 20
            )
    lines, ok = summarise(phases, fsync, unlock_s, rss, args)
    print("\n".join(lines))
    if not args.no_doc:
        write_section(args.doc, lines)
    failed = [p.name for p in phases.values() if p.exit_code != 0]
    if failed:
        print(f"locust thresholds failed in: {', '.join(failed)}")
    return 0 if ok and not failed else 1


if __name__ == "__main__":
    sys.exit(main())
