"""Seats neighbours can't copy (art. 20) from a seed no one at the venue controls (art. 21(1)).

The package is the real packer's (format 3), imported with `cbt venue import`; the seat plan
is drawn with `cbt venue seats` and checked with `--verify`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import shutil
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paperpack.forms import class_digits, class_radices, parse_layout
from paperpack.paperfile import load_paper
from server.cli import main as cbt
from server.store import transaction
from server.venue import keys
from server.venue.rooms import Room, SeatsError, load_rooms
from server.venue.seat_forms import conflicts_of, layouts_for
from server.venue.seats import compute_seat_plan, draw_seats, verify_seats
from server.venue.staff import add_staff
from server.venue.workspace import load_venue, open_venue_db
from tests.conftest import EXAMPLES
from tests.server.conftest import SESSION_ID as KIT_SESSION
from tests.server.conftest import START as KIT_START
from tests.server.conftest import VenueKit, pack_for_venue

SESSION = "2026H2-27-AM"
START = datetime(2026, 11, 7, 9, 0, tzinfo=UTC)


def _venue(tmp_path: Path, capsys: pytest.CaptureFixture[str], forms: bool = True) -> str:
    """A venue with the example roster and rooms and the real package of the example paper
    (forms A and B, or none) imported."""
    directory = tmp_path / "venue"
    assert cbt(["venue", "init", str(directory), "--venue-id", "BJ-001"]) == 0
    venue = load_venue(directory)
    paper = load_paper(EXAMPLES / "paper.yaml")
    if not forms:
        paper = dataclasses.replace(paper, forms=())
    package, _, _ = pack_for_venue(
        tmp_path / "centre", paper, session_id=SESSION, venue_id="BJ-001",
        venue_name="Beijing 1", wrap_public=venue.wrap_public, start=START,
    )  # fmt: skip
    shutil.copy(tmp_path / "centre" / "authority-sign.pub", venue.keys_dir / "authority-sign.pub")
    d = str(directory)
    (tmp_path / "pw").write_text("correct horse battery\n")
    pw = str(tmp_path / "pw")
    for login, role in (("admin", "system_administrator"), ("chief", "chief_examiner")):
        assert cbt(["venue", "staff", "add", d, "--login", login, "--role", role,
                    "--name", login, "--password-file", pw]) == 0  # fmt: skip
    assert cbt(["venue", "import", d, str(package), "--login", "admin", "--confirm-login",
                "chief", "--password-file", pw, "--confirm-password-file", pw]) == 0  # fmt: skip
    roster = ["venue", "roster", "import", d, str(EXAMPLES / "roster.csv"), "--session", SESSION]
    assert cbt(roster) == 0
    capsys.readouterr()
    return d


def _rows(d: str, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(Path(d) / "venue.db")
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def _manifest_seating(d: str) -> dict[str, Any]:
    [(manifest,)] = _rows(d, "SELECT manifest FROM packages")
    return dict(json.loads(manifest)["seating"])


ROOMS = ["--rooms", str(EXAMPLES / "rooms.yaml")]


def test_art20_seats_refuse_an_unknown_form_naming_the_papers_forms(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--forms A,C` on a paper with forms A and B is refused in words naming A and B; nothing
    is drawn; no Python name, no traceback."""
    d = _venue(tmp_path, capsys)
    assert cbt(["venue", "seats", d, "--session", SESSION, *ROOMS, "--forms", "A,C"]) == 1
    err = capsys.readouterr().err
    assert "has the forms A, B; it does not have C" in err
    assert "Traceback" not in err and "paperpack." not in err and "assign_forms" not in err
    assert _rows(d, "SELECT count(*) FROM seat_plans") == [(0,)]


def test_art20_a_paper_without_forms_refuses_forms(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--forms A,B` on a paper without forms is refused, saying to leave --forms out."""
    d = _venue(tmp_path, capsys, forms=False)
    assert cbt(["venue", "seats", d, "--session", SESSION, *ROOMS, "--forms", "A,B"]) == 1
    assert "has no forms: leave --forms out" in capsys.readouterr().err
    assert cbt(["venue", "seats", d, "--session", SESSION, *ROOMS]) == 0
    layouts = {f for (f,) in _rows(d, "SELECT form_id FROM candidates")}
    assert layouts <= {"#0", "#1", "#2", "#3"} and len(layouts) == 4


def test_art20_the_plan_takes_the_papers_forms_and_verify_checks_neighbours(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without --forms the plan uses the paper's forms A and B; every neighbour pair, diagonals
    included, differs in form or order class; --verify re-checks it and finds a layout
    changed by hand."""
    d = _venue(tmp_path, capsys)
    assert cbt(["venue", "seats", d, "--session", SESSION, *ROOMS]) == 0
    out = capsys.readouterr().out
    assert "form A order" in out and "form B order" in out
    seats = {
        (room, row, column): layout
        for room, row, column, layout in _rows(
            d, "SELECT s.room_id, s.row_no, s.column_no, c.form_id FROM seats s JOIN candidates c"
            " USING (session_id, ticket)"
        )
    }  # fmt: skip
    pairs = 0
    for (room, row, column), layout in seats.items():
        for dr, dc in ((0, 1), (1, -1), (1, 0), (1, 1)):
            other = seats.get((room, row + dr, column + dc))
            if other is not None:
                pairs += 1
                assert other != layout
    assert pairs > 30
    assert cbt(["venue", "seats", d, "--session", SESSION, "--verify"]) == 0
    assert "every candidate's form and order match their seat" in capsys.readouterr().out
    conn = sqlite3.connect(Path(d) / "venue.db")
    conn.execute("UPDATE candidates SET form_id = 'B#0' WHERE form_id = 'A#0'")
    conn.commit()
    conn.close()
    assert cbt(["venue", "seats", d, "--session", SESSION, "--verify"]) == 1
    assert "but their seat gives A#0: an unrecorded change" in capsys.readouterr().err


def test_art21_1_the_plan_is_the_centres_seed_and_reproducible_from_the_record(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The draw uses the seed the centre signed into the package (no venue choice); the plan
    re-run from the recorded seed, roster and rooms is the stored plan."""
    d = _venue(tmp_path, capsys)
    assert cbt(["venue", "seats", d, "--session", SESSION, *ROOMS]) == 0
    out = capsys.readouterr().out
    seed = _manifest_seating(d)["seed"]
    assert f"seed {seed} (the centre's, signed in the package)" in out
    [(recorded,)] = _rows(d, "SELECT seed FROM seeds WHERE purpose = 'seats'")
    assert recorded == seed
    tickets = [t for (t,) in _rows(d, "SELECT ticket FROM candidates ORDER BY ticket")]
    again = compute_seat_plan(bytes.fromhex(recorded), tickets, load_rooms(EXAMPLES / "rooms.yaml"))
    stored = _rows(d, "SELECT ticket, room_id, seat_no FROM seats ORDER BY ticket")
    assert [(a.ticket, a.room_id, a.seat_no) for a in again] == stored
    assert cbt(["venue", "seats", d, "--session", SESSION, "--verify"]) == 0
    assert "the centre's, signed in the package" in capsys.readouterr().out


def test_art21_1_a_redraw_with_another_seed_shows_in_the_audit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A second draw needs --redraw and a reason; a seed given at the venue is recorded as the
    venue's next to the centre's it replaced, and --verify says so."""
    d = _venue(tmp_path, capsys)
    assert cbt(["venue", "seats", d, "--session", SESSION, *ROOMS]) == 0
    other = "ab" * 32
    assert cbt(["venue", "seats", d, "--session", SESSION, "--seed", other]) == 1
    assert "add --redraw --reason" in capsys.readouterr().err
    assert cbt(["venue", "seats", d, "--session", SESSION, "--redraw", "--seed", other]) == 1
    assert "--redraw needs --reason" in capsys.readouterr().err
    redraw = ["--redraw", "--reason", "room R102 rewired", "--seed", other]
    assert cbt(["venue", "seats", d, "--session", SESSION, *redraw]) == 0
    capsys.readouterr()
    events = _rows(
        d, "SELECT action, details FROM audit_events WHERE action LIKE 'seats.%' ORDER BY event_id"
    )
    assert [a for a, _ in events] == ["seats.drawn", "seats.redrawn"]
    details = json.loads(events[1][1])
    assert details["seed"] == other and details["seed_source"] == "venue"
    assert details["previous_seed"] == _manifest_seating(d)["seed"]
    assert details["reason"] == "room R102 rewired"
    assert _rows(d, "SELECT count(*) FROM seat_plans") == [(2,)]
    assert cbt(["venue", "seats", d, "--session", SESSION, "--verify"]) == 0
    out = capsys.readouterr().out
    assert "1 redraw(s)" in out and "given at the venue: recorded in the audit" in out


def test_art21_1_a_seed_passed_off_as_the_centres_is_found(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A plan whose recorded seed was swapped (in the seeds table and the audit) is not the
    package's signed seed: --verify fails."""
    d = _venue(tmp_path, capsys)
    assert cbt(["venue", "seats", d, "--session", SESSION, *ROOMS]) == 0
    conn = sqlite3.connect(Path(d) / "venue.db")
    conn.execute("UPDATE seeds SET seed = ? WHERE purpose = 'seats'", ("cd" * 32,))
    conn.commit()
    conn.close()
    assert cbt(["venue", "seats", d, "--session", SESSION, "--verify"]) == 1
    assert "not what the seed gives" in capsys.readouterr().err


def test_art20_redraw_is_refused_after_the_unlock(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Once the paper is open the plan cannot be redrawn; the message says to move instead."""
    d = _venue(tmp_path, capsys)
    assert cbt(["venue", "seats", d, "--session", SESSION, *ROOMS]) == 0
    conn = sqlite3.connect(Path(d) / "venue.db")
    opened = (START - timedelta(minutes=20)).isoformat()
    conn.execute("UPDATE sessions SET status = 'unlocked', unlocked_at = ?", (opened,))
    conn.commit()
    conn.close()
    redraw = ["--redraw", "--reason", "late change"]
    assert cbt(["venue", "seats", d, "--session", SESSION, *redraw]) == 1
    assert "can no longer be redrawn; move single candidates" in capsys.readouterr().err


# --- a move in the running exam, through the real HTTP API ----------------------------------


async def _ceremony(kit: VenueKit) -> None:
    """The unlock as the console runs it (the package is imported already)."""
    resp = await kit.client.post(
        "/api/v1/staff/ceremony", json={"session_id": KIT_SESSION},
        headers=await kit.as_staff("admin"),
    )  # fmt: skip
    assert resp.status == 201, await resp.text()
    for login, holder in (("chief", 1), ("inv1", 2)):
        resp = await kit.client.post(
            "/api/v1/staff/ceremony/shares", json={"share": kit.template.cards[holder]},
            headers=await kit.as_staff(login),
        )  # fmt: skip
        assert resp.status == 200, await resp.text()
    resp = await kit.client.post(
        "/api/v1/staff/ceremony/release", json={"code": kit.template.release_code},
        headers=await kit.as_staff("admin"),
    )  # fmt: skip
    assert (await resp.json())["status"] == "unlocked"


def _shown(paper: dict[str, Any]) -> list[list[str]]:
    return [[item["id"] for item in section["items"]] for section in paper["sections"]]


async def test_art20_a_move_gives_the_new_seats_order_and_keeps_the_answers(
    venue_kit: VenueKit,
) -> None:
    """With the paper open, a move to a spare seat of another order class gives the candidate
    that seat's order (re-checked against its neighbours, audited), records the new variant's
    digest, keeps the tokens and every saved answer; a redraw is now refused."""
    kit = venue_kit
    await kit.import_package()
    db = open_venue_db(kit.directory)
    with transaction(db):
        draw_seats(db, KIT_SESSION, actor="cli:test", now=KIT_START - timedelta(hours=2),
                   redraw_reason="drawn from the package's seed")  # fmt: skip
    await _ceremony(kit)
    c = await kit.login_candidate(1)
    [(layout,)] = db.execute("SELECT form_id FROM candidates WHERE ticket = ?", (c.ticket,))
    # A spare seat in row 6 of another order class: column 1 -> class 1, column 2 -> class 0.
    target, new_layout = (51, "#1") if layout == "#0" else (52, "#0")
    kit.clock.set(KIT_START + timedelta(minutes=20))
    resp = await kit.client.get("/api/v1/attempt/paper", headers=c.auth)
    before = await resp.json()
    item = before["sections"][0]["items"][0]
    answer = {item["id"]: [item["options"][1]["id"]]}
    resp = await kit.client.put(
        "/api/v1/attempt/responses", json={"seq": 1, "responses": answer}, headers=c.auth
    )
    assert resp.status == 200, await resp.text()
    resp = await kit.client.post(
        f"/api/v1/staff/candidates/{c.ticket}/seat",
        json={"room_id": "R1", "seat_no": target, "reason": "screen failed"},
        headers=await kit.as_staff("inv2"),
    )
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["form"] == new_layout
    moved = await kit.login_candidate(1)
    after = await (await kit.client.get("/api/v1/attempt/paper", headers=moved.auth)).json()
    assert _shown(after) != _shown(before)
    tokens = [sorted(t for section in _shown(p) for t in section) for p in (before, after)]
    assert tokens[0] == tokens[1]  # the same tokens, another order
    saved = await (await kit.client.get("/api/v1/attempt/responses", headers=moved.auth)).json()
    assert saved["responses"] == answer
    exam = kit.app[keys.LIVE].exam
    assert exam is not None
    [(form, digest)] = db.execute(
        "SELECT form_id, digest FROM variants WHERE ticket = ?", (c.ticket,)
    ).fetchall()
    assert (form, digest) == (new_layout, exam.variant(c.ticket).digest)
    [(details,)] = db.execute(
        "SELECT details FROM audit_events WHERE action = 'seat.moved'"
    ).fetchall()
    assert json.loads(details)["layout"] == new_layout
    assert verify_seats(db, KIT_SESSION).moves == 1
    with pytest.raises(SeatsError, match="can no longer be redrawn"), transaction(db):
        draw_seats(db, KIT_SESSION, actor="cli:test", now=KIT_START, redraw_reason="again")
    db.close()


def test_art21_1_the_invigilator_draw_follows_the_centres_seed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Invigilators are drawn to rooms from a seed derived from the package's signed one
    (recorded as the centre's), and the draw verifies."""
    d = _venue(tmp_path, capsys)
    db = open_venue_db(Path(d))
    with transaction(db):
        for i in range(5):
            add_staff(db, f"inv{i}", f"Inv {i}", "invigilator", "x", actor="t", now=START)
    db.close()
    assert cbt(["venue", "seats", d, "--session", SESSION, *ROOMS, "--invigilators"]) == 0
    [(details,)] = _rows(d, "SELECT details FROM audit_events WHERE action = 'invigilators.drawn'")
    centre = bytes.fromhex(_manifest_seating(d)["seed"])
    expected = hmac.digest(centre, b"cbt-invigilator-seed-v1", hashlib.sha256).hex()
    assert json.loads(details)["seed"] == expected
    assert json.loads(details)["seed_source"] == "centre"
    assert cbt(["venue", "seats", d, "--session", SESSION, "--verify", "--invigilators"]) == 0
    assert "invigilator draw verified: 4 invigilators" in capsys.readouterr().out


# --- the property over random rooms and rosters --------------------------------------------


@st.composite
def venues(draw: st.DrawFn) -> tuple[list[Room], int, tuple[str, ...], tuple[int, ...]]:
    """Random rooms (spare seats and an unfilled roster leave gaps), a roster size that fits,
    the paper's forms and the item counts of its shuffled sections."""
    rooms = []
    for n in range(draw(st.integers(1, 3))):
        rows, columns = draw(st.integers(1, 7)), draw(st.integers(1, 9))
        spare = draw(st.integers(0, rows * columns - 1))
        rooms.append(Room(f"R{n}", rows, columns, spare))
    usable = sum(r.usable_seats for r in rooms)
    candidates = draw(st.integers(1, usable))
    forms = ("A", "B", "C", "D", "E")[: draw(st.sampled_from([0, 2, 3, 4, 5]))]
    shuffled = tuple(draw(st.lists(st.integers(2, 6), max_size=3)))
    return rooms, candidates, forms, shuffled


@settings(max_examples=80, deadline=None)
@given(venues(), st.binary(min_size=16, max_size=32))
def test_art20_property_no_neighbours_share_a_form_or_an_order(case, seed: bytes) -> None:
    """For any rooms, roster and seed, the venue's plan gives neighbours (side, front/back and
    diagonal) different layouts; two on the same form always differ in the order of a shuffled
    section unless the plan names the pair, which it does only where the paper's shuffled
    sections cannot tell four order classes apart."""
    rooms, count, forms, shuffled = case
    plan = compute_seat_plan(seed, [f"T{i:04d}" for i in range(count)], rooms)
    seats = [(a.ticket, a.room_id, a.row_no, a.column_no) for a in plan]
    layouts = layouts_for(seats, forms)
    named = "\n".join(conflicts_of(seats, layouts, shuffled))
    radices = class_radices(shuffled)
    product = 1
    for radix in radices:
        product *= radix
    by_seat = {(room, row, column): ticket for ticket, room, row, column in seats}
    for (room, row, column), ticket in by_seat.items():
        for dr, dc in ((0, 1), (1, -1), (1, 0), (1, 1)):
            other = by_seat.get((room, row + dr, column + dc))
            if other is None:
                continue
            (form_a, class_a), (form_b, class_b) = (
                parse_layout(layouts[ticket]),
                parse_layout(layouts[other]),
            )
            assert layouts[ticket] != layouts[other]
            assert class_a is not None and class_b is not None and class_a != class_b
            if form_a != form_b:
                continue
            assert (dr, dc) in ((1, 1), (1, -1)) or len(forms) < 2  # only diagonals share a form
            pair = f"{ticket} ({room} row {row} column {column}) and {other} ("
            if class_digits(class_a, radices) == class_digits(class_b, radices):
                assert pair in named and product < 4
            else:
                assert pair not in named


def test_art21_1_a_plan_drawn_with_a_replaced_package_must_be_redrawn(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """When another package (a newer manifest version) is in force, --verify says the plan was
    drawn with the old one and to redraw; the redraw takes the new package's seed."""
    d = _venue(tmp_path, capsys)
    assert cbt(["venue", "seats", d, "--session", SESSION, *ROOMS]) == 0
    conn = sqlite3.connect(Path(d) / "venue.db")
    [(old_id, manifest)] = conn.execute("SELECT package_id, manifest FROM packages").fetchall()
    raw = json.loads(manifest)
    raw["seating"]["seed"] = "ef" * 32  # what a re-pack signs: a new seed
    new_id = "f" * 64
    conn.execute(
        "INSERT INTO packages SELECT ?, session_id, venue_id, kind, manifest_version + 1, ?,"
        " directory, fragment_count, size_bytes, imported_at, imported_by FROM packages"
        " WHERE package_id = ?",
        (new_id, json.dumps(raw), old_id),
    )
    conn.execute("UPDATE sessions SET package_id = ?", (new_id,))
    conn.commit()
    conn.close()
    assert cbt(["venue", "seats", d, "--session", SESSION, "--verify"]) == 1
    assert "is in force now: draw it again with --redraw" in capsys.readouterr().err
    redraw = ["--redraw", "--reason", "manifest version 2 arrived"]
    assert cbt(["venue", "seats", d, "--session", SESSION, *redraw]) == 0
    assert f"seed {'ef' * 32} (the centre's" in capsys.readouterr().out
