"""Arguments of `cbt central ...`: init, venues, staff, serve, results, delete (handlers:
server.commands.central) and score, export-essays, import-marks, changes (server.scoring.cli).

Standard library only, so that `cbt --help` and `cbt central ... --help` import neither
aiohttp, nor the stores, nor the scoring code; each handler's module is imported when its
command runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from paperpack.cli import Handler

CENTRAL = "server.commands.central"
SCORING = "server.scoring.cli"

# Copies of server.central.storage.STAFF_ROLES and server.scoring.changes.KINDS for the
# choices: those modules import orjson, cryptography and more. tests/test_cli_front_door.py
# keeps the copies equal to the originals.
STAFF_ROLES = ("operator", "auditor")
CHANGE_KINDS = ("cancel", "restore", "dismiss", "correct", "personal")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add `cbt central` and its subcommands."""
    central = sub.add_parser("central", help="the central server: registry, uploads, releases")
    central_sub = central.add_subparsers(dest="central_command", metavar="COMMAND")
    central_sub.required = True

    init = central_sub.add_parser("init", help="create a central directory bound to an authority")
    init.add_argument("dir", type=Path)
    init.add_argument(
        "--authority", type=Path, required=True, help="directory of `paperpack authority init`"
    )
    init.set_defaults(func=Handler(f"{CENTRAL}:cmd_init"))

    venues = central_sub.add_parser("venues", help="the venue registry (public keys)")
    venues_sub = venues.add_subparsers(dest="venues_command", metavar="COMMAND")
    venues_sub.required = True
    add = venues_sub.add_parser("add", help="register a venue's public keys (or replace them)")
    add.add_argument("dir", type=Path)
    add.add_argument("--venue-id", required=True)
    add.add_argument(
        "--public-key", type=Path, required=True,
        help="the venue's venue.json (both keys), or its Ed25519 public key file",
    )  # fmt: skip
    add.add_argument(
        "--wrap-key", type=Path, help="the venue's X25519 public key file (if not in venue.json)"
    )
    add.add_argument("--name", default="", help="the venue's name for the status page")
    add.add_argument("--database", help="override the database (as for serve)")
    add.set_defaults(func=Handler(f"{CENTRAL}:cmd_venues_add"))
    listing = venues_sub.add_parser("list", help="list registered venues")
    listing.add_argument("dir", type=Path)
    listing.add_argument("--database")
    listing.set_defaults(func=Handler(f"{CENTRAL}:cmd_venues_list"))

    _register_staff(central_sub)

    serve = central_sub.add_parser("serve", help="run the central server")
    serve.add_argument("dir", type=Path)
    serve.add_argument("--database", help="SQLite path or postgresql:// URL (CBT_CENTRAL_DATABASE)")
    serve.add_argument("--host", help="listen address (CBT_CENTRAL_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="listen port (CBT_CENTRAL_PORT, default 8700)")
    serve.set_defaults(func=Handler(f"{CENTRAL}:cmd_serve"))

    results = central_sub.add_parser(
        "results", help="record that a session's results were published (starts retention)"
    )
    results.add_argument("dir", type=Path)
    results.add_argument("--session", required=True)
    results.add_argument("--published-at", help="ISO-8601 with a time zone (default: now)")
    results.add_argument("--database")
    results.set_defaults(func=Handler(f"{CENTRAL}:cmd_results"))
    delete = central_sub.add_parser(
        "delete", help="delete a package's bytes after its retention date (art. 23(7))"
    )
    delete.add_argument("dir", type=Path)
    delete.add_argument("--package", required=True, help="the package's SHA-256")
    delete.add_argument("--database")
    delete.set_defaults(func=Handler(f"{CENTRAL}:cmd_delete"))

    _register_scoring(central_sub)


def _register_staff(central_sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = central_sub.add_parser("staff", help="central staff accounts (console logins)")
    staff_sub = p.add_subparsers(dest="staff_command", metavar="COMMAND")
    staff_sub.required = True
    add = staff_sub.add_parser(
        "add",
        help="add a console account (operator, or auditor: read-only plus the audit trail)",
        description="Add a central staff account. The password is read from --password-file, "
        "or asked twice on a terminal, or read as one line from standard input.",
    )
    add.add_argument("dir", type=Path, metavar="DIR")
    add.add_argument("--login", required=True)
    add.add_argument("--role", required=True, choices=STAFF_ROLES)
    add.add_argument("--name", required=True, help="full name")
    add.add_argument("--password-file", type=Path, help="file whose first line is the password")
    add.add_argument("--database", help="override the database (as for serve)")
    add.set_defaults(func=Handler(f"{CENTRAL}:cmd_staff_add"))
    disable = staff_sub.add_parser(
        "disable", help="disable an account and end its sessions (audited, with a reason)"
    )
    disable.add_argument("dir", type=Path, metavar="DIR")
    disable.add_argument("--login", required=True)
    disable.add_argument("--reason", required=True)
    disable.add_argument("--database")
    disable.set_defaults(func=Handler(f"{CENTRAL}:cmd_staff_disable"))
    show = staff_sub.add_parser("list", help="list central staff accounts")
    show.add_argument("dir", type=Path, metavar="DIR")
    show.add_argument("--database")
    show.set_defaults(func=Handler(f"{CENTRAL}:cmd_staff_list"))


# --- results: score, export-essays, import-marks, changes -------------------------------------


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", type=Path, help="the central directory (cbt central init)")
    parser.add_argument("--session", required=True, help="the session id")
    parser.add_argument("--database", help="SQLite path or postgresql:// URL (as for serve)")


def _register_scoring(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add score, export-essays, import-marks and changes to `cbt central`."""
    score = sub.add_parser("score", help="score a session after its end (objective + marks)")
    _common(score)
    score.add_argument("--out", type=Path, required=True, help="publication CSV (IDs masked)")
    score.add_argument("--json", type=Path, help="publication JSON (IDs masked)")
    score.add_argument("--report", type=Path, help="verification report as HTML")
    score.add_argument(
        "--roster", type=Path, help="registration CSV (ticket,name,id_number), kept for later runs"
    )
    score.set_defaults(func=Handler(f"{SCORING}:cmd_score"))

    essays = sub.add_parser("export-essays", help="anonymised essay answers for markers")
    _common(essays)
    essays.add_argument("--out", type=Path, required=True, help="CSV to give the markers")
    essays.set_defaults(func=Handler(f"{SCORING}:cmd_export_essays"))

    imports = sub.add_parser("import-marks", help="import the markers' CSV (validated)")
    _common(imports)
    imports.add_argument("file", type=Path, help="the marked CSV")
    imports.add_argument("--operator", required=True, help="who imports the marks")
    imports.set_defaults(func=Handler(f"{SCORING}:cmd_import_marks"))

    _register_changes(sub)


def _register_changes(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    changes = sub.add_parser("changes", help="change requests for results (maker-checker)")
    changes_sub = changes.add_subparsers(dest="changes_command", metavar="COMMAND")
    changes_sub.required = True
    propose = changes_sub.add_parser("propose", help="propose a change (needs a second approver)")
    _common(propose)
    propose.add_argument("--ticket", required=True)
    propose.add_argument("--kind", required=True, choices=CHANGE_KINDS)
    propose.add_argument("--reason", required=True, help="the stated reason or cause")
    propose.add_argument("--evidence", default="", help="evidence reference (cancel/restore)")
    propose.add_argument("--item", default="", help="correct: the item id")
    propose.add_argument("--points", type=float, help="correct: the item's new points")
    propose.add_argument("--name", help="personal: the corrected name")
    propose.add_argument("--id-number", help="personal: the corrected ID number")
    propose.add_argument("--operator", required=True, help="who proposes it")
    propose.set_defaults(func=Handler(f"{SCORING}:cmd_changes_propose"))
    for verb in ("approve", "reject"):
        decide = changes_sub.add_parser(verb, help=f"{verb} a change (not your own)")
        _common(decide)
        decide.add_argument("--change", required=True, help="the change id, e.g. C0001")
        decide.add_argument("--operator", required=True, help="who decides (not the proposer)")
        decide.set_defaults(
            func=Handler(f"{SCORING}:cmd_changes_decide"), approve=verb == "approve"
        )
    listing = changes_sub.add_parser("list", help="list the session's change requests")
    _common(listing)
    listing.set_defaults(func=Handler(f"{SCORING}:cmd_changes_list"))
