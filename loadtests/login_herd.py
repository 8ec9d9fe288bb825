"""3,000 candidates behind one address log in within a minute, typos and a guesser included
(issue 16, F3): a bounded load test against a real `cbt venue serve`, not a timed pytest.

    python loadtests/login_herd.py                      # 3,000 over 30 s, 5% typos
    python loadtests/login_herd.py --candidates 3000 --spread 45 --typos 0.08 --server-core 0
    python loadtests/login_herd.py --tree /tmp/cbt_before       # the same against another checkout

It builds a venue like the venue load test (`loadtests/venue_setup.py`: an authority, a
packed synthetic paper, staff, a roster of `--candidates` + 1 and the imported package),
serves it on loopback, unlocks it over HTTP, then from ONE address (127.0.0.1, every
request on a fresh connection, as many PCs behind one NAT would be):

- the room: each candidate starts at a random moment within `--spread` seconds; a share of
  them (`--typos`) first type a wrong ID number (one digit changed), see 401 and type it
  again right; a 429 is waited out as its Retry-After says. Every one must log in within
  `--deadline` seconds (60) of the first.
- a guesser, the whole time, on the one ticket kept out of the room: wrong ID numbers back
  to back. Its checked guesses (401) must stay few (a growing delay after 3), each refusal a
  429 with Retry-After.

Prints one table and exits 1 if any candidate did not log in in time, any 429 lacked
Retry-After, or the guesser got more than `--max-guesses` checked guesses.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from loadtests.run_venue_load import free_port  # noqa: E402
from loadtests.venue_setup import running_server, set_up_venue, unlock, wait_idle  # noqa: E402

LOGIN = "/api/v1/candidate/login"


@dataclass
class Tally:
    logged_in: list[float] = field(default_factory=list)  # seconds from the start, each
    latencies: list[float] = field(default_factory=list)  # of the successful login requests
    typos: int = 0
    refused_429: int = 0
    missing_retry_after: int = 0
    errors: list[str] = field(default_factory=list)
    guesses_checked: int = 0
    guesses_refused: int = 0
    guesser_waits: list[int] = field(default_factory=list)


def mistype(id_number: str) -> str:
    i = random.randrange(len(id_number) - 4, len(id_number))
    digit = id_number[i]
    other = str((int(digit) + 1) % 10) if digit.isdigit() else "0"
    return id_number[:i] + other + id_number[i + 1 :]


async def post(http: aiohttp.ClientSession, base: str, body: dict[str, str]) -> tuple[int, str]:
    async with http.post(base + LOGIN, json=body) as resp:
        await resp.read()
        return resp.status, resp.headers.get("Retry-After", "")


async def candidate(
    http: aiohttp.ClientSession, base: str, ticket: str, id_number: str, start_at: float,
    began: float, typo: bool, tally: Tally, deadline: float,
) -> None:  # fmt: skip
    await asyncio.sleep(max(0.0, began + start_at - time.perf_counter()))
    if typo:
        tally.typos += 1
        status, _ = await post(http, base, {"ticket": ticket, "id_number": mistype(id_number)})
        if status != 401:
            tally.errors.append(f"{ticket}: the typo got {status}")
    while time.perf_counter() - began < deadline + 30:
        sent = time.perf_counter()
        try:
            status, retry_after = await post(http, base, {"ticket": ticket, "id_number": id_number})
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            tally.errors.append(f"{ticket}: {type(exc).__name__}")
            await asyncio.sleep(1)
            continue
        if status == 200:
            tally.latencies.append(time.perf_counter() - sent)
            tally.logged_in.append(time.perf_counter() - began)
            return
        if status == 429:
            tally.refused_429 += 1
            if not retry_after:
                tally.missing_retry_after += 1
            await asyncio.sleep(float(retry_after or 1))
            continue
        tally.errors.append(f"{ticket}: {status}")
        return


async def guesser(
    http: aiohttp.ClientSession, base: str, ticket: str, stop: asyncio.Event, tally: Tally
) -> None:
    n, first_refusal = 0, True
    while not stop.is_set():
        n += 1
        status, retry_after = await post(http, base, {"ticket": ticket, "id_number": f"G{n:017d}"})
        if status == 401:
            tally.guesses_checked += 1
            first_refusal = True
        elif status == 429:
            tally.guesses_refused += 1
            if not retry_after:
                tally.missing_retry_after += 1
            elif first_refusal:  # the wait each checked guess earned
                tally.guesser_waits.append(int(retry_after))
                first_refusal = False
        else:
            tally.errors.append(f"guesser: {status}")
        await asyncio.sleep(0.05)  # an attacker's pace: 20 tries a second


async def herd(base: str, tickets: list[tuple[str, str]], args: argparse.Namespace) -> Tally:
    tally = Tally()
    room, target = tickets[:-1], tickets[-1]
    # One address, a fresh connection per request (force_close), at most --connections open.
    connector = aiohttp.TCPConnector(limit=args.connections, force_close=True)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        stop = asyncio.Event()
        began = time.perf_counter()
        attacker = asyncio.create_task(guesser(http, base, target[0], stop, tally))
        typo_count = round(args.typos * len(room))
        typos = set(random.sample(range(len(room)), typo_count))
        await asyncio.gather(*(
            candidate(http, base, t, i, random.uniform(0, args.spread), began, n in typos,
                      tally, args.deadline)
            for n, (t, i) in enumerate(room)
        ))  # fmt: skip
        stop.set()
        await attacker
    return tally


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--candidates", type=int, default=3000)
    parser.add_argument("--spread", type=float, default=30.0, help="seconds the room logs in over")
    parser.add_argument("--typos", type=float, default=0.05, help="share who mistype first")
    parser.add_argument("--deadline", type=float, default=60.0, help="seconds for all to be in")
    parser.add_argument("--max-guesses", type=int, default=12, help="checked guesses allowed")
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--items", type=int, default=20)
    parser.add_argument("--server-core", default=None, help="taskset core for the server")
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--tree", type=Path, default=ROOT, help="serve from this checkout")
    args = parser.parse_args(argv)
    random.seed(args.seed)
    host = "127.0.0.1"
    with tempfile.TemporaryDirectory(prefix="cbt-login-herd-") as work:
        root = Path(work)
        setup = set_up_venue(root, args.candidates + 1, args.items)
        tickets = [
            (t, i) for t, i in (line.split(",") for line in setup.tickets_file.read_text().split())
        ]
        port = free_port(host)
        base = f"http://{host}:{port}"
        with running_server(setup.directory, host, port, root / "server.log",
                            tree=args.tree, core=args.server_core) as proc:  # fmt: skip
            unlock(base, setup)
            wait_idle(proc.pid)
            tally = asyncio.run(herd(base, tickets, args))
    last = max(tally.logged_in, default=float("nan"))
    in_time = sum(1 for t in tally.logged_in if t <= args.deadline)
    rows = [
        ("candidates behind one address", f"{args.candidates}"),
        ("logged in", f"{len(tally.logged_in)} ({in_time} within {args.deadline:.0f} s)"),
        ("last login at", f"{last:.1f} s (room spread over {args.spread:.0f} s)"),
        ("login latency p50 / p95 / max", f"{percentile(tally.latencies, 0.5) * 1000:.0f} / "
         f"{percentile(tally.latencies, 0.95) * 1000:.0f} / "
         f"{max(tally.latencies, default=0) * 1000:.0f} ms"),
        ("typed a wrong ID first", f"{tally.typos}"),
        ("room's 429s", f"{tally.refused_429}"),
        ("guesser on one ticket: checked / refused", f"{tally.guesses_checked} / "
         f"{tally.guesses_refused} (waits {', '.join(map(str, tally.guesser_waits))} s)"),
        ("429s without Retry-After", f"{tally.missing_retry_after}"),
        ("other errors", f"{len(tally.errors)} {tally.errors[:3]}"),
    ]  # fmt: skip
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    ok = (
        in_time == args.candidates
        and not tally.missing_retry_after
        and not tally.errors
        and tally.guesses_checked <= args.max_guesses
    )
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
