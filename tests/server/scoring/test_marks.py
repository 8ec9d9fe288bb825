"""Essay export (anonymised) and marks import (validated by row and column) at the centre."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from paperpack.authority import Authority
from server.central.storage import CentralStorage
from server.scoring.marks import (
    MarksInvalid,
    essay_rows,
    export_essays_csv,
    load_marks,
    parse_marks,
    results_secret,
    save_marks,
)
from server.scoring.pipeline import score_session
from tests.server.scoring.conftest import AFTER_END, SESSION_ID, PackedSession


def _table(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))


def _csv(rows: list[dict[str, str]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(
        buffer, fieldnames=["marking_id", "item_id", "max_points", "answer", "mark"]
    )
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8-sig")


async def _export(
    storage: CentralStorage, authority: Authority, folder: Path
) -> tuple[bytes, list, dict]:  # type: ignore[type-arg]
    scored = await score_session(storage, authority, SESSION_ID, AFTER_END, folder)
    rows, owners = essay_rows(scored.scores, scored.paper, results_secret(folder), SESSION_ID)
    return export_essays_csv(rows), rows, owners


async def test_essay_export_holds_no_names_or_tickets(
    central_store: CentralStorage,
    authority: Authority,
    packed_session: PackedSession,
    tmp_path: Path,
) -> None:
    """The markers' file carries marking ids and answers, never a name, ID number or ticket."""
    data, rows, owners = await _export(central_store, authority, tmp_path)
    text = data.decode("utf-8-sig")
    for ticket, (name, id_number) in packed_session.people.items():
        assert name not in text and id_number not in text
        assert f",{ticket}," not in text and not text.startswith(ticket)
    table = _table(data)
    assert len(table) == len(rows) == 117 * 10  # present, not held: ten essays each
    assert set(table[0]) == {"marking_id", "item_id", "max_points", "answer", "mark"}
    assert len(owners) == 117 and all(len(m) == 16 for m in owners)


async def test_marks_flow_into_totals_and_pass_fail(
    central_store: CentralStorage, authority: Authority, tmp_path: Path
) -> None:
    """Once every essay has a valid mark, candidates are final with pass/fail on the pass mark."""
    data, rows, owners = await _export(central_store, authority, tmp_path)
    table = _table(data)
    for row in table:
        row["mark"] = "6.5"
    marks = parse_marks(_csv(table), rows, owners)
    save_marks(tmp_path, marks)
    assert load_marks(tmp_path) == marks
    scored = await score_session(central_store, authority, SESSION_ID, AFTER_END, tmp_path)
    final = [r for r in scored.results if r.status == "scored"]
    assert len(final) == 116
    pass_mark = scored.paper.pass_mark
    assert pass_mark is not None
    for r in final:
        assert r.subjective == 65.0
        assert r.total == pytest.approx(r.objective + 65.0)
        assert r.passed == (r.total is not None and r.total >= pass_mark)
    assert {r.passed for r in final} == {True, False}


async def test_bad_marks_are_reported_by_row_and_column(
    central_store: CentralStorage, authority: Authority, tmp_path: Path
) -> None:
    """Unknown ids, marks above the maximum, negative, non-numeric and missing marks are named."""
    data, rows, owners = await _export(central_store, authority, tmp_path)
    table = _table(data)
    for row in table:
        row["mark"] = "5"
    table[0]["mark"] = "10.5"  # above the maximum of 10
    table[1]["mark"] = "-1"
    table[2]["mark"] = "abc"
    table[3]["mark"] = ""
    table[4]["marking_id"] = "0000000000000000"
    table[5]["item_id"] = "q0001"
    del table[6]  # no row at all for this answer
    with pytest.raises(MarksInvalid) as caught:
        parse_marks(_csv(table), rows, owners)
    problems = caught.value.problems
    assert "row 2, column mark: 10.5 is above the maximum 10" in problems
    assert "row 3, column mark: -1 is negative" in problems
    assert "row 4, column mark: 'abc' is not a number" in problems
    assert "row 5, column mark: missing mark" in problems
    assert "row 6, column marking_id: unknown marking id '0000000000000000'" in problems
    assert "row 7, column item_id: 'q0001' is not an essay to mark" in problems
    missing = [p for p in problems if p.startswith("no row for marking id")]
    assert len(missing) == 3  # the deleted row and the two rows whose ids were spoiled
    assert len(problems) == 9


def test_marks_file_without_its_columns_is_refused() -> None:
    """A file lacking the mark column is refused before any row is read."""
    with pytest.raises(MarksInvalid, match="missing column"):
        parse_marks(b"marking_id,item_id\n", [], {})
