"""Package import and the unlock ceremony through the staff API (art. 23-24)."""

from __future__ import annotations

import io
import shutil
import tarfile
from datetime import timedelta
from pathlib import Path
from typing import Any

from paperpack import sharecards
from paperpack.shamir import Share
from server.audit import verify_audit
from server.store import transaction
from server.venue.workspace import open_venue_db
from tests.server.conftest import BEFORE_WINDOW, SESSION_ID, START, VenueKit, pack_another


async def open_ceremony(kit: VenueKit) -> Any:
    return await kit.client.post(
        "/api/v1/staff/ceremony",
        json={"session_id": SESSION_ID},
        headers=await kit.as_staff("admin"),
    )


async def enter(kit: VenueKit, login: str, card: str) -> Any:
    return await kit.client.post(
        "/api/v1/staff/ceremony/shares", json={"share": card}, headers=await kit.as_staff(login)
    )


async def release(kit: VenueKit) -> Any:
    return await kit.client.post(
        "/api/v1/staff/ceremony/release",
        json={"code": kit.template.release_code},
        headers=await kit.as_staff("admin"),
    )


def wrong_card(card: str) -> str:
    """The same holder's card with one share byte changed (the checksums made valid again)."""
    parsed = sharecards.parse_card(card)
    data = bytes([parsed.data[0] ^ 1]) + parsed.data[1:]
    return sharecards.card_code(parsed.set_id, Share(parsed.x, data))


async def test_outside_the_window_the_ceremony_is_refused(venue_kit: VenueKit) -> None:
    """Before the unlock window opens, the ceremony cannot even start."""
    kit = venue_kit
    await kit.import_package()
    kit.clock.set(BEFORE_WINDOW)
    resp = await open_ceremony(kit)
    assert resp.status == 409
    assert (await resp.json())["type"].endswith("/outside-window")


async def test_a_wrong_share_is_named_by_its_holder(venue_kit: VenueKit) -> None:
    """A share that does not match its commitment is refused on entry, naming holder 2."""
    kit = venue_kit
    await kit.import_package()
    assert (await open_ceremony(kit)).status == 201
    resp = await enter(kit, "inv1", wrong_card(kit.template.cards[2]))
    assert resp.status == 422
    body = await resp.json()
    assert body["holder"] == 2
    assert "2" in body["detail"]
    progress = await (
        await kit.client.get("/api/v1/staff/ceremony", headers=await kit.as_staff("admin"))
    ).json()
    assert progress["shares_entered"] == 0


async def test_k_minus_one_shares_do_not_unlock(venue_kit: VenueKit) -> None:
    """One share of two plus the release leaves the paper locked."""
    kit = venue_kit
    await kit.import_package()
    await open_ceremony(kit)
    assert (await enter(kit, "chief", kit.template.cards[1])).status == 200
    resp = await release(kit)
    body = await resp.json()
    assert (body["status"], body["progress"]) == ("open", "1 of 2")
    c = await kit.login_candidate(1)
    kit.clock.set(kit.clock.now() + timedelta(hours=1))
    paper = await kit.client.get("/api/v1/attempt/paper", headers=c.auth)
    assert paper.status == 409


async def test_the_same_person_cannot_enter_two_shares(venue_kit: VenueKit) -> None:
    """A second card entered under the same login is refused: k distinct people (art. 23(4))."""
    kit = venue_kit
    await kit.import_package()
    await open_ceremony(kit)
    assert (await enter(kit, "chief", kit.template.cards[1])).status == 200
    resp = await enter(kit, "chief", kit.template.cards[2])
    assert resp.status == 409
    assert (await resp.json())["type"].endswith("/same-person")


async def test_the_same_card_twice_is_refused(venue_kit: VenueKit) -> None:
    """Holder 1's card entered by a second person counts once and is refused."""
    kit = venue_kit
    await kit.import_package()
    await open_ceremony(kit)
    assert (await enter(kit, "chief", kit.template.cards[1])).status == 200
    resp = await enter(kit, "inv1", kit.template.cards[1])
    assert resp.status == 422
    assert (await resp.json())["holder"] == 1


async def test_timeout_and_reset_forget_entered_shares(venue_kit: VenueKit) -> None:
    """After the timeout the ceremony is gone; a new one starts from zero and can be reset."""
    kit = venue_kit
    await kit.import_package()
    await open_ceremony(kit)
    assert (await enter(kit, "chief", kit.template.cards[1])).status == 200
    kit.clock.advance(minutes=15)
    resp = await enter(kit, "inv1", kit.template.cards[2])
    assert resp.status == 409
    assert (await resp.json())["type"].endswith("/ceremony-expired")
    assert (await open_ceremony(kit)).status == 201
    assert (await enter(kit, "chief", kit.template.cards[1])).status == 200
    reset = await kit.client.post(
        "/api/v1/staff/ceremony/reset", json={}, headers=await kit.as_staff("chief")
    )
    assert reset.status == 200
    assert (await open_ceremony(kit)).status == 201
    body = await (await enter(kit, "inv2", kit.template.cards[3])).json()
    assert body["progress"] == "1 of 2"


async def test_every_step_is_audited_and_the_paper_never_touches_disk(
    venue_kit: VenueKit,
) -> None:
    """Import, opening, each share, the release and the unlock are audit events in a verifying
    chain; no file in the venue directory holds the decrypted paper's text."""
    kit = venue_kit
    await kit.unlock()
    c = await kit.login_candidate(1)
    kit.clock.advance(hours=1)
    paper = await (await kit.client.get("/api/v1/attempt/paper", headers=c.auth)).json()
    stems = [i["stem"] for s in paper["sections"] for i in s["items"]]
    db = open_venue_db(kit.directory)
    with transaction(db):
        actions = [r[0] for r in db.execute("SELECT action FROM audit_events ORDER BY event_id")]
        verify_audit(db)
    db.close()
    expected = [
        "package.import_staged",
        "package.imported",
        "ceremony.opened",
        "ceremony.share_entered",
        "ceremony.share_entered",
        "ceremony.release_entered",
        "ceremony.unlocked",
    ]
    assert [a for a in actions if a.startswith(("package.", "ceremony."))] == expected
    for path in kit.directory.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert not any(stem.encode() in data for stem in stems[:5]), path


async def test_a_tampered_package_is_refused_at_import(venue_kit: VenueKit, tmp_path: Path) -> None:
    """A flipped byte in one fragment makes the import fail; nothing is recorded."""
    kit = venue_kit
    bad = tmp_path / "bad"
    shutil.copytree(kit.template.package_dir, bad)
    fragment = sorted(bad.glob("fragment-*"))[0]
    data = bytearray(fragment.read_bytes())
    data[-1] ^= 0xFF
    fragment.write_bytes(bytes(data))
    resp = await kit.client.post(
        "/api/v1/staff/packages", json={"path": str(bad)}, headers=await kit.as_staff("admin")
    )
    assert resp.status == 422
    assert "fragment" in (await resp.json())["detail"]
    listed = await kit.client.get("/api/v1/staff/packages", headers=await kit.as_staff("admin"))
    assert await listed.json() == []


async def test_a_package_uploaded_as_tar_imports(venue_kit: VenueKit) -> None:
    """The administrator can upload the package directory as a tar archive."""
    kit = venue_kit
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        archive.add(kit.template.package_dir, arcname="package")
    resp = await kit.client.post(
        "/api/v1/staff/packages",
        data=buffer.getvalue(),
        headers={**await kit.as_staff("admin"), "Content-Type": "application/x-tar"},
    )
    assert resp.status == 201, await resp.text()
    assert (await resp.json())["session_id"] == SESSION_ID


async def test_art_21_3_dry_run_with_a_practice_package(
    venue_kit: VenueKit, tmp_path: Path
) -> None:
    """A package the centre signed as practice goes through the same ceremony, flagged as a
    dry run; the importer cannot call a real package practice (art. 21(3))."""
    kit = venue_kit
    resp = await kit.client.post(
        "/api/v1/staff/packages",
        json={"path": str(kit.template.package_dir), "practice": True},
        headers=await kit.as_staff("admin"),
    )
    assert resp.status == 422
    assert (await resp.json())["type"].endswith("/practice-not-a-choice")
    package, cards, code = pack_another(kit.template, tmp_path, "P1", practice=True)
    body = await kit.import_package(package)
    assert (body["practice"], body["session_id"]) == (True, "P1")
    resp = await kit.client.post(
        "/api/v1/staff/ceremony", json={"session_id": "P1"}, headers=await kit.as_staff("admin")
    )
    opened = await resp.json()
    assert opened["dry_run"] is True
    await enter(kit, "chief", cards[1])
    await enter(kit, "inv1", cards[3])
    resp = await kit.client.post(
        "/api/v1/staff/ceremony/release", json={"code": code}, headers=await kit.as_staff("admin")
    )
    body = await resp.json()
    assert (body["status"], body["dry_run"]) == ("unlocked", True)


async def test_a_release_after_the_window_closed_is_refused(venue_kit: VenueKit) -> None:
    """A ceremony opened at 09:20 cannot take the release at 09:30, when the window closes."""
    kit = venue_kit
    await kit.import_package()
    kit.clock.set(START + timedelta(minutes=20))  # 09:20
    assert (await open_ceremony(kit)).status == 201
    assert (await enter(kit, "chief", kit.template.cards[1])).status == 200
    assert (await enter(kit, "inv1", kit.template.cards[2])).status == 200
    kit.clock.advance(minutes=10)  # 09:30: the window's end
    resp = await release(kit)
    assert resp.status == 409
    assert "window closed" in (await resp.json())["detail"]


async def test_a_package_uploaded_as_zip_imports(venue_kit: VenueKit, tmp_path: Path) -> None:
    """A zip of the package directory imports like the directory itself."""
    kit = venue_kit
    archive = shutil.make_archive(str(tmp_path / "package"), "zip", kit.template.package_dir)
    resp = await kit.client.post(
        "/api/v1/staff/packages",
        data=Path(archive).read_bytes(),
        headers={**await kit.as_staff("admin"), "Content-Type": "application/zip"},
    )
    assert resp.status == 201, await resp.text()


async def test_the_ceremony_shows_the_set_code_and_each_step(venue_kit: VenueKit) -> None:
    """The progress names the set code printed on every card, who opened, which holders are
    in, and what comes next: shares, then the release (only once the shares are complete)."""
    kit = venue_kit
    await kit.import_package()
    opened = await (await open_ceremony(kit)).json()
    assert opened["set_code"] == sharecards.parse_card(kit.template.cards[1]).set_id
    assert f"Set:         {opened['set_code']}" in kit.template.cards[1]
    assert (opened["opened_by"], opened["next_step"], opened["holders"]) == ("admin", "shares", [])
    assert opened["shares_complete"] is False
    first = await (await enter(kit, "chief", kit.template.cards[1])).json()
    assert first["holders"] == [{"holder_no": 1, "login": "chief"}]
    assert first["next_step"] == "shares"
    second = await (await enter(kit, "inv1", kit.template.cards[3])).json()
    assert second["shares_complete"] is True and second["next_step"] == "release"
    assert [h["holder_no"] for h in second["holders"]] == [1, 3]
    assert second["release_roles"] == ["system_administrator", "chief_examiner"]
    assert (await (await release(kit)).json())["status"] == "unlocked"


async def test_refused_shares_say_why_in_parameters(venue_kit: VenueKit) -> None:
    """A mistyped group, a card of another set and a wrong share carry a reason (and the
    group, or both set codes) for the pages to say it in their language."""
    kit = venue_kit
    await kit.import_package()
    set_code = (await (await open_ceremony(kit)).json())["set_code"]
    card = kit.template.cards[2]
    parsed = sharecards.parse_card(card)
    groups = sharecards.card_code(parsed.set_id, parsed.share).split("-")
    flipped = "B" if groups[1][0] == "A" else "A"
    mistyped = "-".join([groups[0], flipped + groups[1][1:], *groups[2:]])
    body = await (await enter(kit, "inv1", mistyped)).json()
    assert (body["reason"], body["group"], body["groups"]) == ("mistyped-group", 2, len(groups))
    other = "ABCDEFGH" if set_code != "ABCDEFGH" else "ABCDEFGJ"
    body = await (await enter(kit, "inv1", sharecards.card_code(other, parsed.share))).json()
    assert body["type"].endswith("/share-rejected")
    assert (body["reason"], body["card_set"], body["set_code"]) == ("another-set", other, set_code)
    body = await (await enter(kit, "inv1", wrong_card(card))).json()
    assert (body["reason"], body["holder"]) == ("mismatch", 2)
