"""A session's final results: objective scores + human marks + approved changes, and exports.

Order of application: objective scores (`server.scoring.engine`), then essay marks imported
with `import-marks`, then approved changes in approval order (`server.scoring.changes`).
Totals are exact sums (`math.fsum`); pass/fail compares the total with the paper's published
`pass_mark`, and only for a final status (`scored` with every essay marked).

Statuses: `scored`, `pending` (essays not marked yet), `absent`, `cancelled` (score 0, with
the violation or change reference), `held` (variant mismatch: never scored until resolved).

Exports (art. 35(6)): the publication CSV/JSON carry the ID number masked
(`110101********1234`) and no names; the internal copies under the session's results
directory carry both. CSV is UTF-8 with a BOM so spreadsheet programs read it right.
Files are written atomically (temporary file, fsync, rename).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from paperpack.model import Paper
from server.protocol.candidate_receipt import short_code
from server.scoring.changes import APPROVED, Change, read_personal
from server.scoring.engine import ABSENT, CANCELLED, HELD, SCORED, CandidateScore
from server.scoring.material import ScoringError

PENDING = "pending"
PUBLIC_COLUMNS = (
    "venue_id", "ticket", "id_number", "status", "objective", "subjective", "total", "result",
    "references",
)  # fmt: skip
INTERNAL_COLUMNS = ("venue_id", "ticket", "name", "id_number", *PUBLIC_COLUMNS[3:], "flags")


def mask_id(id_number: str) -> str:
    """An ID number for publication: first 6 and last 4 kept, the rest starred."""
    n = len(id_number)
    if n <= 4:
        return "*" * n
    if n < 12:
        return "*" * (n - 4) + id_number[-4:]
    return id_number[:6] + "*" * (n - 10) + id_number[-4:]


@dataclass
class FinalResult:
    """One candidate's published result and what it came from."""

    score: CandidateScore
    status: str
    objective: float
    subjective: float
    total: float | None  # None while held
    passed: bool | None  # None: not final (held, pending) or no pass mark published

    def row(self, *, public: bool) -> dict[str, Any]:
        s = self.score
        out: dict[str, Any] = {
            "venue_id": s.venue_id,
            "ticket": s.ticket,
            "id_number": mask_id(s.id_number) if public else s.id_number,
            "status": self.status,
            "objective": _num(self.objective),
            "subjective": _num(self.subjective),
            "total": _num(self.total),
            "result": {True: "pass", False: "fail", None: ""}[self.passed],
            "references": ";".join(s.references),
        }
        if not public:
            out["name"] = s.name
            out["flags"] = ";".join(s.flags)
        return out


def _num(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def _essay_positions(paper: Paper) -> dict[str, int]:
    return {item.item_id: n for n, item in enumerate(paper.items()) if item.type == "essay"}


def apply_marks(
    scores: Iterable[CandidateScore],
    paper: Paper,
    marks: Mapping[str, Mapping[str, float]],
) -> None:
    """Put human marks (ticket -> item id -> points) into the essays' places."""
    positions = _essay_positions(paper)
    for score in scores:
        given = marks.get(score.ticket, {})
        if score.earned:
            for item_id, mark in given.items():
                if item_id in positions:
                    score.earned[positions[item_id]] = float(mark)


def _apply_change(score: CandidateScore, change: Change, paper: Paper, results_dir: Path) -> None:
    cite = f"change:{change.change_id}"
    if change.kind == "cancel" and score.status == SCORED:
        score.status = CANCELLED
        score.references.append(f"{cite}({change.evidence})")
    elif change.kind == "restore" and score.status == CANCELLED:
        score.status = SCORED
        score.references.append(f"{cite}({change.evidence})")
    elif change.kind == "correct" and score.earned and change.points is not None:
        index = [i.item_id for i in paper.items()].index(change.item_id)
        score.earned[index] = change.points
        score.references.append(cite)
    elif change.kind == "personal":
        for name, value in read_personal(results_dir, change).items():
            setattr(score, name, value)
        score.references.append(cite)


def apply_changes(
    scores: Iterable[CandidateScore], changes: Iterable[Change], paper: Paper, results_dir: Path
) -> None:
    """Apply approved changes in the order they were approved."""
    by_ticket = {s.ticket: s for s in scores}
    approved = sorted((c for c in changes if c.status == APPROVED), key=lambda c: c.decided_at)
    for change in approved:
        score = by_ticket.get(change.ticket)
        if score is not None:
            _apply_change(score, change, paper, results_dir)


def finalise(
    scores: Iterable[CandidateScore], paper: Paper, marks: Mapping[str, Mapping[str, float]]
) -> list[FinalResult]:
    """Totals, statuses and pass/fail for every candidate (after marks and changes)."""
    positions = _essay_positions(paper)
    out = []
    for s in scores:
        if s.status == HELD:
            out.append(FinalResult(s, HELD, 0.0, 0.0, None, None))
            continue
        if s.status in (ABSENT, CANCELLED):
            out.append(FinalResult(s, s.status, 0.0, 0.0, 0.0, None))
            continue
        subjective = math.fsum(s.earned[p] for p in positions.values())
        objective = math.fsum(s.earned) - subjective
        total = math.fsum(s.earned)
        missing = [i for i in positions if i not in marks.get(s.ticket, {})]
        status = PENDING if missing else SCORED
        passed = None
        if status == SCORED and paper.pass_mark is not None:
            passed = total >= paper.pass_mark
        out.append(FinalResult(s, status, objective, subjective, total, passed))
    return sorted(out, key=lambda r: (r.score.venue_id, r.score.ticket))


# --- writing ------------------------------------------------------------------------------


def write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write `data` to `path` all or nothing: a temporary file, fsync, then rename. A folder
    that cannot be written is a ScoringError naming it, not a traceback."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise ScoringError(
            f"cannot write {path}: {exc.strerror}; make its folder writable by the account "
            "running cbt (or choose another output path) and run the command again"
        ) from None


def save_private_json(path: Path, value: Any) -> str:
    """`value` as JSON (UTF-8, sorted keys), written all or nothing and readable by the
    centre's account only (0600); returns the bytes' SHA-256, for the audit log."""
    data = json.dumps(value, ensure_ascii=False, sort_keys=True).encode("utf-8")
    write_atomic(path, data, 0o600)
    return hashlib.sha256(data).hexdigest()


def load_json(path: Path) -> Any:
    """What `save_private_json` wrote at `path`; None when there is no such file."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None


def csv_bytes(rows: Iterable[Mapping[str, Any]], columns: tuple[str, ...]) -> bytes:
    """UTF-8 with BOM, one header row; None is an empty cell."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in columns})
    return buffer.getvalue().encode("utf-8-sig")


def results_json(
    session_id: str, paper: Paper, results: list[FinalResult], *, public: bool
) -> bytes:
    doc = {
        "format": "cbt-results",
        "format_version": 1,
        "session_id": session_id,
        "paper_id": paper.paper_id,
        "pass_mark": paper.pass_mark,
        "total_points": paper.total_points,
        "candidates": [r.row(public=public) for r in results],
    }
    return json.dumps(doc, ensure_ascii=False, indent=1).encode("utf-8") + b"\n"


RECEIPT_CHECKS = "receipt-checks.json"  # what the centre's public receipt page reads


def receipt_checks(session_id: str, results: list[FinalResult]) -> bytes:
    """Per submitted candidate, the short code of the venue's receipt and whether the answers
    scored here give the same receipt: all the public receipt page may say, no answers."""
    tickets = {
        r.score.ticket: {
            "code": short_code(r.score.receipt_venue),
            "scored_as_submitted": r.score.receipt_centre == r.score.receipt_venue,
        }
        for r in results
        if r.score.submitted and len(r.score.receipt_venue) == 64
    }
    doc = {"format": "cbt-receipt-checks", "format_version": 1, "session_id": session_id,
           "tickets": tickets}  # fmt: skip
    return json.dumps(doc, indent=1).encode("utf-8") + b"\n"


def write_results(
    results_dir: Path,
    session_id: str,
    paper: Paper,
    results: list[FinalResult],
    out_csv: Path | None = None,
    out_json: Path | None = None,
) -> None:
    """Internal copies (names, full ID numbers, mode 0600), the receipt checks (0600) and the
    publication files asked for."""
    internal = [r.row(public=False) for r in results]
    write_atomic(results_dir / "scores-internal.csv", csv_bytes(internal, INTERNAL_COLUMNS), 0o600)
    write_atomic(
        results_dir / "results-internal.json",
        results_json(session_id, paper, results, public=False),
        0o600,
    )
    write_atomic(results_dir / RECEIPT_CHECKS, receipt_checks(session_id, results), 0o600)
    public = [r.row(public=True) for r in results]
    if out_csv is not None:
        write_atomic(out_csv, csv_bytes(public, PUBLIC_COLUMNS))
    if out_json is not None:
        write_atomic(out_json, results_json(session_id, paper, results, public=True))
