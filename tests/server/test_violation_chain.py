"""Violations from determination to score (art. 32, 35(2)-(3); issue 14 point 1), through the
real chain with the real producer's output at every step: the venue's API records a violation
(invigilator) and the chief examiner confirms it with a proposed handling; the venue exports;
its uploader sends the package to a real central app; the centre determines (one operator
proposes, a second approves); scoring runs. Nothing here adds a field the venue does not
write."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from aiohttp.test_utils import TestServer

from paperpack.authority import load_authority
from server.central import keys as central_keys
from server.central.app import create_app
from server.central.settings import CentralSettings
from server.central.storage import RETENTION_SERIOUS, VenueRecord, retention_until
from server.clock import SettableClock, iso, parse_time
from server.scoring.changes import ChangeRequest, decide_change, propose_change
from server.scoring.pipeline import results_dir, score_session
from server.scoring.report import build_report, render_report_html
from server.venue.export import export_session
from server.venue.upload import drain_outbox
from server.venue.workspace import load_venue
from tests.server.conftest import START, VenueKit, ticket

SERIOUS_TICKET, DISMISSED_TICKET = ticket(1), ticket(2)


async def _record_and_confirm(kit: VenueKit, who: str, kind: str, handling: str) -> int:
    inv = await kit.as_staff("inv1")
    resp = await kit.client.post(f"/api/v1/staff/candidates/{who}/violations",
                                 json={"kind": kind, "text": "seen by two invigilators"},
                                 headers=inv)  # fmt: skip
    assert resp.status == 201, await resp.text()
    violation_id = int((await resp.json())["violation_id"])
    refused = await kit.client.post(f"/api/v1/staff/violations/{violation_id}/confirm",
                                    json={"handling": handling}, headers=inv)  # fmt: skip
    assert refused.status == 403  # an invigilator records; only the chief examiner confirms
    chief = await kit.as_staff("chief")
    resp = await kit.client.post(f"/api/v1/staff/violations/{violation_id}/confirm",
                                 json={"handling": handling}, headers=chief)  # fmt: skip
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["confirmed_by"] == "chief"
    return violation_id


async def test_a_determined_violation_cancels_and_a_dismissed_one_does_not(
    venue_kit: VenueKit,
) -> None:
    kit = venue_kit
    await kit.unlock()
    for n in (1, 2):
        await kit.login_candidate(n)
    serious = await _record_and_confirm(kit, SERIOUS_TICKET, "communication", "cancel_subject")
    light = await _record_and_confirm(kit, DISMISSED_TICKET, "leaving_seat", "cancel_subject")

    authority_dir = kit.template.authority_dir
    authority = load_authority(authority_dir)
    moment = START + timedelta(days=1)
    await asyncio.to_thread(
        export_session, kit.directory, now=kit.clock.now(), partial_reason="first copy"
    )
    venue = load_venue(kit.directory)
    central_dir = kit.directory.parent / "central"
    central_dir.mkdir()
    settings = CentralSettings(directory=central_dir, database=str(central_dir / "c.db"),
                               log_requests=False)  # fmt: skip
    clock = SettableClock(kit.clock.now())
    app = create_app(settings, clock=clock, authority=authority)
    async with TestServer(app, host="127.0.0.1") as server:
        storage = app[central_keys.STORAGE]
        await storage.add_venue(VenueRecord(venue.venue_id, venue.venue_id, venue.sign_public,
                                            venue.wrap_public, iso(START)))  # fmt: skip
        url = str(server.make_url("")).rstrip("/")
        assert len(await drain_outbox(kit.directory, url, authority.signing_public,
                                      clock=clock)) == 1  # fmt: skip
        [package] = await storage.list_packages()
        session_id = package.session_id
        serious_on_record = package.serious_violation
        folder = results_dir(central_dir, session_id)

        async def statuses() -> dict[str, str]:
            scored = await score_session(storage, authority, session_id, moment, folder)
            return {r.score.ticket: r.status for r in scored.results}

        before = await statuses()
        assert before[SERIOUS_TICKET] != "cancelled"  # the venue's proposal changes nothing
        assert before[DISMISSED_TICKET] != "cancelled"

        points: dict[str, float] = {}
        cancel = ChangeRequest(SERIOUS_TICKET, "cancel", "determined: phone used",
                               evidence=f"violation:{venue.venue_id}/{serious}")  # fmt: skip
        dismiss = ChangeRequest(DISMISSED_TICKET, "dismiss", "left with the invigilator's leave",
                                evidence=f"violation:{venue.venue_id}/{light}")  # fmt: skip
        for request in (cancel, dismiss):
            change = await propose_change(storage, session_id, request, "alice", moment,
                                          item_points=points, results_dir=folder)  # fmt: skip
            await decide_change(storage, session_id, change.change_id, "bob", moment)

        after = await statuses()
        assert after[SERIOUS_TICKET] == "cancelled"
        assert after[DISMISSED_TICKET] == before[DISMISSED_TICKET]
        scored = await score_session(storage, authority, session_id, moment, folder)
        listed = {v["ticket"]: v for v in build_report(scored, moment)["violations"]}
        assert listed[SERIOUS_TICKET]["determination"] == "cancel"
        assert listed[SERIOUS_TICKET]["serious"] is True
        assert listed[SERIOUS_TICKET]["proposed_handling"] == "cancel_subject"
        assert listed[SERIOUS_TICKET]["confirmed_by"] == "chief"
        assert listed[DISMISSED_TICKET]["determination"] == "dismiss"
        page = render_report_html(build_report(scored, moment), "zh-CN", "Asia/Shanghai")
        assert "当次该科目考试成绩无效" in page and "cancel_subject" not in page

    # The violations as the venue exported them: kind, handling, who confirmed; and the
    # serious kind holds the records for five years from publication (art. 23(7)).
    assert serious_on_record is True
    published = parse_time(iso(moment))
    assert retention_until(published, serious_on_record) == (published + RETENTION_SERIOUS)
