"""A receipt the candidate can check (issue 14, point 7): format 2 binds the attempt, so two
candidates with identical answers get different receipts, each verifying against its own
attempt only; a short checked code to write down; and, after publication, the centre's public
page confirming that the answers scored are the ones submitted."""

from __future__ import annotations

import asyncio
import itertools
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from paperpack.canonical import canonical_hash
from paperpack.typable import ALPHABET
from server.central import keys as central_keys
from server.central.app import create_app
from server.central.settings import CentralSettings
from server.central.storage import VenueRecord
from server.clock import SettableClock, iso
from server.protocol.candidate_receipt import (
    ANSWERS_V1,
    ReceiptCodeInvalid,
    candidate_receipt,
    normalise_code,
    short_code,
)
from server.scoring.pipeline import results_dir, score_session
from server.scoring.results import write_results
from server.store import transaction
from server.venue.export import export_session
from server.venue.upload import drain_outbox
from server.venue.workspace import open_venue_db
from tests.server.conftest import START as VENUE_START
from tests.server.conftest import VenueKit
from tests.server.scoring.conftest import START
from tests.server.scoring.real_chain import RealVenue, answer_and_submit, seat_roster

ANSWERS = {"i1": ["a"], "i2": "same essay"}


def test_identical_answers_give_different_receipts_bound_to_their_attempt() -> None:
    one = candidate_receipt(ANSWERS, session_id="S", ticket="T1", attempt_id="A1")
    two = candidate_receipt(ANSWERS, session_id="S", ticket="T2", attempt_id="A2")
    assert one != two
    assert one == candidate_receipt(ANSWERS, session_id="S", ticket="T1", attempt_id="A1")
    assert one != candidate_receipt(ANSWERS, session_id="S", ticket="T1", attempt_id="A2")
    legacy = candidate_receipt(ANSWERS, session_id="S", ticket="T1", attempt_id="A1",
                               receipt_format=ANSWERS_V1)  # fmt: skip
    assert legacy == canonical_hash(ANSWERS)  # format 1 is still what it was


def test_format_2_vector() -> None:
    """A frozen vector: a changed field, order or constant of the format fails here."""
    receipt = candidate_receipt(ANSWERS, session_id="S", ticket="T1", attempt_id="A1")
    assert receipt == "b92ef98b86d657229ea6018af92a90a13161560a53ab3210a6e1736c9773c99a"
    assert short_code(receipt) == "Q4QFKC-2W6TS0"


def test_the_short_code_is_twelve_checked_characters_and_catches_typos() -> None:
    code = short_code(canonical_hash(ANSWERS))
    assert len(code) == 13 and code[6] == "-"
    assert normalise_code(code.lower().replace("-", " ")) == code
    typed = code.replace("-", "")
    for position, wrong in itertools.product(range(12), ALPHABET[:8]):
        if typed[position] == wrong:
            continue
        mistyped = typed[:position] + wrong + typed[position + 1 :]
        with pytest.raises(ReceiptCodeInvalid, match="does not check"):
            normalise_code(mistyped)
    for position in range(11):
        if position == 5 or typed[position] == typed[position + 1]:
            continue  # a swap across the groups is a substitution in each: caught above
        swapped = typed[:position] + typed[position + 1] + typed[position] + typed[position + 2 :]
        with pytest.raises(ReceiptCodeInvalid):
            normalise_code(swapped)
    with pytest.raises(ReceiptCodeInvalid, match="12 characters"):
        normalise_code(typed[:-1])


async def test_two_candidates_submitting_identical_answers_get_different_receipts(
    venue_kit: VenueKit,
) -> None:
    """Through the venue's API: two candidates, the same (empty) answers, two receipts and two
    codes; each receipt is its own attempt's and not the other's."""
    kit = venue_kit
    await kit.unlock()
    first, second = [await kit.login_candidate(n) for n in (1, 2)]
    kit.clock.set(VENUE_START + timedelta(minutes=105))
    got = []
    for candidate in (first, second):
        resp = await kit.client.post("/api/v1/attempt/submit", headers=candidate.auth)
        assert resp.status == 200, await resp.text()
        got.append(await resp.json())
    assert got[0]["receipt"] != got[1]["receipt"]
    assert got[0]["receipt_code"] != got[1]["receipt_code"]
    db = open_venue_db(kit.directory)
    try:
        rows = db.execute(
            "SELECT a.session_id, a.ticket, a.attempt_id, s.receipt, s.receipt_format"
            " FROM attempts a JOIN submissions s USING (attempt_id) ORDER BY a.ticket"
        ).fetchall()
    finally:
        db.close()
    assert {row[4] for row in rows} == {"attempt-v2"}
    for session_id, ticket, attempt_id, receipt, _ in rows:
        assert receipt == candidate_receipt({}, session_id=session_id, ticket=ticket,
                                            attempt_id=attempt_id)  # fmt: skip
        others = [r for r in rows if r[2] != attempt_id]
        assert all(receipt != candidate_receipt({}, session_id=o[0], ticket=o[1],
                                                attempt_id=o[2]) for o in others)  # fmt: skip


SESSION = "S-RECEIPT"
TICKETS = ("60001", "60002")


def _sit(venue_dir: Path) -> dict[str, str]:
    """Two candidates with identical (empty) answers, submitted the venue's own way."""
    db = open_venue_db(venue_dir)
    with transaction(db):
        seat_roster(db, SESSION, TICKETS, ended=True)
        for ticket in TICKETS:
            answer_and_submit(db, ticket, {})
        codes = dict(
            db.execute(
                "SELECT a.ticket, s.receipt FROM submissions s JOIN attempts a USING (attempt_id)"
            ).fetchall()
        )
    db.close()
    return {ticket: short_code(receipt) for ticket, receipt in codes.items()}


async def test_the_centre_confirms_each_receipt_after_publication_only(tmp_path: Path) -> None:
    """Venue submissions -> export -> upload -> scoring: each receipt recomputed at the centre
    from its own attempt; the public page confirms a ticket with its own code, not with the
    other's, and says nothing before the results are published."""
    real = RealVenue.make(tmp_path, SESSION, TICKETS, items=10, seed=2)
    authority, venue, digests = real.authority, real.venue, real.digests
    codes = _sit(venue.directory)
    assert codes[TICKETS[0]] != codes[TICKETS[1]]
    await asyncio.to_thread(
        export_session, venue.directory, SESSION, central_key=tmp_path / "auth" / "upload.pub",
        variant_digests=digests,
    )  # fmt: skip
    database = str(tmp_path / "central.db")
    settings = CentralSettings(directory=tmp_path, database=database, log_requests=False)
    app = create_app(settings, clock=SettableClock(START + timedelta(hours=3)), authority=authority)
    async with TestServer(app, host="127.0.0.1") as server:
        record = VenueRecord("V1", "V1", venue.sign_public, venue.wrap_public, iso(START))
        await app[central_keys.STORAGE].add_venue(record)
        url = str(server.make_url("")).rstrip("/")
        delivered = await drain_outbox(
            venue.directory, url, authority.signing_public, clock=app[central_keys.CLOCK]
        )
        assert len(delivered) == 1

        storage = app[central_keys.STORAGE]
        folder = results_dir(tmp_path, SESSION)
        scored = await score_session(storage, authority, SESSION, START + timedelta(days=1), folder)
        for result in scored.results:
            assert result.score.receipt_venue == result.score.receipt_centre
        assert len({r.score.receipt_venue for r in scored.results}) == 2
        write_results(folder, SESSION, scored.paper, scored.results)

        async def check(ticket: str, code: str) -> str:
            body = {"ticket": ticket, "code": code}
            async with aiohttp.ClientSession() as client:
                url = str(server.make_url("/api/v1/receipt-check"))
                resp = await client.post(url, json=body)
                assert resp.status == 200, await resp.text()
                return str((await resp.json())["outcome"])

        mine, other = codes[TICKETS[0]], codes[TICKETS[1]]
        assert await check(TICKETS[0], mine) == "not-found"  # not published yet
        await storage.set_results_published(SESSION, iso(START + timedelta(days=2)))
        assert await check(TICKETS[0], mine) == "confirmed"
        assert await check(TICKETS[0], mine.lower().replace("-", "")) == "confirmed"
        assert await check(TICKETS[0], other) == "not-confirmed"
        assert await check(TICKETS[1], other) == "confirmed"
        assert await check("99999", mine) == "not-found"

        async with aiohttp.ClientSession() as client:
            page = await client.get(str(server.make_url("/receipt?lang=zh-CN")))
            assert page.status == 200 and "核对交卷回执" in await page.text()
            form = {"ticket": TICKETS[0], "code": mine}
            answer = await client.post(str(server.make_url("/receipt?lang=zh-CN")), data=form)
            assert "已核实" in await answer.text()
            form["code"] = mine[:-1] + ("0" if mine[-1] != "0" else "1")
            answer = await client.post(str(server.make_url("/receipt?lang=en")), data=form)
            assert answer.status == 422 and "mistyped" in await answer.text()
