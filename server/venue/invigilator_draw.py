"""The random draw of invigilators to rooms (art. 20), reproducible from a recorded seed.

Algorithm `hmac-sha256-sort/1`, as the seat plan's (`server.venue.seats`): active invigilators
sorted by HMAC-SHA256(seed, login); rooms sorted by room_id take them in turn, each as many as
the room needs (at least 2, art. 20); any left over are reserves (not assigned). Drawn once per
session and audited with its seed, the staff list and their declared conflicts of interest
(art. 48: a room takes the next invigilator with no conflict there), so `verify_invigilators`
can re-run it.
The seed is derived from the one the centre signed into the session's package (art. 21(1)):
HMAC-SHA256(package seat seed, "cbt-invigilator-seed-v1"); a seed given at the venue, or a
venue seed for a package from before format 3, is recorded as the venue's.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlite_utils import Database

from paperpack.canonical import canonical_hash
from server.audit import record
from server.venue.rooms import MIN_INVIGILATORS, Room, SeatsError, stored_rooms
from server.venue.seat_forms import package_seating
from server.venue.seats import ALGORITHM, SeatsMismatch, draw_key, new_seed, record_seed


def compute_invigilator_draw(
    seed: bytes,
    logins: Sequence[str],
    rooms: Sequence[Room],
    conflicts: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, str]:
    """{login: room_id} for the invigilators the seed puts in each room (reserves left out).

    `conflicts` maps a login to the rooms of its declared conflict of interest ("*": every
    room, art. 48): each room takes the next invigilator in the drawn order who has none there."""
    needed = sum(r.invigilators for r in rooms)
    if len(logins) < needed:
        raise SeatsError(
            f"the rooms need {needed} invigilators (at least {MIN_INVIGILATORS} each, art. 20) "
            f"but only {len(logins)} invigilator accounts are active: add staff"
        )
    conflicts = conflicts or {}
    remaining = sorted(logins, key=lambda name: (draw_key(seed, name), name))
    draw: dict[str, str] = {}
    for room in sorted(rooms, key=lambda r: r.room_id):
        for _ in range(room.invigilators):
            free = [
                login
                for login in remaining
                if not {"*", room.room_id} & set(conflicts.get(login, ()))
            ]
            if not free:
                raise SeatsError(
                    f"room {room.room_id} needs {room.invigilators} invigilators without a "
                    "declared conflict of interest there (art. 48), and too few are left: add staff"
                )
            remaining.remove(free[0])
            draw[free[0]] = room.room_id
    return draw


def invigilator_conflicts(db: Database) -> dict[str, list[str]]:
    """{login: rooms of a declared conflict of interest ("*" = every room)} (art. 48)."""
    found: dict[str, list[str]] = {}
    for login, room in db.execute(
        "SELECT s.login, c.room_id FROM staff_conflicts c JOIN staff s ON s.staff_id = c.staff_id"
        " ORDER BY s.login, c.room_id"
    ):
        found.setdefault(login, []).append(room or "*")
    return found


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
    centre = package_seating(db, session_id).seed
    source = "venue" if seed is not None or centre is None else "centre"
    if seed is None and centre is not None:
        seed = hmac.digest(centre, b"cbt-invigilator-seed-v1", hashlib.sha256)
    seed = new_seed(seed)
    logins = invigilator_logins(db)
    conflicts = invigilator_conflicts(db)
    draw = compute_invigilator_draw(seed, logins, rooms, conflicts)
    seed_id = record_seed(db, session_id, "invigilators", seed, actor, now)
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
            "seed_source": source,
            "algorithm": ALGORITHM,
            "logins": logins,
            "conflicts": conflicts,
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
        bytes.fromhex(details["seed"]),
        details["logins"],
        stored_rooms(db),
        details.get("conflicts") or {},
    )
    if expected != stored or canonical_hash(expected) != details["draw_hash"]:
        raise SeatsMismatch("the stored invigilator rooms are not what the recorded seed gives")
    return stored
