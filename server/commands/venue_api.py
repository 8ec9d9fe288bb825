"""`cbt venue serve` and `cbt venue import`: the venue API part of `cbt venue`.

`serve` runs the venue server (server.venue.app) from a venue directory; `import` verifies a
package directory against the pinned authority key and stores it (nothing is decrypted),
pinning the key on first use with `--authority-pub`. The arguments are declared in
server.commands.venue_args.
"""

from __future__ import annotations

import argparse
import logging
from datetime import UTC, datetime
from pathlib import Path

from server import serving
from server.commands.common import check_staff_password, read_login_password
from server.errors import CbtError
from server.store import transaction
from server.venue.app import create_app
from server.venue.packages import PRACTICE_NOT_A_CHOICE, import_package, pin_authority_key
from server.venue.settings import Settings
from server.venue.staff import role_count_problem
from server.venue.workspace import load_venue, open_venue_db, verify_venue_database


def run_serve(args: argparse.Namespace) -> int:
    settings = Settings.from_env(
        venue_dir=args.dir, host=args.host, port=args.port, central_url=args.central_url
    )
    venue = verify_venue_database(load_venue(settings.venue_dir))  # F5, before anything starts
    check_staff_for_sessions(venue.directory)
    if settings.log_requests:
        logging.getLogger("server.venue.requests").setLevel(logging.INFO)
    print(f"venue {venue.venue_id} serving on http://{settings.host}:{settings.port}", flush=True)
    serving.run(  # parser errors as problem+json too (issue 16, F8)
        create_app(settings),
        settings.host,
        settings.port,
        # A whole room connects at once at the start; the default backlog of 128 drops SYNs.
        backlog=4096,
    )
    return 0


def check_staff_for_sessions(directory: Path) -> None:
    """Refuse to serve a session without exactly one chief examiner and at least one system
    administrator (art. 19): once a package is in force for a session not yet ended."""
    db = open_venue_db(directory)
    try:
        waiting = db.execute(
            "SELECT session_id FROM sessions WHERE package_id IS NOT NULL AND status != 'ended'"
            " ORDER BY starts_at LIMIT 1"
        ).fetchone()
        problem = role_count_problem(db) if waiting else None
    finally:
        db.close()
    if problem is not None:
        raise CbtError(f"cannot serve session {waiting[0]}: {problem}")


def run_import(args: argparse.Namespace) -> int:
    if args.practice:
        raise CbtError(PRACTICE_NOT_A_CHOICE)
    if not args.login or not args.confirm_login:
        raise CbtError(
            "importing a package takes two people (art. 23(4)): pass --login (the system "
            "administrator) and --confirm-login (a second staff member); each types their password"
        )
    venue = load_venue(args.dir)
    db = open_venue_db(venue.directory)
    try:
        importer = check_staff_password(
            db, args.login, read_login_password(args.password_file, args.login)
        )
        if importer["role"] != "system_administrator":
            raise CbtError(f"{args.login} is a {importer['role']}: a system administrator imports")
        check_staff_password(
            db,
            args.confirm_login,
            read_login_password(args.confirm_password_file, args.confirm_login),
        )
        if args.authority_pub is not None:
            pin_authority_key(venue, args.authority_pub)
        with transaction(db):
            result = import_package(
                venue,
                db,
                args.package_dir,
                actor=args.login,
                confirmed_by=args.confirm_login,
                now=datetime.now(UTC),
            )
    finally:
        db.close()
    kind = "PRACTICE package (dry run)" if result["practice"] else "package"
    print(
        f"{kind} {result['package_id']} for session {result['session_id']} verified and stored, "
        f"manifest version {result['manifest_version']} in force (sha256 "
        f"{result['manifest_sha256'][:16]}..., imported by {result['imported_by']}, confirmed by "
        f"{result['confirmed_by']}); unlock window {result['window']['not_before']} to "
        f"{result['window']['not_after']}"
    )
    return 0
