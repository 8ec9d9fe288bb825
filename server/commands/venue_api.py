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

from server import serving
from server.commands.common import cli_actor
from server.store import transaction
from server.venue.app import create_app
from server.venue.packages import import_package, pin_authority_key
from server.venue.settings import Settings
from server.venue.workspace import load_venue, open_venue_db, verify_venue_database


def run_serve(args: argparse.Namespace) -> int:
    settings = Settings.from_env(
        venue_dir=args.dir, host=args.host, port=args.port, central_url=args.central_url
    )
    venue = verify_venue_database(load_venue(settings.venue_dir))  # F5, before anything starts
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


def run_import(args: argparse.Namespace) -> int:
    venue = load_venue(args.dir)
    if args.authority_pub is not None:
        pin_authority_key(venue, args.authority_pub)
    db = open_venue_db(venue.directory)
    try:
        with transaction(db):
            result = import_package(
                venue,
                db,
                args.package_dir,
                practice=args.practice,
                actor=cli_actor(),
                now=datetime.now(UTC),
            )
    finally:
        db.close()
    kind = "practice package" if result["practice"] else "package"
    print(
        f"{kind} {result['package_id']} for session {result['session_id']} verified and stored; "
        f"unlock window {result['window']['not_before']} to {result['window']['not_after']}"
    )
    return 0
