"""Receiving the package (art. 23(4), 24) and the dry run (art. 21(3)), through the real API.

Each package here is packed by paperpack's own packer with the template's authority for the
template's venue (`pack_another`), and imported, confirmed and unlocked over HTTP.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from paperpack.model import Asset
from paperpack.synthetic import synthetic_paper
from server.store import transaction
from server.venue import roster
from server.venue.export import ExportError, collect_session, sessions_to_export
from server.venue.workspace import open_venue_db
from tests.server.conftest import SESSION_ID, START, VenueKit, id_number, pack_another


def template_paper(duration: int = 120) -> Any:
    """The paper of the template's session S1 (same id, subject and content)."""
    paper = synthetic_paper(24, seed=7)
    return dataclasses.replace(
        paper, subject_code="ECON", subject_name="Economics", duration_minutes=duration
    )


def import_roster(kit: VenueKit, session_id: str, subject: str, tickets: list[str]) -> None:
    """A roster for `session_id` through the roster import's own code (as the CLI does)."""
    rows = [
        roster.Candidate(ticket=t, name=f"Cand {t}", id_number=id_number(90 + n), subject=subject)
        for n, t in enumerate(tickets)
    ]
    db = open_venue_db(kit.directory)
    try:
        with transaction(db):
            roster.store_roster(
                db, session_id, rows, actor="cli:test", now=START - timedelta(days=1),
                subject=subject,
            )  # fmt: skip
    finally:
        db.close()


async def stage(kit: VenueKit, package: Path) -> Any:
    resp = await kit.client.post(
        "/api/v1/staff/packages", json={"path": str(package)}, headers=await kit.as_staff("admin")
    )
    return resp.status, await resp.json()


async def confirm(kit: VenueKit, package_id: str, login: str) -> Any:
    resp = await kit.client.post(
        f"/api/v1/staff/packages/{package_id}/confirm", headers=await kit.as_staff(login)
    )
    return resp.status, await resp.json()


async def ceremony(
    kit: VenueKit, session_id: str, cards: dict[int, str], code: str
) -> tuple[int, Any]:
    """Open, two shares, the release; the last answer's status and body."""
    resp = await kit.client.post(
        "/api/v1/staff/ceremony", json={"session_id": session_id},
        headers=await kit.as_staff("admin"),
    )  # fmt: skip
    if resp.status != 201:
        return resp.status, await resp.json()
    for login, holder in (("chief", 1), ("inv1", 2)):
        resp = await kit.client.post(
            "/api/v1/staff/ceremony/shares", json={"share": cards[holder]},
            headers=await kit.as_staff(login),
        )  # fmt: skip
        assert resp.status == 200, await resp.text()
    resp = await kit.client.post(
        "/api/v1/staff/ceremony/release", json={"code": code}, headers=await kit.as_staff("admin")
    )
    return resp.status, await resp.json()


# --- art. 23(4): two people ----------------------------------------------------------------


async def test_art_23_4_an_import_is_in_force_only_once_a_second_login_confirms(
    venue_kit: VenueKit,
) -> None:
    kit = venue_kit
    status, staged = await stage(kit, kit.template.package_dir)
    assert (status, staged["status"], staged["imported_by"]) == (201, "pending", "admin")
    assert len(staged["manifest_sha256"]) == 64
    resp = await kit.client.post(
        "/api/v1/staff/ceremony", json={"session_id": SESSION_ID},
        headers=await kit.as_staff("admin"),
    )  # fmt: skip
    assert resp.status == 409 and "second staff member confirm" in (await resp.json())["detail"]
    status, body = await confirm(kit, staged["package_id"], "admin")
    assert (status, body["type"].split("/")[-1]) == (409, "second-person-needed")
    status, body = await confirm(kit, staged["package_id"], "inv2")
    assert status == 200, body
    assert (body["status"], body["imported_by"], body["confirmed_by"]) == (
        "in_force", "admin", "inv2"
    )  # fmt: skip
    assert body["manifest_sha256"] == staged["manifest_sha256"]
    listed = await (
        await kit.client.get("/api/v1/staff/packages", headers=await kit.as_staff("chief"))
    ).json()
    assert [(p["status"], p["confirmed_by"]) for p in listed] == [("in_force", "inv2")]


# --- art. 24: the right package ------------------------------------------------------------


async def test_art_24_an_econ_package_over_a_law_roster_is_refused(
    venue_kit: VenueKit, tmp_path: Path
) -> None:
    """The roster of session L1 was imported for LAW; an ECON package naming L1 is refused,
    naming both subjects, and the session keeps its subject."""
    kit = venue_kit
    import_roster(kit, "L1", "LAW", ["L0001", "L0002"])
    package, _, _ = pack_another(kit.template, tmp_path, "L1")
    status, body = await stage(kit, package)
    assert status == 422, body
    assert "subject ECON" in body["detail"] and "for subject LAW" in body["detail"]
    db = open_venue_db(kit.directory)
    assert db.execute("SELECT subject FROM sessions WHERE session_id = 'L1'").fetchone()[0] == "LAW"
    assert db.execute("SELECT COUNT(*) FROM package_imports").fetchone()[0] == 0
    db.close()


async def test_art_24_a_new_version_replaces_the_old_only_before_the_unlock(
    venue_kit: VenueKit, tmp_path: Path
) -> None:
    kit = venue_kit
    await kit.import_package()
    v2, cards, code = pack_another(
        kit.template, tmp_path / "v2", SESSION_ID, paper=template_paper(), manifest_version=2
    )
    other, _, _ = pack_another(kit.template, tmp_path / "o", SESSION_ID, manifest_version=3)
    status, body = await stage(kit, other)  # another paper under the same session
    assert status == 422 and "carries paper SYN-8-11" in body["detail"], body
    assert "carries paper SYN-24-7" in body["detail"]
    status, staged = await stage(kit, v2)
    assert status == 201
    status, _ = await confirm(kit, staged["package_id"], "chief")
    dashboard = await (
        await kit.client.get("/api/v1/staff/dashboard", headers=await kit.as_staff("chief"))
    ).json()
    in_force = [p for p in dashboard["packages"] if p["in_force"]]
    assert [p["manifest_version"] for p in in_force] == [2]
    status, body = await ceremony(kit, SESSION_ID, cards, code)
    assert (status, body["status"]) == (200, "unlocked"), body
    v3, _, _ = pack_another(
        kit.template, tmp_path / "v3", SESSION_ID, paper=template_paper(), manifest_version=3
    )
    status, body = await stage(kit, v3)
    assert status == 422 and "only before the unlock" in body["detail"], body


async def test_art_24_a_broken_asset_stops_the_unlock_naming_the_item(
    venue_kit: VenueKit, tmp_path: Path
) -> None:
    """An item whose picture is not a picture: the opening stops before any candidate is
    served, naming the item; the session stays locked."""
    kit = venue_kit
    paper = template_paper(duration=60)
    first = paper.sections[1].items[0]
    broken = dataclasses.replace(first, stem=first.stem + '<p><img src="asset:chart.png"></p>')
    sections = list(paper.sections)
    sections[1] = dataclasses.replace(sections[1], items=(broken, *sections[1].items[1:]))
    paper = dataclasses.replace(
        paper,
        paper_id="BROKEN-1",
        sections=tuple(sections),
        assets=(Asset("chart.png", "image/png", b"this is not a PNG file at all"),),
    )
    package, cards, code = pack_another(kit.template, tmp_path, "B1", paper=paper)
    await kit.import_package(package)
    status, body = await ceremony(kit, "B1", cards, code)
    assert status == 409, body
    assert body["type"].endswith("/display-check-failed")
    assert body["item"] == broken.item_id and broken.item_id in body["detail"]
    assert "chart.png" in body["detail"]
    state = await (
        await kit.client.get("/api/v1/staff/ceremony", headers=await kit.as_staff("admin"))
    ).json()
    assert state["status"] == "none"
    db = open_venue_db(kit.directory)
    assert db.execute("SELECT unlocked_at FROM sessions WHERE session_id = 'B1'").fetchone() == (
        None,
    )
    assert db.execute(
        "SELECT COUNT(*) FROM audit_events WHERE action = 'ceremony.stopped'"
    ).fetchone() == (1,)
    db.close()


# --- art. 21(3): the dry run and the inspection --------------------------------------------

PRACTICE_START = START - timedelta(hours=3)
CHECKLIST = ["Every room PC shows the login page", "The backup disk is mounted"]


async def dry_run(kit: VenueKit, tmp_path: Path) -> None:
    """A practice package P1 (signed as practice), two candidates, one submits."""
    practice_paper = dataclasses.replace(template_paper(duration=30), paper_id="PRACTICE-1")
    package, cards, code = pack_another(
        kit.template, tmp_path / "p1", "P1", paper=practice_paper, practice=True,
        start=PRACTICE_START,
    )  # fmt: skip
    import_roster(kit, "P1", "ECON", ["P0001", "P0002"])
    body = await kit.import_package(package)
    assert body["practice"] is True
    kit.clock.set(PRACTICE_START - timedelta(minutes=30))
    status, body = await ceremony(kit, "P1", cards, code)
    assert (status, body["status"], body["dry_run"]) == (200, "unlocked", True), body
    resp = await kit.client.post(
        "/api/v1/candidate/login", json={"ticket": "P0001", "id_number": id_number(90)}
    )
    assert resp.status == 200, await resp.text()
    auth = {"Authorization": f"Bearer {(await resp.json())['token']}"}
    kit.clock.set(PRACTICE_START + timedelta(minutes=20))
    paper = await (await kit.client.get("/api/v1/attempt/paper", headers=auth)).json()
    item = next(i for s in paper["sections"] for i in s["items"] if i["type"] == "single_choice")
    resp = await kit.client.put(
        "/api/v1/attempt/responses",
        json={"seq": 1, "responses": {item["id"]: [item["options"][0]["id"]]}},
        headers=auth,
    )
    assert resp.status == 200, await resp.text()
    resp = await kit.client.post("/api/v1/attempt/submit", headers=auth)
    assert resp.status == 200, await resp.text()


async def test_art_21_3_a_practice_packages_answers_are_never_in_an_export(
    venue_kit: VenueKit, tmp_path: Path
) -> None:
    """The dry run's attempts sit in their own session, which export refuses and the outbox
    worker never picks, even once ended; the real session's export holds none of them."""
    kit = venue_kit
    await kit.import_package()
    await dry_run(kit, tmp_path)
    db = open_venue_db(kit.directory)
    try:
        with transaction(db):
            db.execute("UPDATE sessions SET status = 'ended', ended_at = ? WHERE session_id = 'P1'",
                       [START.isoformat()])  # fmt: skip
        with pytest.raises(ExportError, match="dry run"):
            collect_session(db, "P1")
        real = collect_session(db, SESSION_ID)
    finally:
        db.close()
    assert "P1" not in sessions_to_export(kit.directory)
    assert not [a for a in real["attempts"] if a["ticket"].startswith("P")]


async def test_art_21_3_the_inspection_sign_off_needs_two_logins(
    venue_kit: VenueKit, tmp_path: Path
) -> None:
    """With the centre's rule inspection_required, the unlock is refused until two different
    logins signed the checklist off and a dry run passed."""
    kit = venue_kit
    package, cards, code = pack_another(
        kit.template, tmp_path / "i1", "I1", paper=template_paper(), inspection=CHECKLIST,
        rules={"inspection_required": 1},
    )  # fmt: skip
    await kit.import_package(package)
    status, body = await ceremony(kit, "I1", cards, code)
    assert (status, body["type"].split("/")[-1]) == (409, "inspection-required"), body
    assert "inspection sign-off (0 of 2)" in body["detail"] and "dry run" in body["detail"]

    async def sign(login: str) -> tuple[int, Any]:
        resp = await kit.client.post(
            "/api/v1/staff/inspection", json={"session_id": "I1"},
            headers=await kit.as_staff(login),
        )  # fmt: skip
        return resp.status, await resp.json()

    status, state = await sign("admin")
    assert (status, state["signed_off"], state["checklist"]) == (200, False, CHECKLIST)
    status, body = await sign("admin")
    assert (status, body["type"].split("/")[-1]) == (409, "same-person")
    status, _ = await sign("inv1")
    assert status == 403  # invigilators do not sign the inspection off
    status, state = await sign("chief")
    assert state["signed_off"] is True
    assert [s["login"] for s in state["signed_off_by"]] == ["admin", "chief"]
    status, body = await ceremony(kit, "I1", cards, code)
    assert status == 409 and "sign-off" not in body["detail"] and "dry run" in body["detail"]
    await dry_run(kit, tmp_path)
    kit.clock.set(START - timedelta(minutes=30))
    status, body = await ceremony(kit, "I1", cards, code)
    assert (status, body["status"]) == (200, "unlocked"), body


async def test_art_21_3_without_the_rule_the_ceremony_screen_warns(venue_kit: VenueKit) -> None:
    """The default (no rule): the real ceremony opens, with the missing steps as a warning."""
    kit = venue_kit
    await kit.import_package()
    resp = await kit.client.post(
        "/api/v1/staff/ceremony", json={"session_id": SESSION_ID},
        headers=await kit.as_staff("admin"),
    )  # fmt: skip
    assert resp.status == 201
    warning = (await resp.json())["inspection_warning"]
    assert (warning["signed_off"], warning["dry_run"], warning["required"]) == (False, None, False)
