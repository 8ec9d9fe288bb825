"""Seat plans and invigilator draws: reproducible from the recorded seed, changes audited."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlite_utils import Database

from server.audit import verify_audit
from server.store import transaction
from server.venue.invigilator_draw import (
    compute_invigilator_draw,
    draw_invigilators,
    verify_invigilators,
)
from server.venue.rooms import Room, SeatsError, load_rooms, store_rooms
from server.venue.roster import import_roster_file
from server.venue.seats import (
    SeatsMismatch,
    compute_seat_plan,
    current_seats,
    draw_seats,
    move_seat,
    verify_seats,
)
from server.venue.staff import add_staff
from tests.conftest import EXAMPLES

NOW = datetime(2026, 11, 7, 7, 0, tzinfo=UTC)
SESSION = "2026H2-27-AM"
SEED = bytes(range(32))


@pytest.fixture
def seated_db(venue_db: Database) -> Database:
    """The example roster and rooms stored, no plan drawn yet."""
    with transaction(venue_db):
        import_roster_file(
            venue_db, EXAMPLES / "roster.csv", SESSION, actor="cli:t", now=NOW, subject="27"
        )
        store_rooms(venue_db, load_rooms(EXAMPLES / "rooms.yaml"), actor="cli:t", now=NOW)
    return venue_db


def draw(db: Database, **kw: object) -> int:
    with transaction(db):
        return draw_seats(db, SESSION, actor="chief", now=NOW, **kw)  # type: ignore[arg-type]


def test_the_example_rooms_load() -> None:
    """examples/rooms.yaml holds two 4x5 rooms with 2 spare seats each."""
    rooms = load_rooms(EXAMPLES / "rooms.yaml")
    assert [(r.room_id, r.usable_seats) for r in rooms] == [("R101", 18), ("R102", 18)]


def test_the_same_seed_gives_the_same_plan_and_another_seed_another(seated_db: Database) -> None:
    """The plan is a function of seed, roster and rooms."""
    tickets = [f"T{i:03d}" for i in range(30)]
    rooms = load_rooms(EXAMPLES / "rooms.yaml")
    a = compute_seat_plan(SEED, tickets, rooms)
    assert a == compute_seat_plan(SEED, list(reversed(tickets)), rooms)
    assert a != compute_seat_plan(bytes(32), tickets, rooms)


def test_a_drawn_plan_verifies_and_is_recorded_with_its_seed(seated_db: Database) -> None:
    """Drawing stores every candidate's seat, the seed and an audit event; verify re-runs it."""
    draw(seated_db, seed=SEED)
    seats = current_seats(seated_db, SESSION)
    assert len(seats) == 30
    assert len({(s.room_id, s.seat_no) for s in seats}) == 30
    assert all(s.seat_no <= 18 for s in seats)  # spare seats stay empty
    report = verify_seats(seated_db, SESSION)
    assert report.seed == SEED.hex() and report.candidates == 30 and report.moves == 0
    assert verify_audit(seated_db) == 3  # roster, rooms, seats


def test_a_plan_is_drawn_only_once(seated_db: Database) -> None:
    """A second draw for the same session is refused."""
    draw(seated_db)
    with pytest.raises(SeatsError, match="already has a seat plan"):
        draw(seated_db)


def test_an_audited_move_still_verifies(seated_db: Database) -> None:
    """A move to a spare seat with a reason is replayed by verify."""
    draw(seated_db, seed=SEED)
    ticket = current_seats(seated_db, SESSION)[0].ticket
    with transaction(seated_db):
        moved = move_seat(
            seated_db, SESSION, ticket, "R102", 20, "machine failure", actor="inv1", now=NOW
        )
    assert (moved.row_no, moved.column_no) == (4, 5)
    assert verify_seats(seated_db, SESSION).moves == 1


def test_moves_need_a_reason_and_a_free_seat(seated_db: Database) -> None:
    """No reason, a taken seat or a seat outside the room are refused."""
    draw(seated_db, seed=SEED)
    seats = current_seats(seated_db, SESSION)
    with pytest.raises(SeatsError, match="needs a reason"):
        move_seat(seated_db, SESSION, seats[0].ticket, "R101", 19, " ", actor="i", now=NOW)
    with pytest.raises(SeatsError, match="is taken"):
        move_seat(
            seated_db,
            SESSION,
            seats[0].ticket,
            seats[1].room_id,
            seats[1].seat_no,
            "x",
            actor="i",
            now=NOW,
        )
    with pytest.raises(SeatsError, match="seats 1 to 20"):
        move_seat(seated_db, SESSION, seats[0].ticket, "R101", 21, "x", actor="i", now=NOW)


def test_an_unrecorded_change_is_found(seated_db: Database) -> None:
    """Swapping two candidates' seats behind the system's back fails verification."""
    draw(seated_db, seed=SEED)
    a, b = current_seats(seated_db, SESSION)[:2]
    with transaction(seated_db):
        seated_db.execute("UPDATE seats SET seat_no = -1 WHERE ticket = ?", (a.ticket,))
        seated_db.execute(
            "UPDATE seats SET room_id = ?, seat_no = ? WHERE ticket = ?",
            (a.room_id, a.seat_no, b.ticket),
        )
        seated_db.execute(
            "UPDATE seats SET room_id = ?, seat_no = ? WHERE ticket = ?",
            (b.room_id, b.seat_no, a.ticket),
        )
    with pytest.raises(SeatsMismatch, match=f"candidate {a.ticket} sits at"):
        verify_seats(seated_db, SESSION)


def test_a_changed_roster_is_found(seated_db: Database) -> None:
    """A candidate added after the draw makes verification fail."""
    draw(seated_db, seed=SEED)
    seated_db.execute(
        "INSERT INTO candidates (session_id, ticket, name, id_number, subject, row_no, imported_at)"
        " VALUES (?, 'LATE1', 'x', 'x', '27', 99, 'x')",
        (SESSION,),
    )
    with pytest.raises(SeatsMismatch, match="roster changed"):
        verify_seats(seated_db, SESSION)


def test_without_a_package_neighbours_get_different_order_classes(seated_db: Database) -> None:
    """With no package imported the paper's forms are unknown: --forms is refused, and every
    seat still gets its order class, different from each neighbour's (diagonals included)."""
    with pytest.raises(SeatsError, match="no package imported"):
        draw(seated_db, seed=SEED, forms=("A", "B"))
    draw(seated_db, seed=SEED)
    rows = seated_db.execute(
        "SELECT s.room_id, s.row_no, s.column_no, c.form_id FROM seats s JOIN candidates c"
        " USING (session_id, ticket)"
    ).fetchall()
    by_pos = {(r[0], r[1], r[2]): r[3] for r in rows}
    for (room, row, column), layout in by_pos.items():
        for dr, dc in ((0, 1), (1, -1), (1, 0), (1, 1)):
            other = by_pos.get((room, row + dr, column + dc))
            assert other is None or other != layout
    assert {r[3] for r in rows} == {"#0", "#1", "#2", "#3"}


def test_too_few_seats_is_refused() -> None:
    """More candidates than usable seats is an error naming both counts."""
    with pytest.raises(SeatsError, match="3 candidates but only 2 usable seats"):
        compute_seat_plan(SEED, ["a", "b", "c"], [Room("R1", 1, 3, spare_seats=1)])


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 25),  # 3x5 + 4x4 seats less up to 3 spares each
    seed=st.binary(min_size=16, max_size=32),
    spare=st.integers(0, 3),
)
def test_every_candidate_gets_one_distinct_usable_seat(n: int, seed: bytes, spare: int) -> None:
    """For any seed and roster size that fits, each candidate gets exactly one non-spare seat."""
    rooms = [Room("A", 3, 5, spare), Room("B", 4, 4, spare)]
    plan = compute_seat_plan(seed, [f"T{i}" for i in range(n)], rooms)
    assert len(plan) == n
    assert len({(p.room_id, p.seat_no) for p in plan}) == n
    for p in plan:
        room = next(r for r in rooms if r.room_id == p.room_id)
        assert 1 <= p.seat_no <= room.usable_seats
        assert p.seat_no == (p.row_no - 1) * room.columns + p.column_no


def test_invigilators_are_drawn_to_rooms_and_verify(seated_db: Database) -> None:
    """Four invigilators fill two rooms of two; the draw verifies from its seed."""
    with transaction(seated_db):
        for i in range(5):
            add_staff(seated_db, f"inv{i}", f"Inv {i}", "invigilator", "x", actor="t", now=NOW)
        drawn = draw_invigilators(seated_db, SESSION, actor="chief", now=NOW, seed=SEED)
    assert sorted(drawn.values()) == ["R101", "R101", "R102", "R102"]
    assert verify_invigilators(seated_db, SESSION) == drawn
    with transaction(seated_db):
        add_staff(seated_db, "inv9", "Late", "invigilator", "x", actor="t", now=NOW)
    assert verify_invigilators(seated_db, SESSION) == drawn  # later staff do not change it


def test_too_few_invigilators_is_refused() -> None:
    """Rooms needing 4 with 3 invigilators: an error naming art. 20."""
    with pytest.raises(SeatsError, match="need 4 invigilators"):
        compute_invigilator_draw(SEED, ["a", "b", "c"], [Room("R1", 2, 2), Room("R2", 2, 2)])


def test_bad_rooms_files_are_named(tmp_path: Path) -> None:
    """A room without rows is reported with its position and field."""
    path = tmp_path / "rooms.yaml"
    path.write_text("rooms:\n  - room_id: R1\n    columns: 4\n")
    with pytest.raises(SeatsError, match=r"rooms\[0\]\.rows: must be a whole number >= 1"):
        load_rooms(path)
