"""Files at rest are private: 0600 files in 0700 folders (issue 16, F10).

Two halves. `private_umask()` runs at the `cbt` entry point, so everything a cbt process
creates (the SQLite database, whose -wal/-shm SQLite creates with the database's own mode,
the continuous backup, exports, the run/ folder, keys, the centre's package files) is born
private without a chmod at each call site. `tighten()` runs when a venue or centre
directory is created or opened for serving, for what the umask cannot reach: folders that
already exist, and files copied in by other processes (a restored backup, an older build).
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)

PRIVATE_UMASK = 0o077
FILE_MODE = 0o600
DIR_MODE = 0o700


def private_umask() -> None:
    """New files 0600 and new folders 0700 for the rest of this process (and its children)."""
    os.umask(PRIVATE_UMASK)


def private_file(path: Path) -> Path:
    """Create `path` empty and 0600 if it is missing (then SQLite, which gives a database's
    -wal and -shm the database's own mode, keeps those private too); returns `path`."""
    path.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE))
    return path


def tighten(directory: Path) -> int:
    """Make every file under `directory` 0600 and every folder 0700; returns how many changed.

    Symbolic links are left alone (a backup folder may be a link to another disk: its own
    folder is tightened where it is opened). One warning line says how many were loosened.
    """
    changed = 0
    for root, dirs, files in os.walk(directory):
        for name, mode in [(root, DIR_MODE)] + [(os.path.join(root, f), FILE_MODE) for f in files]:
            try:
                info = os.lstat(name)
            except FileNotFoundError:  # a -wal/-shm file that SQLite just removed
                continue
            if stat.S_ISLNK(info.st_mode) or stat.S_IMODE(info.st_mode) & 0o077 == 0:
                continue
            os.chmod(name, mode)
            changed += 1
        dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(root, d))]
    if changed:
        log.warning(
            "%s: %d file(s) or folder(s) were readable by others; now 0600 files in 0700 folders",
            directory,
            changed,
        )
    return changed
