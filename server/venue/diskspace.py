"""Free disk space in exam-minutes, for the console (issue 16, F6).

A full disk refuses saves (503 `storage-full`, nothing lost, the pages keep the answers), but
the chief should hear of it long before: the dashboard shows the free space of the venue
directory's file system and how many minutes of the exam's journal that holds, and warns
when it falls below `Settings.disk_warn_mb`.

Journal per minute = candidates x bytes each candidate's saves take per minute:

- candidates: the largest roster of a session that has not ended;
- bytes per candidate-minute: measured from the journal of the last 10 minutes (each row's
  answers plus `ROW_OVERHEAD_BYTES` for its ids, hashes, time, index entries and the current
  answers row) over the attempts that saved in it; before any save, an estimate of a save
  every 10 s (`DEFAULT_SAVES_PER_MINUTE`) of `DEFAULT_SAVE_BYTES`;
- doubled when the continuous backup (`DIR/backup`) is on the same file system, since it
  copies every row there too.
"""

from __future__ import annotations

import math
import os
import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from server.clock import iso

ROW_OVERHEAD_BYTES = 400
DEFAULT_SAVE_BYTES = 600
DEFAULT_SAVES_PER_MINUTE = 6
MEASURE_OVER = timedelta(minutes=10)


@dataclass(frozen=True)
class JournalRate:
    """How fast the journal grows per candidate, and for how many candidates."""

    candidates: int
    bytes_per_candidate_minute: float
    measured: bool  # from the last 10 minutes' saves (else the estimate)


def journal_rate(db: Database, now: datetime) -> JournalRate:
    """The journal's growth (see the module docstring), read in one snapshot."""
    row = db.execute(
        "SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM candidates c"
        " JOIN sessions s ON s.session_id = c.session_id"
        " WHERE s.status != 'ended' GROUP BY c.session_id)"
    ).fetchone()
    candidates = int(row[0])
    rows, size, attempts = db.execute(
        "SELECT count(*), coalesce(sum(size_bytes), 0), count(DISTINCT attempt_id)"
        " FROM journal WHERE saved_at >= ?",
        (iso(now - MEASURE_OVER),),
    ).fetchone()
    if attempts:
        minutes = MEASURE_OVER.total_seconds() / 60
        per = (size + rows * ROW_OVERHEAD_BYTES) / minutes / attempts
        return JournalRate(candidates, per, True)
    per = DEFAULT_SAVES_PER_MINUTE * (DEFAULT_SAVE_BYTES + ROW_OVERHEAD_BYTES)
    return JournalRate(candidates, float(per), False)


def disk_report(
    directory: Path, backup_dir: Path, rate: JournalRate, warn_below_bytes: int
) -> dict[str, Any]:
    """Free bytes where the database lives, the exam-minutes of journal they hold (None with
    no candidates), and whether that is below the warning threshold."""
    free = shutil.disk_usage(directory).free
    same_disk = backup_dir.exists() and os.stat(backup_dir).st_dev == os.stat(directory).st_dev
    per_minute = rate.candidates * rate.bytes_per_candidate_minute * (2 if same_disk else 1)
    minutes = math.floor(free / per_minute) if per_minute else None
    return {
        "free_bytes": free,
        "warn_below_bytes": warn_below_bytes,
        "low": free < warn_below_bytes,
        "exam_minutes": minutes,
        "candidates": rate.candidates,
        "journal_bytes_per_minute": round(per_minute),
        "measured": rate.measured,
        "backup_on_same_disk": same_disk,
    }
