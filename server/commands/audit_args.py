"""Arguments of `cbt audit verify` (handler: server.commands.audit).

Standard library only, so that `cbt --help` imports no database code.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from paperpack.cli import Handler


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add `cbt audit verify`."""
    audit = sub.add_parser("audit", help="check the append-only audit log")
    audit_sub = audit.add_subparsers(dest="audit_command", metavar="COMMAND")
    audit_sub.required = True
    verify = audit_sub.add_parser(
        "verify",
        help="check the database's integrity and the audit log's hash chain; exit 1 on a fault",
        description="Check the database of a venue folder (or a venue/central database file): "
        "PRAGMA quick_check (or --full integrity_check) and, for a venue folder, that it is "
        "the folder's own database; then walk the audit chain and report the first edited, "
        "deleted or reordered event.",
    )
    verify.add_argument("target", type=Path, metavar="DB_OR_DIR")
    verify.add_argument(
        "--full",
        action="store_true",
        help="run PRAGMA integrity_check (slower: also checks every index) instead of quick_check",
    )
    verify.set_defaults(func=Handler("server.commands.audit:run_verify"))
