"""The venue load generator: one asyncio process with an aiohttp client, no locust.

Run by `loadtests/run_venue_load.py` (pinned to its own core with `taskset`), or by hand
against a venue server that is already unlocked:

    python loadtests/venue_client.py --base http://127.0.0.1:8080 --tickets tickets.csv \
        --plan '[{"kind": "herd", "candidates": 3000}, {"kind": "capacity", "concurrency": 200}]'

Phase kinds (`--plan` is a JSON list of them, run in order in this one process):

- `ping`: `concurrency` clients GET /ping back to back for `seconds` (the calibration);
- `herd`: `candidates` fresh candidates (the next tickets in the file) released at once, each
  on its own new connection: log in, fetch the paper; the time until the last paper;
- `steady`: the first `candidates` who have a paper save every 5 s and send a heartbeat every
  15 s for `seconds`, after a 5 s ramp in which each starts at a random moment;
- `capacity`: `concurrency` candidates with a paper save back to back for `seconds`.

Every phase except `ping` is preceded by a ping calibration at 200 concurrent
(`calibrate_concurrency`, `calibrate_seconds`): what this generator can drive; a capacity
phase at another concurrency also gets a /ping baseline at its own concurrency. For each
phase the result holds the rate, latencies, failures, this process's CPU and, with
`--server-pid` (same machine), the server's CPU (utime + stime from /proc/<pid>/stat, all its
threads) and RSS over exactly the measured window, and the load average. Whether a phase is a
server figure or generator-bound is decided by the runner (`run_venue_load.judge`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

TICK = os.sysconf("SC_CLK_TCK")
ESSAY = "An essay answer, saved again and again. "


def proc_cpu_s(pid: int | None) -> float:
    """utime + stime of process `pid` (every thread), in seconds; 0 without a pid."""
    if not pid:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # fields 14 and 15 of proc(5)


def sched_ns(pid: int | None) -> tuple[int, int]:
    """(ns on a CPU, ns runnable but waiting for one) of every thread of `pid`, from
    /proc/<pid>/task/*/schedstat; (0, 0) without a pid or where the kernel does not say."""
    if not pid:
        return 0, 0
    run = wait = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "schedstat").read_text().split()
        except OSError:  # the thread ended meanwhile
            continue
        run, wait = run + int(fields[0]), wait + int(fields[1])
    return run, wait


def availability(before: tuple[int, int], after: tuple[int, int]) -> float:
    """Of the time a process wanted a CPU, the share it got one (1.0: never waited)."""
    run, wait = after[0] - before[0], after[1] - before[1]
    return run / (run + wait) if run + wait > 0 else 1.0


def proc_rss_mib(pid: int | None) -> float:
    if not pid:
        return 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass
class Candidate:
    ticket: str
    id_number: str
    token: str = ""
    seq: int = 0
    items: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Window:
    """What happened in one measured window."""

    server_pid: int | None
    began: float = 0.0
    cpu0: float = 0.0
    server0: float = 0.0
    sched0: tuple[tuple[int, int], tuple[int, int]] = ((0, 0), (0, 0))
    latencies: dict[str, list[float]] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def start(self) -> None:
        self.began = time.perf_counter()
        self.cpu0 = time.process_time()
        self.server0 = proc_cpu_s(self.server_pid)
        self.sched0 = sched_ns(self.server_pid), sched_ns(os.getpid())

    def ok(self, name: str, seconds: float) -> None:
        self.latencies.setdefault(name, []).append(seconds)

    def fail(self, name: str, why: str) -> None:
        self.failures[name] = self.failures.get(name, 0) + 1
        if len(self.errors) < 10:
            self.errors.append(f"{name}: {why}"[:300])

    def finish(self, **extra: Any) -> dict[str, Any]:
        wall = time.perf_counter() - self.began
        server_cpu = proc_cpu_s(self.server_pid) - self.server0
        generator_cpu = time.process_time() - self.cpu0
        count = sum(len(v) for v in self.latencies.values())
        failed = sum(self.failures.values())
        result: dict[str, Any] = {
            "wall_s": wall,
            "requests": count,
            "failures": failed,
            "rate": count / wall if wall else 0.0,
            "server_cpu_s": server_cpu,
            "server_cpu_per_request_ms": server_cpu * 1000 / count if count else None,
            "server_core_share": server_cpu / wall if wall else 0.0,
            "generator_cpu_s": generator_cpu,
            "generator_core_share": generator_cpu / wall if wall else 0.0,
            # Of the time each wanted a CPU, the share it got one: the rest went to other work
            # on the machine (the server's threads together; the generator's).
            "server_cpu_availability": availability(self.sched0[0], sched_ns(self.server_pid)),
            "generator_cpu_availability": availability(self.sched0[1], sched_ns(os.getpid())),
            "server_rss_mib": proc_rss_mib(self.server_pid),
            "load_average": os.getloadavg()[0],
            "errors": self.errors,
            "requests_by_name": {
                name: {
                    "count": len(values),
                    "failures": self.failures.get(name, 0),
                    "p50_ms": percentile(values, 0.50) * 1000,
                    "p99_ms": percentile(values, 0.99) * 1000,
                    "max_ms": max(values) * 1000 if values else float("nan"),
                }
                for name, values in self.latencies.items()
            },
        }
        result.update(extra)
        return result


class Generator:
    def __init__(self, base: str, tickets: list[tuple[str, str]], server_pid: int | None) -> None:
        self.base = base.rstrip("/")
        self.pool = [Candidate(t, i) for t, i in tickets]
        self.next_fresh = 0
        self.with_paper: list[Candidate] = []
        self.server_pid = server_pid

    def session(self, limit: int) -> aiohttp.ClientSession:
        timeout = aiohttp.ClientTimeout(total=120)
        connector = aiohttp.TCPConnector(limit=limit, force_close=False, ttl_dns_cache=None)
        return aiohttp.ClientSession(connector=connector, timeout=timeout)

    # -- requests ------------------------------------------------------------------------

    async def request(
        self, http: aiohttp.ClientSession, window: Window, name: str, method: str, path: str,
        body: Any = None, token: str = "",
    ) -> Any:  # fmt: skip
        headers = {"Authorization": f"Bearer {token}"} if token else None
        began = time.perf_counter()
        try:
            async with http.request(
                method, self.base + path, json=body, headers=headers
            ) as response:
                payload = await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            window.fail(name, f"{type(exc).__name__}: {exc}")
            return None
        if status != 200:
            window.fail(name, f"{status} {payload[:200]!r}")
            return None
        window.ok(name, time.perf_counter() - began)
        return payload

    async def login_and_paper(
        self, http: aiohttp.ClientSession, window: Window, cand: Candidate
    ) -> float | None:
        body = await self.request(http, window, "login", "POST", "/api/v1/candidate/login",
                                  {"ticket": cand.ticket, "id_number": cand.id_number})  # fmt: skip
        if body is None:
            return None
        answer = json.loads(body)
        cand.token = answer["token"]
        cand.seq = int(answer["attempt"]["acked_seq"])
        paper = await self.request(http, window, "paper", "GET", "/api/v1/attempt/paper",
                                   token=cand.token)  # fmt: skip
        if paper is None:
            return None
        cand.items = [i for s in json.loads(paper)["sections"] for i in s["items"]]
        self.with_paper.append(cand)
        return time.perf_counter()

    async def save(self, http: aiohttp.ClientSession, window: Window, cand: Candidate) -> None:
        cand.seq += 1
        chosen = random.sample(cand.items, k=min(3, len(cand.items)))
        body = {"seq": cand.seq, "responses": {i["id"]: answer(i) for i in chosen}}
        reply = await self.request(http, window, "save", "PUT", "/api/v1/attempt/responses",
                                   body, cand.token)  # fmt: skip
        if reply is not None and json.loads(reply).get("acked_seq") != cand.seq:
            window.fail("save", f"acked {reply[:100]!r}, sent seq {cand.seq}")

    # -- phases --------------------------------------------------------------------------

    async def ping(self, concurrency: int, seconds: float) -> dict[str, Any]:
        window = Window(self.server_pid)
        async with self.session(concurrency) as http:
            # Open the connections first: the calibration is of requests, not of connecting.
            await asyncio.gather(*(self.request(http, Window(None), "ping", "GET", "/ping")
                                   for _ in range(concurrency)))  # fmt: skip
            window.start()
            end = time.perf_counter() + seconds

            async def worker() -> None:
                while time.perf_counter() < end:
                    await self.request(http, window, "ping", "GET", "/ping")

            await asyncio.gather(*(worker() for _ in range(concurrency)))
        return window.finish(kind="ping", concurrency=concurrency)

    async def herd(self, candidates: int) -> dict[str, Any]:
        fresh = self.pool[self.next_fresh : self.next_fresh + candidates]
        if len(fresh) < candidates:
            raise SystemExit(f"the herd needs {candidates} fresh tickets; {len(fresh)} are left")
        self.next_fresh += candidates
        window = Window(self.server_pid)
        async with self.session(0) as http:  # no limit: each candidate opens its own connection
            window.start()
            done = await asyncio.gather(*(self.login_and_paper(http, window, c) for c in fresh))
            finished = [t for t in done if t is not None]
            last = (max(finished) - window.began) if finished else float("nan")
            return window.finish(kind="herd", candidates=candidates, served=len(finished),
                                 last_paper_s=last)  # fmt: skip

    async def steady(self, candidates: int, seconds: float, ramp: float = 5.0) -> dict[str, Any]:
        group = self.with_paper[:candidates]
        if len(group) < candidates:
            raise SystemExit(f"steady needs {candidates} candidates with a paper; {len(group)}")
        window = Window(self.server_pid)
        async with self.session(0) as http:
            began = time.perf_counter()
            measure_from, end = began + ramp, began + ramp + seconds
            ignored = Window(None)

            async def browser(cand: Candidate) -> None:
                await asyncio.sleep(random.uniform(0, ramp))
                beat = 0
                next_at = time.perf_counter()
                while next_at < end:
                    target = window if next_at >= measure_from else ignored
                    await self.save(http, target, cand)
                    beat += 1
                    if beat % 3 == 0:
                        path = "/api/v1/attempt/heartbeat"
                        await self.request(http, target, "heartbeat", "POST", path,
                                           token=cand.token)  # fmt: skip
                    next_at += 5.0
                    await asyncio.sleep(max(0.0, next_at - time.perf_counter()))

            async def measure() -> None:
                await asyncio.sleep(max(0.0, measure_from - time.perf_counter()))
                window.start()

            await asyncio.gather(measure(), *(browser(c) for c in group))
            result = window.finish(kind="steady", candidates=candidates,
                                   asked_rate=candidates / 5 + candidates / 15)  # fmt: skip
            result["failures"] += sum(ignored.failures.values())  # the ramp's failures count
            return result

    async def capacity(self, concurrency: int, seconds: float) -> dict[str, Any]:
        group = self.with_paper[:concurrency]
        if len(group) < concurrency:
            raise SystemExit(f"capacity needs {concurrency} candidates with a paper; {len(group)}")
        window = Window(self.server_pid)
        async with self.session(concurrency) as http:
            await asyncio.gather(*(self.save(http, Window(None), c) for c in group))  # warm
            window.start()
            end = time.perf_counter() + seconds

            async def worker(cand: Candidate) -> None:
                while time.perf_counter() < end:
                    await self.save(http, window, cand)

            await asyncio.gather(*(worker(c) for c in group))
        return window.finish(kind="capacity", concurrency=concurrency)

    async def run(self, plan: list[dict[str, Any]]) -> list[dict[str, Any]]:
        results = []
        for step in plan:
            kind = step["kind"]
            name = step.get("name", kind)
            calibration = baseline = None
            seconds = step.get("calibrate_seconds", 3.0)
            if kind != "ping":  # what this generator can drive, at a concurrency that is not
                # latency-bound; and for capacity the /ping baseline at the phase's concurrency
                calibration = await self.ping(step.get("calibrate_concurrency", 200), seconds)
                concurrency = step.get("concurrency", 0)
                if kind == "capacity" and concurrency != calibration["concurrency"]:
                    baseline = await self.ping(concurrency, seconds)
            if kind == "ping":
                result = await self.ping(step["concurrency"], step.get("seconds", 5.0))
            elif kind == "herd":
                result = await self.herd(step["candidates"])
            elif kind == "steady":
                result = await self.steady(
                    step["candidates"], step.get("seconds", 30.0), step.get("ramp_seconds", 5.0)
                )
            elif kind == "capacity":
                result = await self.capacity(step["concurrency"], step.get("seconds", 10.0))
            else:
                raise SystemExit(f"unknown phase kind {kind!r}: ping, herd, steady or capacity")
            result["name"] = name
            result["calibration"] = calibration
            result["baseline"] = baseline or calibration
            results.append(result)
            print(json.dumps({"phase": name, "rate": round(result["rate"]),
                              "failures": result["failures"]}), flush=True)  # fmt: skip
        return results


def answer(item: dict[str, Any]) -> Any:
    if "options" in item:
        return [random.choice(item["options"])["id"]]
    if "blanks" in item:
        return ["answer"] * len(item["blanks"])
    return ESSAY * random.randint(1, 5)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, help="the server, e.g. http://127.0.0.1:8080")
    parser.add_argument("--tickets", type=Path, required=True, help="ticket,id_number per line")
    parser.add_argument("--plan", required=True, help="the phases: a JSON list, or @file")
    parser.add_argument("--server-pid", type=int, help="the server's pid (same machine)")
    parser.add_argument("--out", type=Path, help="write the results here (JSON)")
    args = parser.parse_args()
    plan = json.loads(Path(args.plan[1:]).read_text() if args.plan.startswith("@") else args.plan)
    tickets = [
        (t.strip(), i.strip())
        for t, i in (line.split(",", 1) for line in args.tickets.read_text().splitlines() if line)
    ]
    generator = Generator(args.base, tickets, args.server_pid)
    results = asyncio.run(generator.run(plan))
    text = json.dumps(results, indent=1)
    if args.out:
        args.out.write_text(text)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
