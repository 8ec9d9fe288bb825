"""Rooms, the random seat plan and the random draw of invigilators to rooms (art. 20, 21).

Both draws are a deterministic function of a recorded seed, so anyone holding the seed, the
roster and the room list can re-run them and get the same plan (`cbt venue seats --verify`).

Seat plan, algorithm `hmac-sha256-sort/1`:
1. the seats: rooms sorted by `room_id`; in each room seats numbered row by row from 1
   (seat_no = (row - 1) * columns + column); the last `spare_seats` seats of each room stay
   empty for moves;
2. the candidates: sorted by HMAC-SHA256(key = seed bytes, message = UTF-8 ticket), ties
   (impossible in practice) by ticket;
3. the i-th candidate takes the i-th seat.
Where the paper has parallel forms, each seat's form follows `paperpack.forms.assign_forms`
(neighbours sit different forms) and is stored on the candidate.

Invigilators, algorithm `hmac-sha256-sort/1` too: active invigilators sorted by
HMAC-SHA256(seed, login); rooms sorted by room_id take them in turn, each as many as the room
needs (at least 2, art. 20); any left over are reserves (not assigned).

A plan is drawn once per session. The only later change is `move_seat`, an audited exception
with a reason; `verify_seats` replays the recorded moves on the recomputed draw.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from sqlite_utils import Database

from paperpack.canonical import canonical_hash
from paperpack.forms import Seat, assign_forms
from server.audit import record
from server.clock import iso
from server.errors import CbtError
from server.venue.roster import roster_hash

ALGORITHM = "hmac-sha256-sort/1"
MIN_INVIGILATORS = 2


class SeatsError(CbtError):
    """Rooms or seats cannot be set up or changed as asked; `slug` names the case for the API."""

    def __init__(self, message: str, slug: str = "seats-refused") -> None:
        super().__init__(message)
        self.slug = slug


class SeatsMismatch(SeatsError):
    """The stored plan is not what its recorded seed gives."""


@dataclass(frozen=True)
class Room:
    """One exam room; seats are numbered row by row from 1."""

    room_id: str
    rows: int
    columns: int
    spare_seats: int = 0
    name: str = ""
    invigilators: int = MIN_INVIGILATORS

    @property
    def usable_seats(self) -> int:
        return self.rows * self.columns - self.spare_seats


@dataclass(frozen=True)
class SeatAssignment:
    """Where one candidate sits."""

    ticket: str
    room_id: str
    seat_no: int
    row_no: int
    column_no: int


# --- rooms -----------------------------------------------------------------------------------


def load_rooms(path: Path) -> list[Room]:
    """Read rooms.yaml (`rooms: [{room_id, rows, columns, spare_seats, name, invigilators}]`)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SeatsError(f"cannot read rooms file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise SeatsError(f"{path} is not valid YAML: {exc}") from None
    entries = data.get("rooms") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not entries:
        raise SeatsError(f"{path}: expected a non-empty list under 'rooms'")
    rooms = [_parse_room(entry, f"{path}: rooms[{i}]") for i, entry in enumerate(entries)]
    seen: set[str] = set()
    for room in rooms:
        if room.room_id in seen:
            raise SeatsError(f"{path}: room {room.room_id} is listed twice")
        seen.add(room.room_id)
    return rooms


def _parse_room(entry: Any, where: str) -> Room:
    if not isinstance(entry, dict):
        raise SeatsError(f"{where}: expected a mapping with room_id, rows, columns")
    room_id = entry.get("room_id")
    if not isinstance(room_id, str) or not room_id.strip():
        raise SeatsError(f"{where}.room_id: give the room's code as text, e.g. 'R101'")
    ints: dict[str, int] = {}
    for field, low, default in (
        ("rows", 1, None),
        ("columns", 1, None),
        ("spare_seats", 0, 0),
        ("invigilators", MIN_INVIGILATORS, MIN_INVIGILATORS),
    ):
        value = entry.get(field, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise SeatsError(f"{where}.{field}: must be a whole number >= {low}, not {value!r}")
        ints[field] = value
    room = Room(room_id=room_id, name=str(entry.get("name", "")), **ints)
    if room.usable_seats < 1:
        raise SeatsError(f"{where}.spare_seats: leaves no seat for candidates in {room_id}")
    return room


def store_rooms(db: Database, rooms: Sequence[Room], *, actor: str, now: datetime) -> None:
    """Insert or update the rooms; refused for a room a seat plan already uses; audited."""
    for room in rooms:
        used = db.execute("SELECT count(*) FROM seats WHERE room_id = ?", (room.room_id,))
        old = db.execute(
            "SELECT rows, columns, spare_seats FROM rooms WHERE room_id = ?", (room.room_id,)
        ).fetchone()
        if used.fetchone()[0] and old != (room.rows, room.columns, room.spare_seats):
            raise SeatsError(
                f"room {room.room_id} is in a seat plan already: its layout cannot change"
            )
        db.execute(
            "INSERT INTO rooms (room_id, name, rows, columns, spare_seats, invigilators)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (room_id) DO UPDATE SET name = excluded.name,"
            " rows = excluded.rows, columns = excluded.columns,"
            " spare_seats = excluded.spare_seats, invigilators = excluded.invigilators",
            (room.room_id, room.name, room.rows, room.columns, room.spare_seats, room.invigilators),
        )
    record(db, actor, "rooms.stored", "venue", {"rooms_hash": rooms_hash(rooms)}, now=now)


def stored_rooms(db: Database) -> list[Room]:
    """The rooms in the database, by room_id."""
    return [
        Room(room_id=r[0], name=r[1], rows=r[2], columns=r[3], spare_seats=r[4], invigilators=r[5])
        for r in db.execute(
            "SELECT room_id, name, rows, columns, spare_seats, invigilators FROM rooms"
            " ORDER BY room_id"
        )
    ]


def rooms_hash(rooms: Sequence[Room]) -> str:
    """Hex SHA-256 of the canonical room layouts (what the draw depends on)."""
    return canonical_hash(
        sorted(([r.room_id, r.rows, r.columns, r.spare_seats] for r in rooms), key=lambda x: x[0])
    )


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


def compute_invigilator_draw(
    seed: bytes, logins: Sequence[str], rooms: Sequence[Room]
) -> dict[str, str]:
    """{login: room_id} for the invigilators the seed puts in each room (reserves left out)."""
    needed = sum(r.invigilators for r in rooms)
    if len(logins) < needed:
        raise SeatsError(
            f"the rooms need {needed} invigilators (at least {MIN_INVIGILATORS} each, art. 20) "
            f"but only {len(logins)} invigilator accounts are active: add staff"
        )
    ordered = iter(sorted(logins, key=lambda name: (draw_key(seed, name), name)))
    return {
        next(ordered): room.room_id
        for room in sorted(rooms, key=lambda r: r.room_id)
        for _ in range(room.invigilators)
    }


# --- recording and verifying ------------------------------------------------------------------


def _new_seed(seed: bytes | None) -> bytes:
    if seed is None:
        return secrets.token_bytes(32)
    if len(seed) < 16:
        raise SeatsError("a seed must have at least 16 bytes (32 hex characters)")
    return seed


def _record_seed(
    db: Database, session_id: str, purpose: str, seed: bytes, actor: str, now: datetime
) -> int:
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


def draw_seats(
    db: Database,
    session_id: str,
    *,
    actor: str,
    now: datetime,
    seed: bytes | None = None,
    forms: Sequence[str] = (),
) -> int:
    """Draw and store the session's seat plan from a new (or given) seed; return the plan id."""
    if db.execute("SELECT 1 FROM seat_plans WHERE session_id = ?", (session_id,)).fetchone():
        raise SeatsError(
            f"session {session_id} already has a seat plan: it is drawn once; move single "
            "candidates with a reason instead"
        )
    tickets = roster_tickets(db, session_id)
    if not tickets:
        raise SeatsError(f"session {session_id} has no roster: import it first")
    rooms = stored_rooms(db)
    if not rooms:
        raise SeatsError("no rooms are set up: pass --rooms rooms.yaml")
    seed = _new_seed(seed)
    plan = compute_seat_plan(seed, tickets, rooms)
    seed_id = _record_seed(db, session_id, "seats", seed, actor, now)
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
    if forms:
        _assign_forms(db, session_id, plan, forms)
    record(
        db,
        actor,
        "seats.drawn",
        f"session:{session_id}",
        {"seed": seed.hex(), "algorithm": ALGORITHM, "plan_hash": digest, "forms": list(forms)},
        now=now,
    )
    return plan_id


def _assign_forms(
    db: Database, session_id: str, plan: Sequence[SeatAssignment], forms: Sequence[str]
) -> None:
    by_seat = assign_forms([Seat(a.room_id, a.row_no, a.column_no) for a in plan], forms)
    db.conn.executemany(
        "UPDATE candidates SET form_id = ? WHERE session_id = ? AND ticket = ?",
        [(by_seat[(a.room_id, a.row_no, a.column_no)], session_id, a.ticket) for a in plan],
    )


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


def verify_seats(db: Database, session_id: str) -> SeatVerification:
    """Re-run the draw from the recorded seed and replay the audited moves; raise on any gap."""
    plan_row = db.execute(
        "SELECT p.algorithm, p.roster_hash, p.rooms_hash, p.plan_hash, s.seed FROM seat_plans p"
        " JOIN seeds s ON s.seed_id = p.seed_id WHERE p.session_id = ?",
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
    return SeatVerification(session_id, seed_hex, len(tickets), moves, recorded_plan)


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
        {"from": f"{seat[0]}/{seat[1]}", "to": f"{room_id}/{seat_no}", "reason": reason},
        now=now,
    )
    return SeatAssignment(ticket, room_id, seat_no, row, column)


def invigilator_logins(db: Database) -> list[str]:
    return [
        r[0]
        for r in db.execute(
            "SELECT login FROM staff WHERE role = 'invigilator' AND active = 1 ORDER BY login"
        )
    ]


def draw_invigilators(
    db: Database, session_id: str, *, actor: str, now: datetime, seed: bytes | None = None
) -> dict[str, str]:
    """Draw (once per session) and store which invigilators watch which room; audited."""
    if db.execute(
        "SELECT 1 FROM invigilator_assignments WHERE session_id = ?", (session_id,)
    ).fetchone():
        raise SeatsError(f"session {session_id} already has its invigilator draw")
    rooms = stored_rooms(db)
    if not rooms:
        raise SeatsError("no rooms are set up: pass --rooms rooms.yaml")
    seed = _new_seed(seed)
    logins = invigilator_logins(db)
    draw = compute_invigilator_draw(seed, logins, rooms)
    seed_id = _record_seed(db, session_id, "invigilators", seed, actor, now)
    db.conn.executemany(
        "INSERT INTO invigilator_assignments (session_id, staff_id, room_id, seed_id)"
        " SELECT ?, staff_id, ?, ? FROM staff WHERE login = ?",
        [(session_id, room_id, seed_id, login) for login, room_id in draw.items()],
    )
    record(
        db,
        actor,
        "invigilators.drawn",
        f"session:{session_id}",
        {
            "seed": seed.hex(),
            "algorithm": ALGORITHM,
            "logins": logins,
            "draw_hash": canonical_hash(draw),
        },
        now=now,
    )
    return draw


def verify_invigilators(db: Database, session_id: str) -> dict[str, str]:
    """Re-run the invigilator draw from its recorded seed and staff list; compare; return it."""
    row = db.execute(
        "SELECT details FROM audit_events WHERE action = 'invigilators.drawn' AND object = ?"
        " ORDER BY event_id DESC LIMIT 1",
        (f"session:{session_id}",),
    ).fetchone()
    if row is None:
        raise SeatsError(f"session {session_id} has no invigilator draw yet")
    details = json.loads(row[0])
    stored = dict(
        db.execute(
            "SELECT s.login, a.room_id FROM invigilator_assignments a JOIN staff s"
            " ON s.staff_id = a.staff_id WHERE a.session_id = ?",
            (session_id,),
        ).fetchall()
    )
    expected = compute_invigilator_draw(
        bytes.fromhex(details["seed"]), details["logins"], stored_rooms(db)
    )
    if expected != stored or canonical_hash(expected) != details["draw_hash"]:
        raise SeatsMismatch("the stored invigilator rooms are not what the recorded seed gives")
    return stored
