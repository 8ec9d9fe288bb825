"""Scoring a large session split across processes: results rows, venue by venue.

`score_session` (pipeline.py) scores a session in one process and keeps every candidate's
answers for the verification report: right for one venue or a region, but a national session
(2,000 venues x 250 candidates) is half a million candidates on one core. Here the venues are
cut into chunks and each chunk is scored in a worker process by the same steps, in the same
order, with the same rules: the package read from the central store and verified again, the
keys only after the session's end, the journals checked once per package, registration data,
human marks and approved changes applied, totals and pass/fail by `finalise`. A worker hands
back only the results rows' material (`FinalResult` with the candidate's answers and per-item
points dropped), so the parent's memory grows by what the results files hold.

What it does not make: the verification report (item statistics and similar answers need
every candidate's answers in one place); run `cbt central score` on a region for that.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from paperpack.model import Paper
from paperpack.variants import paused_gc
from server.central.settings import load_central_keys
from server.scoring.changes import Change, load_changes
from server.scoring.engine import score_venue
from server.scoring.journals import journal_holds
from server.scoring.marks import load_marks
from server.scoring.material import (
    KeysNotReleased,
    ScoringError,
    open_material,
    packed_venues,
    session_end,
)
from server.scoring.packages import read_session_packages
from server.scoring.pipeline import PackageContentsInvalid
from server.scoring.registration import apply_registration, load_registration
from server.scoring.results import FinalResult, apply_changes, apply_marks, finalise


@dataclass(frozen=True)
class _Job:
    database_url: str
    central_dir: Path
    session_id: str
    now: datetime
    folder: Path
    paper_sha256: str
    changes: list[Change]


_CACHE: dict[str, Any] = {}


def _open_storage(database_url: str) -> Any:
    from server.central.app import open_storage

    return open_storage(database_url, pg_pool_size=1)


def _worker_state(job: _Job) -> tuple[Any, dict[str, dict[str, str]], dict[str, Any]]:
    """The authority, registration data and marks, loaded once per worker process."""
    if _CACHE.get("job") != job:
        _CACHE.update(
            job=job,
            authority=load_central_keys(job.central_dir),
            people=load_registration(job.folder),
            marks=load_marks(job.folder),
        )
    return _CACHE["authority"], _CACHE["people"], _CACHE["marks"]


def _score_chunk(job: _Job, venues: list[str]) -> list[FinalResult]:
    """Score `venues` in this (worker) process: the steps of `score_session`, per venue."""
    authority, people, marks = _worker_state(job)

    async def read() -> Any:
        storage = _open_storage(job.database_url)
        await storage.open()
        try:
            return await read_session_packages(storage, authority, job.session_id, venues)
        finally:
            await storage.close()

    with paused_gc():
        packages = asyncio.run(read())
        for venue_id, package in packages.items():
            ended = (package.contents.get("session") or {}).get("ended_at")
            if ended and datetime.fromisoformat(str(ended).replace("Z", "+00:00")) > job.now:
                raise KeysNotReleased(
                    f"venue {venue_id} of session {job.session_id} ended at {ended}; the answer "
                    f"keys are released to scoring only after the end: score again after that"
                )
        scores = []
        for venue_id in venues:
            material = open_material(authority, job.session_id, venue_id)
            if material.paper_sha256 != job.paper_sha256:
                raise ScoringError(
                    f"session {job.session_id} was packed with different papers across its "
                    "venues; score each paper as its own session"
                )
            package = packages[venue_id]
            try:
                held = journal_holds(package, job.folder, job.now)
                scores.extend(score_venue(package, material, job.session_id, held))
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise PackageContentsInvalid(
                    f"the package of venue {venue_id} (export {package.export_seq}) holds a "
                    f"record scoring cannot read ({type(exc).__name__}: {exc}); export it "
                    "again at the venue and report the venue software's version"
                ) from None
        del packages
        apply_registration(scores, people)
        apply_marks(scores, material.paper, marks)
        apply_changes(scores, job.changes, material.paper, job.folder)
        results = finalise(scores, material.paper, marks)
        for result in results:  # the rows' material only: not every answer back to the parent
            result.score.received = {}
            result.score.earned = []
            result.score.receipt_venue = result.score.receipt_centre = ""
            result.score.__dict__.pop("answers", None)
        return results


CHUNK_VENUES = 25  # at most this many venues per chunk: a worker's memory is one chunk's


def _chunks(venues: list[str], workers: int) -> list[list[str]]:
    """At least four chunks per worker (so a slow one does not hold the end) and at most
    CHUNK_VENUES venues in each, in venue order."""
    count = max(1, min(len(venues), max(workers * 4, -(-len(venues) // CHUNK_VENUES))))
    size = -(-len(venues) // count)
    return [venues[i : i + size] for i in range(0, len(venues), size)]


async def score_session_split(
    storage: Any,
    central_dir: Path,
    database_url: str,
    session_id: str,
    now: datetime,
    folder: Path,
    workers: int,
) -> tuple[Paper, list[FinalResult]]:
    """The paper and every candidate's final result of `session_id`, on `workers` processes.

    `storage` is the caller's open central store (read here for the change requests);
    each worker opens its own to `database_url`. The results come back sorted as
    `finalise` sorts them (venue, ticket)."""
    authority = load_central_keys(central_dir)
    venues = packed_venues(authority, session_id)
    if not venues:
        raise ScoringError(f"session {session_id} has no packed venue at this authority")
    first = open_material(authority, session_id, venues[0])
    # The session's end from every venue's pack record: no worker opens a key before it.
    ends = [first.ends_at]
    for venue_id in venues[1:]:
        record = json.loads(
            (authority.central_dir(session_id, venue_id) / "pack-record.json").read_text()
        )
        ends.append(session_end(record, first.paper))
    if now < max(ends):
        raise KeysNotReleased(
            f"session {session_id} ends at {max(ends).isoformat()}; the answer keys are released "
            f"to scoring only after the end (now {now.isoformat()}): score again after that time"
        )
    job = _Job(database_url, central_dir, session_id, now, folder, first.paper_sha256,
               await load_changes(storage, session_id))  # fmt: skip
    loop = asyncio.get_running_loop()
    # spawn: a worker starts clean (no copy of the parent's event loop, pools or heap).
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        parts = await asyncio.gather(
            *(loop.run_in_executor(pool, _score_chunk, job, chunk)
              for chunk in _chunks(venues, workers))
        )  # fmt: skip
    return first.paper, [result for part in parts for result in part]
