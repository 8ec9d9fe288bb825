"""Locust scenarios against a running venue server (driven by loadtests/run_venue_load.py).

User classes (pick one per run on the locust command line):

- `PingUser`: GET /ping as fast as it can; the calibration of locust and aiohttp alone.
- `HerdUser`: the exam-start herd: log in and fetch the paper once, then stay idle.
- `SteadyUser`: log in, fetch the paper, then autosave every 5 s and heartbeat every 15 s.
- `SaveCapacityUser`: log in, then save as fast as it can (durable, acknowledged saves/s).

Candidates come from the file in CBT_LOAD_TICKETS (one `ticket,id_number` per line), one per
user. The `quitting` hook sets locust's exit code from thresholds in the environment:
CBT_LOAD_MAX_FAILURES (default 0) and CBT_LOAD_P99_MS (for the request named "save"; unset:
no latency threshold). CBT_LOAD_STOP_AFTER_PAPERS ends the run once that many papers have
arrived. Each user's moment of having its paper is written to CBT_LOAD_EVENTS (JSON) so the
runner can tell how long the whole herd took.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import threading
import time
from pathlib import Path
from typing import Any

from locust import FastHttpUser, between, constant, constant_pacing, events, task

_TICKETS = [
    tuple(line.split(","))
    for line in Path(os.environ.get("CBT_LOAD_TICKETS", "/dev/null")).read_text().splitlines()
    if line.strip()
]
_NEXT = itertools.count()
_LOCK = threading.Lock()
PAPER_TIMES: list[float] = []  # time.time() when each user had its paper
STARTED = time.time()


def next_candidate() -> tuple[str, str]:
    with _LOCK:
        index = next(_NEXT)
    if index >= len(_TICKETS):
        raise RuntimeError("more users than candidates in CBT_LOAD_TICKETS")
    ticket, id_number = _TICKETS[index]
    return ticket, id_number


class CandidateUser(FastHttpUser):
    """A candidate's browser: login, paper, then what the subclass does."""

    abstract = True
    connection_timeout = 60.0
    network_timeout = 60.0
    token = ""
    items: list[dict[str, Any]]
    seq = 0

    def login(self) -> None:
        ticket, id_number = next_candidate()
        with self.client.post(
            "/api/v1/candidate/login",
            json={"ticket": ticket, "id_number": id_number.strip()},
            name="login",
            catch_response=True,
        ) as resp:
            if resp.status_code != 200:
                resp.failure(f"login {resp.status_code}: {(resp.text or '')[:200]}")
                return
            body = resp.json()
            self.token = body["token"]
            self.seq = int(body["attempt"]["acked_seq"])

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def fetch_paper(self) -> None:
        with self.client.get(
            "/api/v1/attempt/paper", headers=self.auth, name="paper", catch_response=True
        ) as resp:
            if resp.status_code != 200:
                resp.failure(f"paper {resp.status_code}: {(resp.text or '')[:200]}")
                self.items = []
                return
            paper = resp.json()
        self.items = [i for s in paper["sections"] for i in s["items"]]
        PAPER_TIMES.append(time.time())
        target = int(os.environ.get("CBT_LOAD_STOP_AFTER_PAPERS", "0"))
        if target and len(PAPER_TIMES) >= target and self.environment.runner is not None:
            self.environment.runner.quit()  # the whole herd has its paper: the phase is over

    def answer(self, item: dict[str, Any]) -> Any:
        if "options" in item:
            return [random.choice(item["options"])["id"]]
        if "blanks" in item:
            return ["answer"] * len(item["blanks"])
        return "An essay answer, saved again and again. " * random.randint(1, 5)

    def save(self) -> None:
        if not self.token or not self.items:
            return
        self.seq += 1
        chosen = random.sample(self.items, k=min(3, len(self.items)))
        body = {"seq": self.seq, "responses": {i["id"]: self.answer(i) for i in chosen}}
        with self.client.put(
            "/api/v1/attempt/responses",
            json=body,
            headers=self.auth,
            name="save",
            catch_response=True,
        ) as resp:
            if resp.status_code != 200 or resp.json().get("acked_seq") != self.seq:
                resp.failure(f"save {resp.status_code}: {(resp.text or '')[:200]}")

    def heartbeat(self) -> None:
        if self.token:
            self.client.post("/api/v1/attempt/heartbeat", headers=self.auth, name="heartbeat")


class PingUser(FastHttpUser):
    """Calibration: the bare endpoint with no database and no auth."""

    wait_time = constant(0)

    @task
    def ping(self) -> None:
        self.client.get("/ping", name="ping")


class HerdUser(CandidateUser):
    """All candidates released at once: log in and fetch the paper, then wait."""

    wait_time = constant(3600)

    def on_start(self) -> None:
        self.login()
        if self.token:
            self.fetch_paper()

    @task
    def idle(self) -> None:
        """Nothing more: the herd is about the start."""


class SteadyUser(CandidateUser):
    """Autosave every 5 s and a heartbeat every 15 s (every third beat)."""

    wait_time = constant_pacing(5)
    beats = 0

    def on_start(self) -> None:
        time.sleep(random.uniform(0, 5))  # browsers do not autosave in lockstep
        self.login()
        if self.token:
            self.fetch_paper()

    @task
    def autosave(self) -> None:
        self.save()
        self.beats += 1
        if self.beats % 3 == 0:
            self.heartbeat()


class SaveCapacityUser(CandidateUser):
    """Saves back to back: the throughput of durable, acknowledged saves."""

    wait_time = between(0, 0)

    def on_start(self) -> None:
        self.login()
        if self.token:
            self.fetch_paper()

    @task
    def save_now(self) -> None:
        self.save()


@events.quitting.add_listener
def set_exit_code(environment: Any, **_: Any) -> None:
    """Exit 1 when failures or the save latency exceed the thresholds."""
    stats = environment.stats
    problems = []
    max_failures = int(os.environ.get("CBT_LOAD_MAX_FAILURES", "0"))
    if stats.total.num_failures > max_failures:
        problems.append(f"{stats.total.num_failures} failures (allowed {max_failures})")
    p99_limit = os.environ.get("CBT_LOAD_P99_MS")
    save = stats.get("save", "PUT")
    if (
        p99_limit
        and save.num_requests
        and save.get_response_time_percentile(0.99) > float(p99_limit)
    ):
        problems.append(f"save p99 {save.get_response_time_percentile(0.99)} ms > {p99_limit}")
    events_file = os.environ.get("CBT_LOAD_EVENTS")
    if events_file:
        Path(events_file).write_text(
            json.dumps({"started": STARTED, "paper_times": PAPER_TIMES, "problems": problems})
        )
    if problems:
        print("THRESHOLDS FAILED: " + "; ".join(problems))
        environment.process_exit_code = 1
    else:
        environment.process_exit_code = 0
