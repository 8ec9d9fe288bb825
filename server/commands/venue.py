"""`cbt venue ...`: set up and run a venue server from its directory.

This module holds init, staff, roster, seats and backup; `serve` and `import` (the venue
API part) register in `register_api_commands` at the end of the file.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path

from sqlite_utils import Database

from server.commands.common import cli_actor, read_password
from server.errors import CbtError
from server.staffauth import hash_password
from server.store import transaction
from server.venue import backup as venue_backup
from server.venue import invigilator_draw, rooms, roster, seats, staff
from server.venue.workspace import init_venue, load_venue, open_venue_db


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
    register_api_commands(venue_sub)
    register_answer_commands(venue_sub)


def _now() -> datetime:
    return datetime.now(UTC)


# --- init ------------------------------------------------------------------------------------


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
    p.set_defaults(func=run_init)


def run_init(args: argparse.Namespace) -> int:
    venue = init_venue(args.dir, args.venue_id, args.name, _now())
    print(f"venue {venue.venue_id} initialised in {venue.directory}")
    print(f"X25519 public key (put it in the session file for packing): {venue.wrap_public}")
    print(f"Ed25519 public key (verifies this venue's uploads):          {venue.sign_public}")
    return 0


# --- staff -----------------------------------------------------------------------------------


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
    add.add_argument("--role", required=True, choices=staff.ROLES)
    add.add_argument("--name", required=True, help="full name")
    add.add_argument("--password-file", type=Path, help="file whose first line is the password")
    add.set_defaults(func=run_staff_add)
    disable = staff_sub.add_parser(
        "disable", help="disable an account and end its sessions (audited, with a reason)"
    )
    disable.add_argument("dir", type=Path, metavar="DIR")
    disable.add_argument("--login", required=True)
    disable.add_argument("--reason", required=True)
    disable.set_defaults(func=run_staff_disable)
    show = staff_sub.add_parser("list", help="list staff accounts")
    show.add_argument("dir", type=Path, metavar="DIR")
    show.set_defaults(func=run_staff_list)


def run_staff_add(args: argparse.Namespace) -> int:
    load_venue(args.dir)
    password_hash = hash_password(read_password(args.password_file))
    db = open_venue_db(args.dir)
    try:
        with transaction(db):
            staff.add_staff(
                db, args.login, args.name, args.role, password_hash, actor=cli_actor(), now=_now()
            )
    finally:
        db.close()
    print(f"staff account {args.login} ({args.role}) added")
    return 0


def run_staff_disable(args: argparse.Namespace) -> int:
    load_venue(args.dir)
    db = open_venue_db(args.dir)
    try:
        with transaction(db):
            staff.disable_staff(db, args.login, args.reason, actor=cli_actor(), now=_now())
    finally:
        db.close()
    print(f"staff account {args.login} disabled; its sessions have ended")
    return 0


def run_staff_list(args: argparse.Namespace) -> int:
    load_venue(args.dir)
    db = open_venue_db(args.dir)
    try:
        for row in staff.list_staff(db):
            state = "" if row["active"] else "  (disabled)"
            print(f"{row['login']:<20} {row['role']:<22} {row['name']}{state}")
    finally:
        db.close()
    return 0


# --- roster ----------------------------------------------------------------------------------


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
    imp.set_defaults(func=run_roster_import)
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
    fix.set_defaults(func=run_roster_correct)


def run_roster_import(args: argparse.Namespace) -> int:
    load_venue(args.dir)
    db = open_venue_db(args.dir)
    try:
        with transaction(db):
            count = roster.import_roster_file(
                db, args.file, args.session, actor=cli_actor(), now=_now(), subject=args.subject
            )
    finally:
        db.close()
    print(f"roster of session {args.session}: {count} candidates imported")
    return 0


def run_roster_correct(args: argparse.Namespace) -> int:
    load_venue(args.dir)
    field, value = ("name", args.name) if args.name is not None else ("id_number", args.id_number)
    db = open_venue_db(args.dir)
    try:
        with transaction(db):
            roster.correct_candidate(
                db,
                args.session,
                args.ticket,
                field,
                value,
                args.reason,
                actor=cli_actor(),
                now=_now(),
            )
    finally:
        db.close()
    print(f"{field} of {args.ticket} corrected (audited)")
    return 0


# --- seats -----------------------------------------------------------------------------------


def _register_seats(venue_sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = venue_sub.add_parser(
        "seats",
        help="draw the seat plan from a recorded seed, show it, or --verify it",
        description="Without --verify: store --rooms if given, draw the session's seat plan "
        "(once; a random seed is recorded and printed) and print it. With --verify: re-run the "
        "draw from the recorded seed, replay the audited moves and compare (exit 1 on any "
        "difference).",
    )
    p.add_argument("dir", type=Path, metavar="DIR")
    p.add_argument("--session", required=True, help="the session id")
    p.add_argument("--rooms", type=Path, help="rooms YAML (see examples/rooms.yaml)")
    p.add_argument("--seed", help="use this seed (hex, >= 32 characters) instead of a random one")
    p.add_argument("--forms", default="", help="parallel forms of the paper, e.g. A,B")
    p.add_argument("--invigilators", action="store_true", help="also draw invigilators to rooms")
    p.add_argument("--verify", action="store_true", help="re-run and compare; change nothing")
    p.set_defaults(func=run_seats)


def _parse_seed(text: str | None) -> bytes | None:
    if text is None:
        return None
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise CbtError("--seed must be hexadecimal, e.g. 64 characters 0-9a-f") from None


def run_seats(args: argparse.Namespace) -> int:
    load_venue(args.dir)
    db = open_venue_db(args.dir)
    try:
        if args.verify:
            return _verify_seats(db, args)
        forms = tuple(f.strip() for f in args.forms.split(",") if f.strip())
        with transaction(db):
            if args.rooms:
                rooms.store_rooms(db, rooms.load_rooms(args.rooms), actor=cli_actor(), now=_now())
            has_plan = db.execute(
                "SELECT 1 FROM seat_plans WHERE session_id = ?", (args.session,)
            ).fetchone()
            if not has_plan:
                seats.draw_seats(
                    db,
                    args.session,
                    actor=cli_actor(),
                    now=_now(),
                    seed=_parse_seed(args.seed),
                    forms=forms,
                )
            if args.invigilators:
                invigilator_draw.draw_invigilators(
                    db, args.session, actor=cli_actor(), now=_now(), seed=_parse_seed(args.seed)
                )
        report = seats.verify_seats(db, args.session)
        print(f"seat plan of session {args.session}: {report.candidates} candidates")
        print(f"seed {report.seed}  algorithm {seats.ALGORITHM}  plan {report.plan_hash}")
        plan = seats.current_seats(db, args.session)
        for seat in sorted(plan, key=lambda s: (s.room_id, s.seat_no)):
            print(
                f"{seat.room_id:<8} seat {seat.seat_no:>3} "
                f"(row {seat.row_no}, column {seat.column_no})  {seat.ticket}"
            )
        if args.invigilators:
            for login, room_id in sorted(
                invigilator_draw.verify_invigilators(db, args.session).items()
            ):
                print(f"invigilator {login:<16} room {room_id}")
    finally:
        db.close()
    return 0


def _verify_seats(db: Database, args: argparse.Namespace) -> int:
    report = seats.verify_seats(db, args.session)
    print(
        f"seat plan of session {args.session} verified: {report.candidates} candidates, "
        f"{report.moves} audited move(s), seed {report.seed}"
    )
    if args.invigilators:
        drawn = invigilator_draw.verify_invigilators(db, args.session)
        print(f"invigilator draw verified: {len(drawn)} invigilators")
    return 0


# --- backup ----------------------------------------------------------------------------------


def _register_backup(venue_sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = venue_sub.add_parser(
        "backup",
        help="write a full, consistent copy of the venue database (safe while serving)",
        description="Copy DIR/venue.db with SQLite's online backup API into DIR/backup/ (or "
        "--out), then check the copy's integrity and audit chain.",
    )
    p.add_argument("dir", type=Path, metavar="DIR")
    p.add_argument("--out", type=Path, help="the copy's path (default DIR/backup/venue-<time>.db)")
    p.set_defaults(func=run_backup)


def run_backup(args: argparse.Namespace) -> int:
    venue = load_venue(args.dir)
    destination = args.out or venue.backup_dir / venue_backup.default_backup_name(_now())
    report = venue_backup.full_backup(venue.db_path, destination)
    print(
        f"backup written to {report.path} ({report.size_bytes} bytes): "
        f"{report.journal_rows} journal rows, {report.audit_events} audit events verified"
    )
    return 0


# --- serve, import: the venue API part adds its subcommands here ------------------------------


def register_api_commands(venue_sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """`cbt venue serve` and `cbt venue import` (owned by the venue API part)."""
    from server.commands import venue_api  # the venue API part's commands

    venue_api.register(venue_sub)


def register_answer_commands(venue_sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """`cbt venue export` and `cbt venue upload` (owned by the answers-home part)."""
    from server.commands import venue_answers

    venue_answers.register(venue_sub)
