"""Arguments of `cbt venue ...`: init, staff, roster, seats, backup (handlers:
server.commands.venue), serve, import (server.commands.venue_api), export and upload
(server.commands.venue_answers).

Standard library only, so that `cbt --help` and `cbt venue --help` import neither aiohttp nor
the venue's database code; each handler's module is imported when its command runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from paperpack.cli import Handler

SETUP = "server.commands.venue"
API = "server.commands.venue_api"
ANSWERS = "server.commands.venue_answers"

# Copies of server.venue.staff.ROLES and server.venue.export.AUTHORITY_SIGN_FILE for the help
# text: those modules import aiohttp and sqlite-utils. tests/test_cli_front_door.py keeps the
# copies equal to the originals.
STAFF_ROLES = ("chief_examiner", "system_administrator", "invigilator")
AUTHORITY_SIGN_FILE = "authority-sign.pub"  # in DIR/keys/: the pinned central signing key


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add `cbt venue` and its subcommands."""
    venue = sub.add_parser("venue", help="set up and run a venue (test centre) server")
    venue_sub = venue.add_subparsers(dest="venue_command", metavar="COMMAND")
    venue_sub.required = True
    _register_init(venue_sub)
    _register_staff(venue_sub)
    _register_roster(venue_sub)
    _register_seats(venue_sub)
    _register_backup(venue_sub)
    _register_api(venue_sub)
    _register_answers(venue_sub)


def _register_init(venue_sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = venue_sub.add_parser(
        "init",
        help="create a venue directory: key pairs, settings and the database",
        description="Create DIR with the venue's X25519 and Ed25519 key pairs, venue.json and "
        "an empty database; print the public keys to give to the centre.",
    )
    p.add_argument("dir", type=Path, metavar="DIR")
    p.add_argument("--venue-id", required=True, help="the venue id the centre uses, e.g. BJ-001")
    p.add_argument("--name", default="", help="the venue's name (default: the id)")
    p.set_defaults(func=Handler(f"{SETUP}:run_init"))


def _register_staff(venue_sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = venue_sub.add_parser("staff", help="manage staff accounts")
    staff_sub = p.add_subparsers(dest="staff_command", metavar="COMMAND")
    staff_sub.required = True
    add = staff_sub.add_parser(
        "add",
        help="add a staff account (chief examiner, system administrator, invigilator)",
        description="Add a staff account. The password is read from --password-file, or "
        "asked twice on a terminal, or read as one line from standard input.",
    )
    add.add_argument("dir", type=Path, metavar="DIR")
    add.add_argument("--login", required=True)
    add.add_argument("--role", required=True, choices=STAFF_ROLES)
    add.add_argument("--name", required=True, help="full name")
    add.add_argument("--password-file", type=Path, help="file whose first line is the password")
    add.set_defaults(func=Handler(f"{SETUP}:run_staff_add"))
    disable = staff_sub.add_parser(
        "disable", help="disable an account and end its sessions (audited, with a reason)"
    )
    disable.add_argument("dir", type=Path, metavar="DIR")
    disable.add_argument("--login", required=True)
    disable.add_argument("--reason", required=True)
    disable.set_defaults(func=Handler(f"{SETUP}:run_staff_disable"))
    conflict = staff_sub.add_parser(
        "conflict",
        help="record a conflict of interest (art. 48): no invigilating there, no share card",
        description="Record that a staff member declared a conflict of interest (a relative "
        "sits the exam, ...). They are left out of the invigilator draw for the rooms named "
        "(every room without --room) and cannot enter a share in the unlock ceremony.",
    )
    conflict.add_argument("dir", type=Path, metavar="DIR")
    conflict.add_argument("--login", required=True)
    conflict.add_argument(
        "--room", action="append", default=[], help="a room concerned (repeat; default: all)"
    )
    conflict.add_argument("--reason", required=True, help="why, in words (no ID numbers)")
    conflict.set_defaults(func=Handler(f"{SETUP}:run_staff_conflict"))
    show = staff_sub.add_parser("list", help="list staff accounts")
    show.add_argument("dir", type=Path, metavar="DIR")
    show.set_defaults(func=Handler(f"{SETUP}:run_staff_list"))


def _register_roster(venue_sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = venue_sub.add_parser("roster", help="import the candidates of a session")
    roster_sub = p.add_subparsers(dest="roster_command", metavar="COMMAND")
    roster_sub.required = True
    imp = roster_sub.add_parser(
        "import",
        help="import a roster CSV (ticket,name,id_number,subject[,photo][,id_type])",
        description="Check and store a roster CSV (UTF-8, BOM allowed). Every problem is "
        "reported by row and column; nothing is stored unless every row passes.",
    )
    imp.add_argument("dir", type=Path, metavar="DIR")
    imp.add_argument("file", type=Path, metavar="FILE.csv")
    imp.add_argument("--session", required=True, help="the session id")
    imp.add_argument(
        "--subject", help="the subject code, needed when no package for the session is imported"
    )
    imp.set_defaults(func=Handler(f"{SETUP}:run_roster_import"))
    fix = roster_sub.add_parser(
        "correct",
        help="correct one candidate's name or ID number (audited, with a reason; art. 42)",
        description="Correct ONE field of one roster entry. The name and the ID number of a "
        "candidate are never both changed: after one has been corrected the other is refused.",
    )
    fix.add_argument("dir", type=Path, metavar="DIR")
    fix.add_argument("--session", required=True, help="the session id")
    fix.add_argument("--ticket", required=True)
    which = fix.add_mutually_exclusive_group(required=True)
    which.add_argument("--name", help="the corrected name")
    which.add_argument("--id-number", help="the corrected ID number")
    fix.add_argument("--reason", required=True, help="why, and the evidence seen")
    fix.set_defaults(func=Handler(f"{SETUP}:run_roster_correct"))


def _register_seats(venue_sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = venue_sub.add_parser(
        "seats",
        help="draw the seat plan from the package's seed, show it, or --verify it",
        description="Without --verify: store --rooms if given, draw the session's seat plan "
        "and print it. The seed is the one the centre signed into the session's package, and "
        "the paper's forms come from it too (neighbours, diagonals included, sit different "
        "forms or see a different order). --redraw --reason draws again until the unlock. "
        "With --verify: re-run the draw from the recorded seed, replay the audited moves, "
        "re-check every seat's form and order against its neighbours and compare (exit 1 on "
        "any difference).",
    )
    p.add_argument("dir", type=Path, metavar="DIR")
    p.add_argument("--session", required=True, help="the session id")
    p.add_argument("--rooms", type=Path, help="rooms YAML (see examples/rooms.yaml)")
    p.add_argument(
        "--seed",
        help="use this seed (hex, >= 32 characters) instead of the package's: recorded in the "
        "audit as the venue's",
    )
    p.add_argument(
        "--forms",
        default=None,
        help="only some of the paper's forms, e.g. A,B (default: all the paper's forms; a "
        "paper without forms needs none)",
    )
    p.add_argument(
        "--redraw", action="store_true", help="draw the plan again (only before the unlock)"
    )
    p.add_argument("--reason", help="why the plan is drawn again (with --redraw)")
    p.add_argument("--invigilators", action="store_true", help="also draw invigilators to rooms")
    p.add_argument("--verify", action="store_true", help="re-run and compare; change nothing")
    p.set_defaults(func=Handler(f"{SETUP}:run_seats"))


def _register_backup(venue_sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = venue_sub.add_parser(
        "backup",
        help="write a full, consistent copy of the venue database (safe while serving)",
        description="Copy DIR/venue.db with SQLite's online backup API into DIR/backup/ (or "
        "--out), then check the copy's integrity and audit chain.",
    )
    p.add_argument("dir", type=Path, metavar="DIR")
    p.add_argument("--out", type=Path, help="the copy's path (default DIR/backup/venue-<time>.db)")
    p.set_defaults(func=Handler(f"{SETUP}:run_backup"))
    r = venue_sub.add_parser(
        "restore",
        help="rebuild a refused venue database from DIR/backup/ (base snapshot + continuous)",
        description="With the server stopped: build a new DIR/venue.db from the base snapshot "
        "DIR/backup/base.db.enc (or --base) and every journal row, audit event and submission of "
        "the continuous backup DIR/backup/continuous.db, check it, keep the refused database in "
        "DIR/damaged-<time>/ and say what was lost after the backup position.",
    )
    r.add_argument("dir", type=Path, metavar="DIR")
    r.add_argument(
        "--base",
        type=Path,
        help="the base snapshot, or a `cbt venue backup` copy (default DIR/backup/base.db.enc)",
    )
    r.add_argument(
        "--backup-dir", type=Path, help="where base.db.enc and continuous.db are (DIR/backup)"
    )
    r.add_argument(
        "--force", action="store_true", help="replace the database even if it passes the checks"
    )
    r.set_defaults(func=Handler(f"{SETUP}:run_restore"))


def _register_api(venue_sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """`serve` and `import`."""
    serve = venue_sub.add_parser(
        "serve",
        help="run the venue server",
        description="Serve the candidate and staff API and pages from DIR. Settings come from "
        "CBT_* environment variables (see server/venue/settings.py); flags override them.",
    )
    serve.add_argument("dir", type=Path, metavar="DIR")
    serve.add_argument("--host", default=None, help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=None, help="port (default 8080)")
    serve.add_argument("--central-url", default=None, help="central server for the time release")
    serve.set_defaults(func=Handler(f"{API}:run_serve"))
    imp = venue_sub.add_parser(
        "import",
        help="verify and store a package (nothing is decrypted)",
        description="Verify PACKAGE_DIR (signature, venue binding, fragment hashes, version, "
        "the session's subject and paper) and store it in DIR/packages, in force at once: two "
        "people, the administrator (--login) and a second staff member (--confirm-login), each "
        "type their password. The first import pins the centre's signing key.",
    )
    imp.add_argument("dir", type=Path, metavar="DIR")
    imp.add_argument("package_dir", type=Path, metavar="PACKAGE_DIR")
    imp.add_argument(
        "--authority-pub",
        type=Path,
        default=None,
        help="the centre's public signing key file, pinned on first import",
    )
    imp.add_argument("--login", help="the system administrator importing it (art. 23(4))")
    imp.add_argument("--confirm-login", help="a second staff member confirming it")
    imp.add_argument("--password-file", type=Path, help="the administrator's password, 1st line")
    imp.add_argument(
        "--confirm-password-file", type=Path, help="the second person's password, first line"
    )
    # Kept only to refuse it with the reason: practice is the signed manifest's word.
    imp.add_argument("--practice", action="store_true", help=argparse.SUPPRESS)
    imp.set_defaults(func=Handler(f"{API}:run_import"))


def _register_answers(venue_sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """`export` and `upload`: the answers' way home (art. 35(1))."""
    export = venue_sub.add_parser("export", help="seal a session's answers for the centre")
    export.add_argument("dir", type=Path)
    export.add_argument("--session", help="session id (needed when the venue has several)")
    export.add_argument("--out", type=Path, help="also copy the package here")
    export.add_argument(
        "--central-key", type=Path,
        help="the authority's upload.pub (X25519) or its directory; pinned after first use",
    )  # fmt: skip
    export.add_argument(
        "--partial",
        action="store_true",
        help="export while attempts are still open (needs --reason; never taken as final)",
    )
    export.add_argument("--reason", help="why a partial export cannot wait (recorded)")
    export.set_defaults(func=Handler(f"{ANSWERS}:run_export"))

    upload = venue_sub.add_parser("upload", help="send the outbox to the central server")
    upload.add_argument("dir", type=Path)
    upload.add_argument("--central", required=True, help="the central server's base URL")
    upload.add_argument(
        "--central-pub", type=Path,
        help=f"the authority's signing.pub (default DIR/keys/{AUTHORITY_SIGN_FILE})",
    )  # fmt: skip
    upload.set_defaults(func=Handler(f"{ANSWERS}:run_upload"))
