"""Subjective items: the anonymised essay export for human markers, and importing their marks.

Markers never see who wrote an answer: each candidate gets a *marking id*,
HMAC-SHA256(results secret, "cbt-marking-v1" | session | ticket), 16 hex characters. The
results secret is 32 random bytes kept in the session's results directory (mode 0600), so
the centre can map marks back while the export itself holds no name and no ticket.

Export CSV (UTF-8 with BOM): `marking_id, item_id, max_points, answer, mark` (mark empty).
The import reads the same columns back and refuses the whole file, listing every problem by
row and column, when a marking id or item is unknown, a mark is not a number, negative or
above the item's maximum, a row is duplicated, or an exported answer has no mark.
Accepted marks are stored as `marks.json` (ticket -> item -> points) in the results directory.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import math
import os
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from paperpack.model import Paper
from server.scoring.engine import ABSENT, HELD, CandidateScore
from server.scoring.material import ScoringError
from server.scoring.results import csv_bytes, load_json, save_private_json, write_atomic

SECRET_FILE = "results.secret"  # noqa: S105 - a file name, not a secret
MARKS_FILE = "marks.json"
ESSAY_COLUMNS = ("marking_id", "item_id", "max_points", "answer", "mark")
MARKING_LABEL = b"cbt-marking-v1"


class MarksInvalid(ScoringError):
    """An imported marks file has problems; `problems` lists each with its row and column."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(
            f"{len(problems)} problem(s) in the marks file, nothing imported:\n"
            + "\n".join(problems)
        )


def results_secret(results_dir: Path) -> bytes:
    """The session's results secret, created (0600) on first use."""
    path = results_dir / SECRET_FILE
    if not path.is_file():
        results_dir.mkdir(parents=True, exist_ok=True)
        write_atomic(path, secrets.token_bytes(32), 0o600)
    return path.read_bytes()


def marking_id(secret: bytes, session_id: str, ticket: str) -> str:
    """The anonymous id a marker sees for one candidate."""
    message = MARKING_LABEL + b"|" + session_id.encode() + b"|" + ticket.encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()[:16]


@dataclass(frozen=True)
class EssayRow:
    marking_id: str
    item_id: str
    max_points: float
    answer: str


def essay_rows(
    scores: Iterable[CandidateScore], paper: Paper, secret: bytes, session_id: str
) -> tuple[list[EssayRow], dict[str, str]]:
    """Rows to mark (sorted by marking id, so no venue or ticket order shows) and id -> ticket."""
    essays = [i for i in paper.items() if i.type == "essay"]
    rows: list[EssayRow] = []
    owners: dict[str, str] = {}
    for score in scores:
        if score.status in (ABSENT, HELD):
            continue
        mid = marking_id(secret, session_id, score.ticket)
        owners[mid] = score.ticket
        for item in essays:
            answer = score.answers.get(item.item_id, "")
            rows.append(
                EssayRow(mid, item.item_id, item.points, answer if isinstance(answer, str) else "")
            )
    rows.sort(key=lambda r: (r.marking_id, r.item_id))
    return rows, owners


def export_essays_csv(rows: list[EssayRow]) -> bytes:
    return csv_bytes(
        (
            {"marking_id": r.marking_id, "item_id": r.item_id, "max_points": r.max_points,
             "answer": r.answer, "mark": ""}
            for r in rows
        ),
        ESSAY_COLUMNS,
    )  # fmt: skip


def _parse_mark(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def parse_marks(
    data: bytes, rows: list[EssayRow], owners: Mapping[str, str]
) -> dict[str, dict[str, float]]:
    """Validate a marks CSV against the export; ticket -> item -> mark, or MarksInvalid."""
    expected = {(r.marking_id, r.item_id): r.max_points for r in rows}
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise MarksInvalid(["the file is not UTF-8: save it as CSV UTF-8"]) from None
    reader = csv.DictReader(io.StringIO(text))
    missing_cols = {"marking_id", "item_id", "mark"} - set(reader.fieldnames or ())
    if missing_cols:
        raise MarksInvalid([f"row 1: missing column(s) {', '.join(sorted(missing_cols))}"])
    problems: list[str] = []
    marks: dict[str, dict[str, float]] = {}
    seen: set[tuple[str, str]] = set()
    for line, raw in enumerate(reader, start=2):
        mid, item_id = (raw.get("marking_id") or "").strip(), (raw.get("item_id") or "").strip()
        mark_text = (raw.get("mark") or "").strip()
        if mid not in owners:
            problems.append(f"row {line}, column marking_id: unknown marking id {mid!r}")
            continue
        if (mid, item_id) not in expected:
            problems.append(f"row {line}, column item_id: {item_id!r} is not an essay to mark")
            continue
        if (mid, item_id) in seen:
            problems.append(f"row {line}: {mid}/{item_id} appears twice")
            continue
        seen.add((mid, item_id))
        maximum = expected[(mid, item_id)]
        value = _parse_mark(mark_text)
        if not mark_text:
            problems.append(f"row {line}, column mark: missing mark")
        elif value is None:
            problems.append(f"row {line}, column mark: {mark_text!r} is not a number")
        elif value < 0:
            problems.append(f"row {line}, column mark: {value:g} is negative")
        elif value > maximum:
            problems.append(f"row {line}, column mark: {value:g} is above the maximum {maximum:g}")
        else:
            marks.setdefault(owners[mid], {})[item_id] = value
    for mid, item_id in sorted(set(expected) - seen):
        problems.append(f"no row for marking id {mid}, item {item_id}: its mark is missing")
    if problems:
        raise MarksInvalid(problems)
    return marks


def save_marks(results_dir: Path, marks: Mapping[str, Mapping[str, float]]) -> str:
    """Store accepted marks atomically (0600); returns their SHA-256 for the audit log."""
    return save_private_json(results_dir / MARKS_FILE, marks)


def load_marks(results_dir: Path) -> dict[str, dict[str, float]]:
    """Marks imported so far (empty before any import)."""
    saved = load_json(results_dir / MARKS_FILE) or {}
    return {t: {i: float(m) for i, m in v.items()} for t, v in saved.items()}


def ensure_private(results_dir: Path) -> None:
    results_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(results_dir, 0o700)
