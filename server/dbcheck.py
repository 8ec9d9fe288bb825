"""Is this SQLite file a database at all, and an undamaged one? (issue 16, F5)

`check_sqlite_file(path)` refuses, with one line saying what is wrong, a file that is missing,
empty (0 bytes), is not an SQLite database (a damaged header), cannot be opened, or fails
`PRAGMA quick_check` (`full=True`: the slower `PRAGMA integrity_check`, which also compares
every index with its table). It opens the file without creating it and changes nothing (the
WAL, if any, is read as SQLite reads it). The venue adds its own identity check and restore
hint on top (server.venue.integrity); `cbt audit verify` runs it on any database it reads.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from server.errors import CbtError


class DatabaseDamaged(CbtError):
    """The file is not a usable SQLite database; the message says why, in one line."""


def check_sqlite_file(path: Path, *, full: bool = False) -> None:
    """Raise DatabaseDamaged unless `path` is a non-empty SQLite file that passes the check."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise DatabaseDamaged(f"{path} is missing") from None
    if size == 0:
        raise DatabaseDamaged(f"{path} is empty (0 bytes)")
    # The file is read through SQLite only: closing any other descriptor of it would drop the
    # POSIX locks this process's own connections hold (a server exporting while it serves),
    # and another process could then checkpoint and delete the WAL under them.
    pragma = "integrity_check" if full else "quick_check"
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    except sqlite3.Error as exc:
        raise DatabaseDamaged(f"{path} cannot be opened ({_one_line(exc)})") from None
    try:
        rows = conn.execute(f"PRAGMA {pragma}(20)").fetchall()
    except sqlite3.DatabaseError as exc:
        if "file is not a database" in str(exc):
            raise DatabaseDamaged(
                f"{path} is not an SQLite database (its header is damaged)"
            ) from None
        raise DatabaseDamaged(f"{path} is damaged (PRAGMA {pragma}: {_one_line(exc)})") from None
    finally:
        conn.close()
    problems = [str(r[0]) for r in rows]
    if problems != ["ok"]:
        first = _one_line(problems[0])
        more = f" and {len(problems) - 1} more problem(s)" if len(problems) > 1 else ""
        raise DatabaseDamaged(f"{path} is damaged (PRAGMA {pragma}: {first}{more})")


def _one_line(text: object) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= 160 else line[:157] + "..."
