"""`cbt venue ...`: set up a venue from its directory: the handlers of init, staff, roster,
seats, backup and restore.

Their arguments are declared in server.commands.venue_args; `serve` and `import` (the venue
API part) are handled in server.commands.venue_api, `export` and `upload` in
server.commands.venue_answers.
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
from server.venue import invigilator_draw, rooms, roster, seat_forms, seats, staff
from server.venue.photos import import_roster_photos
from server.venue.workspace import init_venue, load_venue, load_wrapping_key, open_venue_db


def _now() -> datetime:
    return datetime.now(UTC)


# --- init ------------------------------------------------------------------------------------


def run_init(args: argparse.Namespace) -> int:
    venue = init_venue(args.dir, args.venue_id, args.name, _now())
    print(f"venue {venue.venue_id} initialised in {venue.directory}")
    print(f"X25519 public key (put it in the session file for packing): {venue.wrap_public}")
    print(f"Ed25519 public key (verifies this venue's uploads):          {venue.sign_public}")
    return 0


# --- staff -----------------------------------------------------------------------------------


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


def run_staff_conflict(args: argparse.Namespace) -> int:
    load_venue(args.dir)
    db = open_venue_db(args.dir)
    try:
        with transaction(db):
            staff.declare_conflict(
                db, args.login, args.room, args.reason, actor=cli_actor(), now=_now()
            )
    finally:
        db.close()
    where = ", ".join(args.room) if args.room else "every room"
    print(
        f"conflict of interest of {args.login} recorded ({where}): left out of the "
        "invigilator draw there, and no share card"
    )
    return 0


def run_staff_list(args: argparse.Namespace) -> int:
    load_venue(args.dir)
    db = open_venue_db(args.dir)
    try:
        for row in staff.list_staff(db):
            state = "" if row["active"] else "  (disabled)"
            state += "  (conflict of interest declared)" if row["conflict_declared"] else ""
            print(f"{row['login']:<20} {row['role']:<22} {row['name']}{state}")
    finally:
        db.close()
    return 0


# --- roster ----------------------------------------------------------------------------------


def run_roster_import(args: argparse.Namespace) -> int:
    load_venue(args.dir)
    db = open_venue_db(args.dir)
    try:
        with transaction(db):
            count = roster.import_roster_file(
                db, args.file, args.session, actor=cli_actor(), now=_now(), subject=args.subject
            )
            # Photos beside the CSV (art. 30); a missing one refuses the whole import.
            photos = import_roster_photos(
                db, args.session, Path(args.file).parent, Path(args.dir) / "photos"
            )
    finally:
        db.close()
    print(f"roster of session {args.session}: {count} candidates imported, {photos} photos")
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
        forms = (
            tuple(f.strip() for f in args.forms.split(",") if f.strip())
            if args.forms is not None
            else None
        )
        if args.redraw and not args.reason:
            raise CbtError("--redraw needs --reason '...': why the plan is drawn again")
        with transaction(db):
            has_plan = db.execute(
                "SELECT 1 FROM seat_plans WHERE session_id = ?", (args.session,)
            ).fetchone()
            if has_plan and (forms is not None or args.seed) and not args.redraw:
                raise CbtError(
                    f"session {args.session} already has a seat plan: add --redraw --reason "
                    "'...' to draw it again (until the unlock)"
                )
            if args.rooms:
                rooms.store_rooms(db, rooms.load_rooms(args.rooms), actor=cli_actor(), now=_now())
            if not has_plan or args.redraw:
                seats.draw_seats(
                    db,
                    args.session,
                    actor=cli_actor(),
                    now=_now(),
                    seed=_parse_seed(args.seed),
                    forms=forms,
                    redraw_reason=args.reason if args.redraw else None,
                )
            if args.invigilators:
                invigilator_draw.draw_invigilators(
                    db, args.session, actor=cli_actor(), now=_now(), seed=_parse_seed(args.seed)
                )
        report = seats.verify_seats(db, args.session)
        print(f"seat plan of session {args.session}: {report.candidates} candidates")
        print(f"seed {report.seed} ({_SOURCE[report.seed_source]})")
        if report.seed_source == "venue" and seat_forms.package_seating(db, args.session).seed:
            print("note: the package carries the centre's seed; this plan does not use it")
        elif report.seed_source == "venue":
            print(
                "note: no package carrying the centre's seed is imported for this session: "
                "import it, then draw again with --redraw --reason (the paper's forms come "
                "with it)"
            )
        print(f"algorithm {seats.ALGORITHM}  plan {report.plan_hash}  redraws {report.redraws}")
        plan = seats.current_seats(db, args.session)
        layouts = dict(
            db.execute(
                "SELECT ticket, form_id FROM candidates WHERE session_id = ?", (args.session,)
            ).fetchall()
        )
        for seat in sorted(plan, key=lambda s: (s.room_id, s.seat_no)):
            print(
                f"{seat.room_id:<8} seat {seat.seat_no:>3} "
                f"(row {seat.row_no}, column {seat.column_no})  {seat.ticket}  "
                f"{_layout_words(layouts.get(seat.ticket))}"
            )
        _print_conflicts(report.conflicts)
        if args.invigilators:
            for login, room_id in sorted(
                invigilator_draw.verify_invigilators(db, args.session).items()
            ):
                print(f"invigilator {login:<16} room {room_id}")
    finally:
        db.close()
    return 0


_SOURCE = {
    "centre": "the centre's, signed in the package",
    "venue": "given at the venue: recorded in the audit",
}


def _layout_words(layout: str | None) -> str:
    form, _, klass = (layout or "").partition("#")
    return " ".join(
        part for part in (f"form {form}" if form else "", f"order {klass}" if klass else "") if part
    )


def _print_conflicts(conflicts: tuple[str, ...]) -> None:
    if not conflicts:
        print("neighbours: no two neighbours (diagonals included) share a form and an order")
        return
    count = len(conflicts)
    print(f"neighbours: {count} pair(s) may see the same screen (the paper allows no other):")
    for line in conflicts:
        print(f"  {line}")


def _verify_seats(db: Database, args: argparse.Namespace) -> int:
    report = seats.verify_seats(db, args.session)
    print(
        f"seat plan of session {args.session} verified: {report.candidates} candidates, "
        f"{report.moves} audited move(s), {report.redraws} redraw(s), seed {report.seed} "
        f"({_SOURCE[report.seed_source]}); every candidate's form and order match their seat"
    )
    _print_conflicts(report.conflicts)
    if args.invigilators:
        drawn = invigilator_draw.verify_invigilators(db, args.session)
        print(f"invigilator draw verified: {len(drawn)} invigilators")
    return 0


# --- backup ----------------------------------------------------------------------------------


def run_backup(args: argparse.Namespace) -> int:
    from server.venue.backup_crypto import Recipients, seal_file
    from server.venue.base_snapshot import check_room_for_copy

    venue = load_venue(args.dir)
    name = venue_backup.default_backup_name(_now()) + ".enc"
    destination = args.out or venue.backup_dir / name
    if destination.exists():
        raise CbtError(f"{destination} exists already: choose a new file name")
    # The plaintext copy stays on the venue's disk; only the encrypted one goes to the backup
    # (F12): answers encrypted to the venue's key, and the centre's once pinned.
    plain = venue.db_path.with_name(venue.db_path.name + ".full-backup")
    plain.unlink(missing_ok=True)
    check_room_for_copy(venue.db_path)
    recipients = Recipients.of(venue.venue_id, venue.wrap_public, venue.keys_dir)
    try:
        report = venue_backup.full_backup(venue.db_path, plain)
        seal_file(plain, destination, recipients)
    finally:
        plain.unlink(missing_ok=True)
    to = "the venue's key" + (" and the centre's upload key" if recipients.centre else "")
    print(
        f"backup written to {destination} ({destination.stat().st_size} bytes, encrypted to "
        f"{to}): {report.journal_rows} journal rows, {report.audit_events} audit events verified"
    )
    return 0


def run_restore(args: argparse.Namespace) -> int:
    from server.venue.restore import restore_database

    venue = load_venue(args.dir)
    report = restore_database(
        venue.directory,
        venue.db_path,
        venue.database_id,
        args.backup_dir or venue.backup_dir,
        venue_id=venue.venue_id,
        private_key=load_wrapping_key(venue),
        base=args.base,
        force=args.force,
        now=_now(),
        actor=cli_actor(),
    )
    added = ", ".join(f"{n} {table}" for table, n in report.added.items())
    position = ", ".join(f"{table} {n}" for table, n in report.positions.items())
    print(f"venue database restored from {report.base} and the continuous backup")
    print(f"backup position (last row copied): {position}")
    print(f"rows added to the base snapshot: {added}; attempts recreated: "
          f"{report.attempts_recreated}")  # fmt: skip
    if report.kept_at is not None:
        print(f"the refused database is kept in {report.kept_at}")
    for line in report.lost:
        print(f"lost: {line}")
    if report.not_restored:
        done = ", ".join(f"{action} x{n}" for action, n in report.not_restored.items())
        print(f"after the base snapshot, not restored (redo them; see the audit log): {done}")
    print("checked: integrity_check ok, audit chain and journal chains intact")
    return 0
