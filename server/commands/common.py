"""What the command modules share: who runs a command, and reading a new password."""

from __future__ import annotations

import getpass
import sys
from pathlib import Path
from typing import Any

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


def read_login_password(path: Path | None, login: str) -> str:
    """A staff member's password to prove who they are: the first line of `path`, else typed
    once on a terminal, else the next line of standard input."""
    if path is not None:
        return read_password(path)
    if sys.stdin.isatty():
        return getpass.getpass(f"password of {login}: ")
    line = sys.stdin.readline().rstrip("\r\n")
    if not line:
        raise CbtError(f"no password given for {login}: use a password file or a terminal")
    return line


def check_staff_password(db: Any, login: str, password: str) -> dict[str, Any]:
    """The active staff account `login` if `password` is its password, else CbtError."""
    from server.staffauth import check_password  # argon2: only for the commands that need it

    row = db.execute(
        "SELECT login, role, password_hash FROM staff WHERE login = ? AND active = 1", [login]
    ).fetchone()
    if row is None or not check_password(row[2], password):
        raise CbtError(f"wrong login or password for {login}")
    return {"login": row[0], "role": row[1]}
