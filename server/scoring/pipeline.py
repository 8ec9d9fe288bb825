"""Scoring one session end to end: packages from the store, keys after the end, results.

`score_session` is what `cbt central score`, the essay export, the report route and the
benchmark all call. It reads (never writes) the central store; results, marks and the
journal verdicts (`server.scoring.journals`, one per package) live as files in
`DIR/results/<session>/` and changes as events in the store's audit chain, so the same code
runs unchanged on SQLite and PostgreSQL (see docs/scoring.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from paperpack.authority import Authority
from paperpack.model import Paper
from paperpack.session import ID_PATTERN
from paperpack.variants import paused_gc
from server.central.storage import CentralStorage
from server.scoring.changes import Change, load_changes
from server.scoring.engine import CandidateScore, score_venue
from server.scoring.journals import journal_holds
from server.scoring.marks import load_marks
from server.scoring.material import (
    ScoringError,
    VenueEnd,
    VenueMaterial,
    packed_venues,
    release_keys,
)
from server.scoring.packages import VenuePackage, read_session_packages
from server.scoring.registration import apply_registration, load_registration
from server.scoring.results import FinalResult, apply_changes, apply_marks, finalise

RESULTS = "results"


class PackageContentsInvalid(ScoringError):
    """A verified package holds records scoring cannot read (a venue export bug)."""


def results_dir(central_dir: Path, session_id: str) -> Path:
    """Where a session's results, marks and secrets live."""
    if not ID_PATTERN.match(session_id):
        raise ScoringError(
            f"{session_id!r} is not a session id (1-64 letters, digits, '.', '_' or '-')"
        )
    return central_dir / RESULTS / session_id


@dataclass
class ScoredSession:
    """Everything one scoring run produced."""

    session_id: str
    paper: Paper
    material: dict[str, VenueMaterial]
    packages: dict[str, VenuePackage]
    scores: list[CandidateScore]
    results: list[FinalResult]
    changes: list[Change]


def _venue_ends(packages: dict[str, VenuePackage]) -> dict[str, VenueEnd]:
    """Each venue's word on the session's end, from its newest export: the end-of-session
    report when it has one; an older export's `session.ended_at` is never final."""
    ends = {}
    for venue_id, package in packages.items():
        report = package.contents.get("end_report")
        if isinstance(report, dict):
            final = report.get("final") is True
            when = report.get("ended_at") if final else report.get("expected_end")
            ends[venue_id] = VenueEnd(final, _time(when))
        else:
            ended = (package.contents.get("session") or {}).get("ended_at")
            ends[venue_id] = VenueEnd(False, _time(ended))
    return ends


def _time(text: object) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(str(text).replace("Z", "+00:00"))


def _one_paper(material: dict[str, VenueMaterial], session_id: str) -> Paper:
    hashes = {m.paper_sha256 for m in material.values()}
    if len(hashes) != 1:
        raise ScoringError(
            f"session {session_id} was packed with {len(hashes)} different papers across its "
            "venues; score each paper as its own session"
        )
    return next(iter(material.values())).paper


async def score_session(
    storage: CentralStorage,
    authority: Authority,
    session_id: str,
    now: datetime,
    folder: Path,
) -> ScoredSession:
    """Score every venue of `session_id`; `folder` is the session's results directory."""
    venues = packed_venues(authority, session_id)
    # Decoding and scoring make millions of small containers and no cycles: collecting them
    # over and over costs more than the work itself (see paperpack.variants.paused_gc).
    with paused_gc():
        packages = await read_session_packages(storage, authority, session_id, venues)
        material = release_keys(authority, session_id, now, _venue_ends(packages))
        paper = _one_paper(material, session_id)
        scores: list[CandidateScore] = []
        for venue_id in venues:
            try:
                held = journal_holds(packages[venue_id], folder, now)
                scores.extend(score_venue(packages[venue_id], material[venue_id], session_id, held))
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise PackageContentsInvalid(
                    f"the package of venue {venue_id} (export {packages[venue_id].export_seq}) "
                    f"holds a record scoring cannot read ({type(exc).__name__}: {exc}); "
                    "export it again at the venue and report the venue software's version"
                ) from None
    apply_registration(scores, load_registration(folder))
    marks = load_marks(folder)
    changes = await load_changes(storage, session_id)
    apply_marks(scores, paper, marks)
    apply_changes(scores, changes, paper, folder)
    results = finalise(scores, paper, marks)
    return ScoredSession(session_id, paper, material, packages, scores, results, changes)
