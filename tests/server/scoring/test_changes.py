"""The change rules for results (art. 41-42): maker-checker, name/ID, evidence, audit trace."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from paperpack.authority import Authority
from server.audit import verify_audit_file
from server.central.storage import CentralStorage
from server.errors import CbtError
from server.scoring.changes import (
    APPROVED,
    AuditChainBroken,
    ChangeRefused,
    ChangeRequest,
    NameAndIdTogether,
    SelfApprovalRefused,
    UnknownChange,
    decide_change,
    load_changes,
    propose_change,
)
from server.scoring.pipeline import score_session
from tests.server.scoring.conftest import AFTER_END, SESSION_ID, PackedSession

POINTS = {"q0001": 1.0, "q0100": 10.0}


async def propose(
    storage: CentralStorage, folder: Path, request: ChangeRequest, operator: str = "alice"
) -> str:
    change = await propose_change(
        storage, SESSION_ID, request, operator, AFTER_END, item_points=POINTS, results_dir=folder
    )
    return change.change_id


async def test_operator_cannot_approve_own_change(
    central_store: CentralStorage, tmp_path: Path
) -> None:
    """The proposer of a change is refused as its approver; another operator may approve."""
    request = ChangeRequest("10005", "cancel", "copying seen on video", evidence="video R1-09:40")
    change_id = await propose(central_store, tmp_path, request)
    with pytest.raises(SelfApprovalRefused, match="cannot also decide it"):
        await decide_change(central_store, SESSION_ID, change_id, "alice", AFTER_END)
    approved = await decide_change(central_store, SESSION_ID, change_id, "bob", AFTER_END)
    assert approved.status == APPROVED and approved.decided_by == "bob"
    with pytest.raises(ChangeRefused, match="already approved"):
        await decide_change(central_store, SESSION_ID, change_id, "carol", AFTER_END)


async def test_name_and_id_number_together_are_refused(
    central_store: CentralStorage, tmp_path: Path
) -> None:
    """One request changing both name and ID number is refused, and so is the second half later."""
    both = ChangeRequest(
        "10005", "personal", "typo", personal={"name": "张三", "id_number": "110101199001019999"}
    )
    with pytest.raises(NameAndIdTogether, match="never change together"):
        await propose(central_store, tmp_path, both)
    await propose(central_store, tmp_path, ChangeRequest("10005", "personal", "typo",
                                                         personal={"name": "张三"}))  # fmt: skip
    later = ChangeRequest("10005", "personal", "typo", personal={"id_number": "110101199001019999"})
    with pytest.raises(NameAndIdTogether, match="never both change"):
        await propose(central_store, tmp_path, later)
    changes = await load_changes(central_store, SESSION_ID)
    assert [c.kind for c in changes if c.kind == "personal"] == ["personal"]


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (ChangeRequest("10005", "cancel", "copying"), "evidence reference"),
        (ChangeRequest("10005", "restore", "appeal upheld"), "evidence reference"),
        (ChangeRequest("10005", "correct", "", item_id="q0001", points=1.0), "stated reason"),
        (
            ChangeRequest("10005", "correct", "key error", item_id="q0001", points=2.0),
            "from 0 to 1",
        ),
        (ChangeRequest("10005", "correct", "key error", item_id="nope", points=0.0), "not in"),
        (ChangeRequest("10005", "raise", "because"), "not allowed"),
    ],
)
async def test_changes_without_their_grounds_are_refused(
    central_store: CentralStorage, tmp_path: Path, request_: ChangeRequest, message: str
) -> None:
    """Cancel/restore need evidence, corrections a cause and valid points; other kinds fail."""
    with pytest.raises(ChangeRefused, match=message):
        await propose(central_store, tmp_path, request_)


async def test_unknown_change_cannot_be_approved(central_store: CentralStorage) -> None:
    """Approving a change id that was never proposed is refused by name."""
    with pytest.raises(UnknownChange, match="no change C0042"):
        await decide_change(central_store, SESSION_ID, "C0042", "bob", AFTER_END)


async def test_approved_changes_flow_into_results(
    central_store: CentralStorage,
    authority: Authority,
    packed_session: PackedSession,
    tmp_path: Path,
) -> None:
    """Approved cancel, restore, correction and name change apply; a pending one does not."""
    plants = packed_session.plants
    ids = [
        await propose(central_store, tmp_path, ChangeRequest(
            "10005", "cancel", "copying", evidence="video R1")),
        await propose(central_store, tmp_path, ChangeRequest(
            plants.cancelled_ticket, "restore", "appeal upheld", evidence="appeal 12")),
        await propose(central_store, tmp_path, ChangeRequest(
            "10006", "correct", "marking error", item_id="q0100", points=7.5)),
        await propose(central_store, tmp_path, ChangeRequest(
            "10007", "personal", "spelling", personal={"name": "李四"})),
    ]  # fmt: skip
    pending = await propose(central_store, tmp_path, ChangeRequest("10008", "cancel", "x", "y"))
    for change_id in ids:
        await decide_change(central_store, SESSION_ID, change_id, "bob", AFTER_END)
    scored = await score_session(central_store, authority, SESSION_ID, AFTER_END, tmp_path)
    by_ticket = {r.score.ticket: r for r in scored.results}
    assert by_ticket["10005"].status == "cancelled" and by_ticket["10005"].total == 0
    assert by_ticket[plants.cancelled_ticket].status == "pending"
    assert by_ticket[plants.cancelled_ticket].total is not None
    assert by_ticket[plants.cancelled_ticket].total > 0
    assert by_ticket["10006"].subjective == 7.5
    assert by_ticket["10007"].score.name == "李四"
    assert by_ticket["10008"].status == "pending", pending


async def test_audit_chain_verifies_after_changes_and_detects_an_edit(
    central_store: CentralStorage, tmp_path: Path
) -> None:
    """Every change is in the hash-chained log; editing one event breaks verification."""
    request = ChangeRequest("10005", "cancel", "copying", evidence="video R1")
    change_id = await propose(central_store, tmp_path, request)
    await decide_change(central_store, SESSION_ID, change_id, "bob", AFTER_END)
    events = await central_store.audit_events()
    actions = [e["action"] for e in events]
    assert actions[-2:] == ["results.change.proposed", "results.change.approved"]
    database = tmp_path / "central.db"
    assert verify_audit_file(database) == len(events)
    with sqlite3.connect(database) as db:
        db.execute(
            "UPDATE audit_events SET details = replace(details, 'video R1', 'video R2')"
            " WHERE action = 'results.change.proposed'"
        )
    with pytest.raises(CbtError, match="edited"):
        verify_audit_file(database)
    with pytest.raises(AuditChainBroken, match="edited"):
        await load_changes(central_store, SESSION_ID)
