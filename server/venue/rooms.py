"""Exam rooms: their layouts, read from rooms.yaml and stored at the venue.

A room has `rows` x `columns` seats numbered row by row from 1 (seat_no = (row - 1) *
columns + column); its last `spare_seats` seats stay empty for moves, and it needs at least
`MIN_INVIGILATORS` invigilators (art. 20). A room's layout cannot change once a seat plan uses
it; `rooms_hash` is what the seat plan records of the layouts it was drawn on.
`SeatsError` is the refusal of the rooms and of the draws on them (`server.venue.seats`,
`server.venue.invigilator_draw`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from sqlite_utils import Database

from paperpack.canonical import canonical_hash
from server.audit import record
from server.errors import CbtError

MIN_INVIGILATORS = 2


class SeatsError(CbtError):
    """Rooms or seats cannot be set up or changed as asked; `slug` names the case for the API."""

    def __init__(self, message: str, slug: str = "seats-refused") -> None:
        super().__init__(message)
        self.slug = slug


class SeatsMismatch(SeatsError):
    """The stored plan (or invigilator draw) is not what its recorded seed gives."""


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
