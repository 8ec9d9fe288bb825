"""`cbt audit verify DB_OR_DIR`: check an audit log's hash chain (venue or central SQLite)."""

from __future__ import annotations

import argparse
from pathlib import Path

from server.audit import verify_audit_file


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add `cbt audit verify`."""
    audit = sub.add_parser("audit", help="check the append-only audit log")
    audit_sub = audit.add_subparsers(dest="audit_command", metavar="COMMAND")
    audit_sub.required = True
    verify = audit_sub.add_parser(
        "verify",
        help="verify the hash chain of the audit log; exit 1 naming the first bad event",
        description="Walk the audit chain of a venue folder (or a venue/central database "
        "file) and report the first edited, deleted or reordered event.",
    )
    verify.add_argument("target", type=Path, metavar="DB_OR_DIR")
    verify.set_defaults(func=run_verify)


def run_verify(args: argparse.Namespace) -> int:
    count = verify_audit_file(args.target)
    print(f"audit log intact: {count} events verified")
    return 0
