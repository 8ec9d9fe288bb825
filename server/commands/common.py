"""What the command modules share: who runs a command, and reading a new password."""

from __future__ import annotations

import getpass
import sys
from pathlib import Path

from server.errors import CbtError


def cli_actor() -> str:
    """Who runs a command-line change, for the audit log."""
    try:
        return "cli:" + getpass.getuser()
    except (KeyError, OSError):
        return "cli:unknown"


def read_password(path: Path | None) -> str:
    """A new password: the first line of `path`, else typed twice on a terminal, else
    the first line of standard input."""
    if path is not None:
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise CbtError(f"cannot read password file {path}: {exc.strerror}") from None
        if not lines or not lines[0]:
            raise CbtError(f"{path} is empty: put the password on its first line")
        return lines[0]
    if sys.stdin.isatty():
        first = getpass.getpass("password: ")
        if getpass.getpass("again: ") != first:
            raise CbtError("the two passwords differ: run the command again")
        return first
    line = sys.stdin.readline().rstrip("\r\n")
    if not line:
        raise CbtError("no password given: use --password-file or type it on a terminal")
    return line
