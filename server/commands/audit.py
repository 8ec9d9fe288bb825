"""`cbt audit verify DB_OR_DIR`: check an audit log's hash chain (venue or central SQLite).

The arguments are declared in server.commands.audit_args.
"""

from __future__ import annotations

import argparse

from server.audit import verify_audit_file


def run_verify(args: argparse.Namespace) -> int:
    count = verify_audit_file(args.target)
    print(f"audit log intact: {count} events verified")
    return 0
