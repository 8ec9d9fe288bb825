"""`cbt audit verify DB_OR_DIR`: check a database's integrity and its audit log's hash chain
(venue or central SQLite).

The integrity check comes first (`PRAGMA quick_check`, `--full`: `integrity_check`); for a
venue folder also the database's identity (server.venue.integrity, F5). The arguments are
declared in server.commands.audit_args.
"""

from __future__ import annotations

import argparse

from server.audit import audit_database_path, verify_audit_file
from server.dbcheck import check_sqlite_file
from server.venue.workspace import VENUE_FILE, load_venue, verify_venue_database


def run_verify(args: argparse.Namespace) -> int:
    path = audit_database_path(args.target)
    check = "integrity_check" if args.full else "quick_check"
    venue = load_venue(args.target) if (args.target / VENUE_FILE).is_file() else None
    if venue is not None and venue.database_id is not None:
        verify_venue_database(venue, full=args.full)  # also its identity (F5)
    else:  # a database file, or a venue folder from before identities (read, never adopted)
        check_sqlite_file(path, full=args.full)
    count = verify_audit_file(path)
    print(f"database intact ({check}: ok); audit log intact: {count} events verified")
    return 0
