"""What the seat plan takes from the signed package and gives each seat (art. 20, 21(1)).

The session's package in force carries, in its signed manifest (format 3, `seating`), the
seat seed the centre drew when it packed, the paper's forms and the item counts of the
paper's shuffled sections: all the seat plan needs of the paper before the unlock. From
them and the seats, `paperpack.forms` gives every seat its layout (form and order class) and
names the neighbour pairs the paper leaves no way to keep apart.

A package packed before format 3 says none of this: the draw then uses a venue seed (audited
as such), cannot check forms (so `--forms` is refused) and does not know the shuffled
sections (so it names no pairs).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from sqlite_utils import Database

from paperpack.forms import Conflict, Seat, neighbour_conflicts, seat_layouts
from server.venue.rooms import SeatsError, SeatsMismatch


@dataclass(frozen=True)
class Seating:
    """The seating part of the session's package in force (None fields: not said)."""

    package_id: str | None
    paper_id: str | None
    seed: bytes | None  # the centre's seat seed
    forms: tuple[str, ...]
    shuffled: tuple[int, ...] | None  # item counts of the shuffled sections


def package_seating(db: Database, session_id: str) -> Seating:
    """What the session's imported package says about seating (nothing if none imported)."""
    row = db.execute(
        "SELECT p.package_id, p.manifest FROM sessions s JOIN packages p"
        " ON p.package_id = s.package_id WHERE s.session_id = ?",
        (session_id,),
    ).fetchone()
    if row is None:
        return Seating(None, None, None, (), None)
    manifest = json.loads(row[1])
    seating = manifest.get("seating")
    if not isinstance(seating, dict):
        return Seating(row[0], manifest.get("paper_id"), None, (), None)
    return Seating(
        row[0],
        manifest.get("paper_id"),
        bytes.fromhex(seating["seed"]),
        tuple(seating["forms"]),
        tuple(seating["shuffled"]),
    )


def check_forms(seating: Seating, session_id: str, asked: Sequence[str] | None) -> tuple[str, ...]:
    """The forms to seat: the paper's own (default), or those asked if the paper has them."""
    if asked is None:
        return seating.forms
    if seating.package_id is None:
        raise SeatsError(
            f"session {session_id} has no package imported, so its paper's forms are not known:"
            " import the package first, or leave --forms out",
            "unknown-forms",
        )
    if seating.shuffled is None:
        raise SeatsError(
            f"the package of session {session_id} was packed before package format 3 and does"
            " not say its paper's forms: leave --forms out, or ask the centre to re-pack",
            "unknown-forms",
        )
    unknown = [f for f in asked if f not in seating.forms]
    if len(set(asked)) != len(asked):
        raise SeatsError(f"--forms names a form twice: {', '.join(asked)}", "unknown-forms")
    if unknown:
        has = (
            f"has the forms {', '.join(seating.forms)}"
            if seating.forms
            else "has no forms: leave --forms out"
        )
        raise SeatsError(
            f"paper {seating.paper_id} of session {session_id} {has}; it does not have "
            f"{', '.join(unknown)}",
            "unknown-forms",
        )
    return tuple(asked)


def layouts_for(
    seats: Sequence[tuple[str, str, int, int]], forms: Sequence[str]
) -> dict[str, str | None]:
    """{ticket: layout} for seats given as (ticket, room_id, row, column)."""
    by_seat = seat_layouts([Seat(room, row, column) for _, room, row, column in seats], forms)
    return {ticket: by_seat[(room, row, column)] for ticket, room, row, column in seats}


def conflicts_of(
    seats: Sequence[tuple[str, str, int, int]],
    layouts: dict[str, str | None],
    shuffled: Sequence[int] | None,
) -> list[str]:
    """The neighbour pairs that may see the same screen, in words (none if not known)."""
    if shuffled is None:
        return []
    by_key = {(room, row, column): ticket for ticket, room, row, column in seats}
    found = neighbour_conflicts({k: layouts[t] for k, t in by_key.items()}, shuffled)
    return [describe(c, by_key) for c in found]


def describe(conflict: Conflict, tickets: dict[tuple[str, int, int], str]) -> str:
    a, b = conflict.first, conflict.second
    return (
        f"{tickets[a]} ({a[0]} row {a[1]} column {a[2]}) and {tickets[b]} ({b[0]} row {b[1]} "
        f"column {b[2]}): {conflict.reason}"
    )


def drawn_forms(drawn: dict[str, object]) -> list[str]:
    forms = drawn.get("forms")
    return [str(f) for f in forms] if isinstance(forms, list) else []


def drawn_record(db: Database, session_id: str) -> dict[str, object]:
    """The audit details of the session's latest draw or redraw."""
    row = db.execute(
        "SELECT details FROM audit_events WHERE action IN ('seats.drawn', 'seats.redrawn')"
        " AND object = ? ORDER BY event_id DESC LIMIT 1",
        (f"session:{session_id}",),
    ).fetchone()
    if row is None:
        raise SeatsMismatch(f"the seat draw of session {session_id} has no audit event")
    details: dict[str, object] = json.loads(row[0])
    return details


def check_seed_source(
    db: Database, session_id: str, drawn: dict[str, object], seed_hex: str
) -> str:
    """A seed recorded as the centre's must be the one the package named signed; a plan drawn
    with the package of another manifest version than the one in force must be redrawn."""
    if drawn.get("seed") != seed_hex:
        raise SeatsMismatch("the audited draw names another seed than the recorded plan")
    in_force = package_seating(db, session_id).package_id
    if drawn.get("package_id") and in_force and drawn.get("package_id") != in_force:
        raise SeatsMismatch(
            f"the seat plan was drawn with package {str(drawn.get('package_id'))[:12]}..., but "
            f"package {in_force[:12]}... is in force now: draw it again with --redraw --reason "
            "(before the unlock)"
        )
    if drawn.get("seed_source") != "centre":
        return "venue"
    row = db.execute(
        "SELECT manifest FROM packages WHERE package_id = ?", (drawn.get("package_id"),)
    ).fetchone()
    signed = (json.loads(row[0]).get("seating") or {}).get("seed") if row else None
    if signed != seed_hex:
        raise SeatsMismatch(
            "the plan's seed is recorded as the centre's but is not the one in the package's "
            "signed manifest"
        )
    return "centre"


def check_layouts(
    db: Database, session_id: str, drawn: dict[str, object], seats: list[tuple[str, str, int, int]]
) -> list[str]:
    """Every candidate's stored layout is the one their seat gives; the named conflicts."""
    forms = drawn_forms(drawn)
    expected = layouts_for(seats, forms)
    stored = dict(
        db.execute(
            "SELECT ticket, form_id FROM candidates WHERE session_id = ?", (session_id,)
        ).fetchall()
    )
    for ticket, layout in sorted(expected.items()):
        if stored.get(ticket) != layout:
            raise SeatsMismatch(
                f"candidate {ticket} has form {stored.get(ticket)} but their seat gives "
                f"{layout}: an unrecorded change"
            )
    return conflicts_of(seats, expected, package_seating(db, session_id).shuffled)


def seat_layout(db: Database, session_id: str, ticket: str) -> str | None:
    """The candidate's recorded layout (form and order class)."""
    row = db.execute(
        "SELECT form_id FROM candidates WHERE session_id = ? AND ticket = ?", (session_id, ticket)
    ).fetchone()
    return row[0] if row else None
