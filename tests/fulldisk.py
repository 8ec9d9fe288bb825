"""A real, small file system to fill up (issue 16, F6): a tmpfs mounted for one test.

Mounting needs root (or CAP_SYS_ADMIN); elsewhere the tests that need it are skipped with
that reason (and fail under CBT_REQUIRE_ALL=1, like every other missing prerequisite).
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

from tests.conftest import require


@contextlib.contextmanager
def small_disk(mount: Path, size_mb: int) -> Iterator[Path]:
    """A fresh tmpfs of `size_mb` MiB at `mount` (created), unmounted afterwards."""
    mount.mkdir(parents=True, exist_ok=True)
    mounted = os.geteuid() == 0 and (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0700", "tmpfs", str(mount)],
            capture_output=True,
            check=False,
        ).returncode
        == 0
    )
    require(mounted, "F6 needs a real full file system: run as root where tmpfs can be mounted")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path) -> Path:
    """Fill `disk` to the last byte with one file; returns it (delete it to free the space)."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for chunk in (1 << 20, 1 << 16, 1 << 12, 512, 1):
            block = b"\0" * chunk
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, block)
    finally:
        os.close(fd)
    try:
        (disk / "probe").write_bytes(b"x" * 4096)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC, exc
    else:
        raise AssertionError(f"{disk} is not full")
    return filler
