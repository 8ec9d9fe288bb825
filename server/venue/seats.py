"""The random seat plan (art. 21): drawn once per session from a recorded seed, re-runnable.

The draw is a deterministic function of a recorded seed, so anyone holding the seed, the
roster and the room list (`server.venue.rooms`) can re-run it and get the same plan
(`cbt venue seats --verify`).

Seat plan, algorithm `hmac-sha256-sort/1`:
1. the seats: rooms sorted by `room_id`; in each room seats numbered row by row from 1
   (seat_no = (row - 1) * columns + column); the last `spare_seats` seats of each room stay
   empty for moves;
2. the candidates: sorted by HMAC-SHA256(key = seed bytes, message = UTF-8 ticket), ties
   (impossible in practice) by ticket;
3. the i-th candidate takes the i-th seat.
Each seat's layout (its form where the paper has forms, and its order class) follows
`paperpack.forms` and is stored as the candidate's form: neighbours, diagonals included, sit
different forms or see a different item order; the pairs the paper leaves no way to keep
apart are named in the audit (`server.venue.seat_forms`).

The seed (art. 21(1)) is the one the centre signed into the session's package (format 3),
drawn before any venue had its roster; a seed given at the venue, or a venue seed for an
older package, is recorded as the venue's in the audit. A plan may be redrawn, with a
reason, until the unlock (every draw stays in `seat_plans` and the audit); after it the only
change is `move_seat`, an audited exception with a reason that gives the candidate the layout
of the new seat. `verify_seats` re-runs the latest draw from its recorded seed, replays the
recorded moves and re-checks every candidate's layout against their seat. The draw of
invigilators to rooms uses the same keyed sort (`draw_key`, `new_seed`, `record_seed`) and
lives in `server.venue.invigilator_draw`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime

from sqlite_utils import Database

from paperpack.canonical import canonical_hash
from server.audit import record
from server.clock import iso
from server.venue.rooms import Room, SeatsError, rooms_hash, stored_rooms
from server.venue.rooms import SeatsMismatch as SeatsMismatch  # re-exported
from server.venue.roster import roster_hash
from server.venue.seat_forms import (
    check_forms,
    check_layouts,
    check_seed_source,
    conflicts_of,
    drawn_forms,
    drawn_record,
    layouts_for,
    package_seating,
)
from server.venue.seat_forms import seat_layout as seat_layout  # re-exported

ALGORITHM = "hmac-sha256-sort/1"


@dataclass(frozen=True)
class SeatAssignment:
    """Where one candidate sits."""

    ticket: str
    room_id: str
    seat_no: int
    row_no: int
    column_no: int


# --- the draw, as pure functions --------------------------------------------------------------


def draw_key(seed: bytes, name: str) -> str:
    """The sort key of `name` (a ticket or a login) under `seed`: hex HMAC-SHA256."""
    return hmac.new(seed, name.encode("utf-8"), hashlib.sha256).hexdigest()


def seat_order(rooms: Sequence[Room]) -> list[tuple[str, int, int, int]]:
    """Every usable seat as (room_id, seat_no, row, column), in the order the draw fills them."""
    seats = []
    for room in sorted(rooms, key=lambda r: r.room_id):
        for seat_no in range(1, room.usable_seats + 1):
            row, column = (seat_no - 1) // room.columns + 1, (seat_no - 1) % room.columns + 1
            seats.append((room.room_id, seat_no, row, column))
    return seats


def compute_seat_plan(
    seed: bytes, tickets: Sequence[str], rooms: Sequence[Room]
) -> list[SeatAssignment]:
    """The seat plan the seed gives for this roster and these rooms (sorted by ticket)."""
    seats = seat_order(rooms)
    if len(tickets) > len(seats):
        raise SeatsError(
            f"{len(tickets)} candidates but only {len(seats)} usable seats: add rooms or "
            "reduce spare seats"
        )
    ordered = sorted(tickets, key=lambda t: (draw_key(seed, t), t))
    plan = [SeatAssignment(t, *seat) for t, seat in zip(ordered, seats, strict=False)]
    return sorted(plan, key=lambda a: a.ticket)


def plan_hash(plan: Sequence[SeatAssignment]) -> str:
    return canonical_hash([asdict(a) for a in sorted(plan, key=lambda a: a.ticket)])


# --- recording and verifying ------------------------------------------------------------------


def new_seed(seed: bytes | None) -> bytes:
    """A fresh 32-byte seed, or `seed` if it is long enough to be one."""
    if seed is None:
        return secrets.token_bytes(32)
    if len(seed) < 16:
        raise SeatsError("a seed must have at least 16 bytes (32 hex characters)")
    return seed


def record_seed(
    db: Database, session_id: str, purpose: str, seed: bytes, actor: str, now: datetime
) -> int:
    """Store a draw's seed (`purpose` seats or invigilators); returns its seed_id."""
    cursor = db.execute(
        "INSERT INTO seeds (session_id, purpose, seed, created_at, created_by)"
        " VALUES (?, ?, ?, ?, ?)",
        (session_id, purpose, seed.hex(), iso(now), actor),
    )
    return int(cursor.lastrowid or 0)


def roster_tickets(db: Database, session_id: str) -> list[str]:
    return [
        r[0]
        for r in db.execute(
            "SELECT ticket FROM candidates WHERE session_id = ? ORDER BY ticket", (session_id,)
        )
    ]


def _unlocked(db: Database, session_id: str) -> bool:
    row = db.execute(
        "SELECT unlocked_at, status FROM sessions WHERE session_id = ?", (session_id,)
    ).fetchone()
    return row is not None and (row[0] is not None or row[1] not in ("scheduled", None))


def _clear_plan(db: Database, session_id: str, reason: str | None) -> dict[str, object] | None:
    """Before a redraw: drop the current seats (the plans stay on record); None: first draw."""
    before = db.execute(
        "SELECT p.plan_hash, s.seed FROM seat_plans p JOIN seeds s ON s.seed_id = p.seed_id"
        " WHERE p.session_id = ? ORDER BY p.plan_id DESC LIMIT 1",
        (session_id,),
    ).fetchone()
    if before is None:
        return None
    if reason is None:
        raise SeatsError(
            f"session {session_id} already has a seat plan: redraw it before the unlock with "
            "--redraw --reason '...', or move single candidates with a reason",
            "plan-exists",
        )
    if _unlocked(db, session_id):
        raise SeatsError(
            f"the paper of session {session_id} is open: the seat plan can no longer be "
            "redrawn; move single candidates with a reason instead",
            "unlocked",
        )
    if not reason.strip():
        raise SeatsError("a redraw needs a reason (e.g. 'room R102 added')", "no-reason")
    moves = db.execute("DELETE FROM seat_moves WHERE session_id = ?", (session_id,)).rowcount
    db.execute("DELETE FROM seats WHERE session_id = ?", (session_id,))
    db.execute("UPDATE candidates SET form_id = NULL WHERE session_id = ?", (session_id,))
    return {"reason": reason, "previous_plan": before[0], "previous_seed": before[1],
            "moves_dropped": moves}  # fmt: skip


def draw_seats(
    db: Database,
    session_id: str,
    *,
    actor: str,
    now: datetime,
    seed: bytes | None = None,
    forms: Sequence[str] | None = None,
    redraw_reason: str | None = None,
) -> int:
    """Draw and store the session's seat plan; return the plan id.

    The seed is the centre's from the package (unless `seed` is given: the venue's, and so
    recorded); `forms` default to the paper's, and others are refused naming the paper's.
    A plan exists already: refused, unless `redraw_reason` is given and the paper is not open.
    """
    seating = package_seating(db, session_id)
    forms = check_forms(seating, session_id, forms)
    redraw = _clear_plan(db, session_id, redraw_reason)
    tickets = roster_tickets(db, session_id)
    if not tickets:
        raise SeatsError(f"session {session_id} has no roster: import it first")
    rooms = stored_rooms(db)
    if not rooms:
        raise SeatsError("no rooms are set up: pass --rooms rooms.yaml")
    source = "venue" if seed is not None or seating.seed is None else "centre"
    seed = new_seed(seed if seed is not None else seating.seed)
    plan = compute_seat_plan(seed, tickets, rooms)
    seed_id = record_seed(db, session_id, "seats", seed, actor, now)
    digest = plan_hash(plan)
    cursor = db.execute(
        "INSERT INTO seat_plans (session_id, seed_id, algorithm, roster_hash, rooms_hash,"
        " plan_hash, created_at, created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            session_id,
            seed_id,
            ALGORITHM,
            roster_hash(tickets),
            rooms_hash(rooms),
            digest,
            iso(now),
            actor,
        ),
    )
    plan_id = int(cursor.lastrowid or 0)
    db.conn.executemany(
        "INSERT INTO seats (session_id, ticket, plan_id, room_id, seat_no, row_no, column_no)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            (session_id, a.ticket, plan_id, a.room_id, a.seat_no, a.row_no, a.column_no)
            for a in plan
        ],
    )
    conflicts = _store_layouts(db, session_id, plan, forms, seating.shuffled)
    record(
        db,
        actor,
        "seats.redrawn" if redraw else "seats.drawn",
        f"session:{session_id}",
        {
            "seed": seed.hex(),
            "seed_source": source,
            "package_id": seating.package_id,
            "algorithm": ALGORITHM,
            "plan_hash": digest,
            "forms": list(forms),
            "neighbour_conflicts": conflicts,
            **(redraw or {}),
        },
        now=now,
    )
    return plan_id


def _store_layouts(
    db: Database,
    session_id: str,
    plan: Sequence[SeatAssignment],
    forms: Sequence[str],
    shuffled: Sequence[int] | None,
) -> list[str]:
    """Each candidate's layout (form and order class) from their seat; the named conflicts."""
    seats = [(a.ticket, a.room_id, a.row_no, a.column_no) for a in plan]
    layouts = layouts_for(seats, forms)
    db.conn.executemany(
        "UPDATE candidates SET form_id = ? WHERE session_id = ? AND ticket = ?",
        [(layouts[t], session_id, t) for t in layouts],
    )
    return conflicts_of(seats, layouts, shuffled)


def current_seats(db: Database, session_id: str) -> list[SeatAssignment]:
    """The seats as stored now (the draw plus any moves), sorted by ticket."""
    return [
        SeatAssignment(*r)
        for r in db.execute(
            "SELECT ticket, room_id, seat_no, row_no, column_no FROM seats WHERE session_id = ?"
            " ORDER BY ticket",
            (session_id,),
        )
    ]


@dataclass(frozen=True)
class SeatVerification:
    """What `verify_seats` checked."""

    session_id: str
    seed: str
    candidates: int
    moves: int
    plan_hash: str
    seed_source: str = "venue"  # "centre": the package's signed seed; "venue": given here
    redraws: int = 0
    conflicts: tuple[str, ...] = ()  # neighbour pairs the paper leaves no way to keep apart


def verify_seats(db: Database, session_id: str) -> SeatVerification:
    """Re-run the draw from the recorded seed and replay the audited moves; raise on any gap."""
    plan_row = db.execute(
        "SELECT p.algorithm, p.roster_hash, p.rooms_hash, p.plan_hash, s.seed FROM seat_plans p"
        " JOIN seeds s ON s.seed_id = p.seed_id WHERE p.session_id = ?"
        " ORDER BY p.plan_id DESC LIMIT 1",
        (session_id,),
    ).fetchone()
    if plan_row is None:
        raise SeatsError(f"session {session_id} has no seat plan yet: draw it first")
    algorithm, recorded_roster, recorded_rooms, recorded_plan, seed_hex = plan_row
    if algorithm != ALGORITHM:
        raise SeatsMismatch(f"the plan was drawn with {algorithm}; this build re-runs {ALGORITHM}")
    tickets, rooms = roster_tickets(db, session_id), stored_rooms(db)
    if roster_hash(tickets) != recorded_roster:
        raise SeatsMismatch("the roster changed after the seats were drawn")
    if rooms_hash(rooms) != recorded_rooms:
        raise SeatsMismatch("the room layouts changed after the seats were drawn")
    plan = compute_seat_plan(bytes.fromhex(seed_hex), tickets, rooms)
    if plan_hash(plan) != recorded_plan:
        raise SeatsMismatch("the recorded plan hash is not what the seed gives")
    expected = {a.ticket: a for a in plan}
    moves = _replay_moves(db, session_id, expected, {(r.room_id): r for r in rooms})
    for seat in current_seats(db, session_id):
        want = expected.get(seat.ticket)
        if want != seat:
            raise SeatsMismatch(
                f"candidate {seat.ticket} sits at {seat.room_id}/{seat.seat_no} but the draw and "
                f"the recorded moves put them at "
                f"{want.room_id + '/' + str(want.seat_no) if want else 'no seat'}: "
                "an unrecorded change"
            )
    drawn = drawn_record(db, session_id)
    source = check_seed_source(db, session_id, drawn, seed_hex)
    seats = [(a.ticket, a.room_id, a.row_no, a.column_no) for a in current_seats(db, session_id)]
    conflicts = check_layouts(db, session_id, drawn, seats)
    redraws = db.execute(
        "SELECT count(*) - 1 FROM seat_plans WHERE session_id = ?", (session_id,)
    ).fetchone()[0]
    return SeatVerification(
        session_id, seed_hex, len(tickets), moves, recorded_plan, source, redraws,
        tuple(conflicts),
    )  # fmt: skip


def _replay_moves(
    db: Database, session_id: str, expected: dict[str, SeatAssignment], rooms: dict[str, Room]
) -> int:
    audited = {
        r[0]
        for r in db.execute(
            "SELECT object FROM audit_events WHERE action = 'seat.moved' AND object LIKE ?",
            (f"session:{session_id}/%",),
        )
    }
    count = 0
    for ticket, from_room, from_seat, to_room, to_seat in db.execute(
        "SELECT ticket, from_room_id, from_seat_no, to_room_id, to_seat_no FROM seat_moves"
        " WHERE session_id = ? ORDER BY move_id",
        (session_id,),
    ).fetchall():
        before = expected.get(ticket)
        if before is None or (before.room_id, before.seat_no) != (from_room, from_seat):
            raise SeatsMismatch(f"the recorded move of {ticket} does not start from their seat")
        if f"session:{session_id}/ticket:{ticket}" not in audited:
            raise SeatsMismatch(f"the move of {ticket} has no audit event")
        room = rooms[to_room]
        expected[ticket] = SeatAssignment(
            ticket,
            to_room,
            to_seat,
            (to_seat - 1) // room.columns + 1,
            (to_seat - 1) % room.columns + 1,
        )
        count += 1
    return count


def move_seat(
    db: Database,
    session_id: str,
    ticket: str,
    room_id: str,
    seat_no: int,
    reason: str,
    *,
    actor: str,
    now: datetime,
) -> SeatAssignment:
    """Move one candidate to a free seat: the only change to a drawn plan; reasoned, audited."""
    if not reason.strip():
        raise SeatsError(
            "a seat move needs a reason (e.g. 'machine failure at R101/7')", "no-reason"
        )
    seat = db.execute(
        "SELECT room_id, seat_no FROM seats WHERE session_id = ? AND ticket = ?",
        (session_id, ticket),
    ).fetchone()
    if seat is None:
        raise SeatsError(
            f"candidate {ticket} has no seat in session {session_id}: draw the seat plan", "no-seat"
        )
    room = next((r for r in stored_rooms(db) if r.room_id == room_id), None)
    if room is None:
        raise SeatsError(f"room {room_id} does not exist", "unknown-room")
    if not 1 <= seat_no <= room.rows * room.columns:
        raise SeatsError(
            f"room {room_id} has seats 1 to {room.rows * room.columns}", "unknown-seat"
        )
    if db.execute(
        "SELECT 1 FROM seats WHERE session_id = ? AND room_id = ? AND seat_no = ?",
        (session_id, room_id, seat_no),
    ).fetchone():
        raise SeatsError(
            f"seat {room_id}/{seat_no} is taken: choose a free or spare seat", "seat-taken"
        )
    row, column = (seat_no - 1) // room.columns + 1, (seat_no - 1) % room.columns + 1
    db.execute(
        "UPDATE seats SET room_id = ?, seat_no = ?, row_no = ?, column_no = ?, moved = 1"
        " WHERE session_id = ? AND ticket = ?",
        (room_id, seat_no, row, column, session_id, ticket),
    )
    layout, neighbours = _relayout(db, session_id, ticket)
    db.execute(
        "INSERT INTO seat_moves (session_id, ticket, from_room_id, from_seat_no, to_room_id,"
        " to_seat_no, reason, moved_by, moved_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (session_id, ticket, seat[0], seat[1], room_id, seat_no, reason, actor, iso(now)),
    )
    record(
        db,
        actor,
        "seat.moved",
        f"session:{session_id}/ticket:{ticket}",
        {
            "from": f"{seat[0]}/{seat[1]}",
            "to": f"{room_id}/{seat_no}",
            "reason": reason,
            "layout": layout,
            "neighbour_conflicts": neighbours,
        },
        now=now,
    )
    return SeatAssignment(ticket, room_id, seat_no, row, column)


def _relayout(db: Database, session_id: str, ticket: str) -> tuple[str | None, list[str]]:
    """Give a moved candidate the layout of their new seat and re-check its neighbours (a plan
    with no audited draw, made by hand, keeps the layouts it has)."""
    try:
        drawn = drawn_record(db, session_id)
    except SeatsMismatch:
        return seat_layout(db, session_id, ticket), []
    forms = drawn_forms(drawn)
    seats = [(a.ticket, a.room_id, a.row_no, a.column_no) for a in current_seats(db, session_id)]
    layouts = layouts_for(seats, forms)
    db.execute(
        "UPDATE candidates SET form_id = ? WHERE session_id = ? AND ticket = ?",
        (layouts[ticket], session_id, ticket),
    )
    mine = [c for c in conflicts_of(seats, layouts, package_seating(db, session_id).shuffled)
            if c.startswith(f"{ticket} (") or f" and {ticket} (" in c]  # fmt: skip
    return layouts[ticket], mine
