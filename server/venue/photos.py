"""Roster photos (art. 30): the roster's `photo` column names a file beside the CSV; the
import copies each into DIR/photos/<session>/, refusing a missing or unusable file by row
before anything is copied. Staff see them on the room monitor for the identity check
(`server.venue.identity`)."""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path

from sqlite_utils import Database

from server.errors import CbtError

PHOTO_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png"}
MAX_PHOTO_BYTES = 2 * 1024 * 1024


def photo_problems(rows: Iterable[tuple[int, str]], folder: Path) -> list[str]:
    """Why the photos named by (row, file) cannot be imported from `folder`, one line each."""
    problems = []
    for row_no, name in rows:
        if not name:
            continue
        path = folder / name
        if Path(name).suffix.lower() not in PHOTO_TYPES:
            problems.append(f"row {row_no}, column photo: {name} is not a .jpg, .jpeg or .png")
        elif not path.is_file():
            problems.append(
                f"row {row_no}, column photo: {name} is not in {folder} (put the photo beside"
                " the roster CSV, or leave the column empty)"
            )
        elif path.stat().st_size > MAX_PHOTO_BYTES:
            problems.append(f"row {row_no}, column photo: {name} is over 2 MB")
    return problems


def import_photos(
    rows: Iterable[tuple[int, str]], folder: Path, photos_dir: Path, session_id: str
) -> int:
    """Copy the roster's photos from beside the CSV into DIR/photos/<session>/; the count.
    `CbtError` naming every missing or unusable file, before anything is copied."""
    rows = list(rows)
    problems = photo_problems(rows, folder)
    if problems:
        raise CbtError(
            f"{len(problems)} photo problem(s) in the roster; fix them and import again:\n"
            + "\n".join(problems)
        )
    target = photos_dir / session_id
    target.mkdir(parents=True, exist_ok=True)
    copied = 0
    for _, name in rows:
        if name:
            shutil.copyfile(folder / name, target / name)
            copied += 1
    return copied


def import_roster_photos(db: Database, session_id: str, folder: Path, photos_dir: Path) -> int:
    """`import_photos` for the roster of `session_id` as stored (row and photo of each)."""
    rows = db.execute(
        "SELECT row_no, photo FROM candidates WHERE session_id = ? AND photo != '' ORDER BY row_no",
        [session_id],
    ).fetchall()
    return import_photos([(int(r), str(p)) for r, p in rows], folder, photos_dir, session_id)


def photo_path(photos_dir: Path, session_id: str, name: str) -> Path | None:
    if not name:
        return None
    path = photos_dir / session_id / name
    return path if path.is_file() else None
