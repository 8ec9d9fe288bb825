"""Scoring at the centre: whole chain against a simple scorer, holds, absences, cancellations."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paperpack.authority import Authority
from paperpack.model import CHOICE_TYPES, Item, Paper
from paperpack.variants import build_variant, to_display
from server.central.storage import CentralStorage
from server.scoring.engine import HELD, AttemptScorer, CandidateScore, score_venue
from server.scoring.material import KeysNotReleased, VenueMaterial
from server.scoring.packages import VenuePackage
from server.scoring.pipeline import score_session
from server.scoring.results import mask_id, write_results
from tests.server.scoring.conftest import (
    AFTER_END,
    SESSION_ID,
    START,
    PackedSession,
    upload_all,
)
from tests.strategies import answers, papers, secrets, strip_keys, tickets

# --- a deliberately simple scorer, sharing nothing with paperpack.scoring -------------------


def _plain(text: str, item_blank: Any) -> str:
    n = item_blank.normalisation
    if n.fullwidth_to_halfwidth:
        text = "".join(
            " " if ch == "\u3000" else chr(ord(ch) - 0xFEE0) if 0xFF01 <= ord(ch) <= 0xFF5E else ch
            for ch in text
        )
    if n.collapse_whitespace:
        text = re.sub(r"\s+", " ", text)
    if n.trim:
        text = text.strip()
    if not n.case_sensitive:
        text = text.casefold()
    return text


def simple_item(item: Item, answer: Any) -> float:
    if answer is None or item.type == "essay":
        return 0.0
    if item.type in CHOICE_TYPES:
        chosen, key = set(answer), set(item.key)
        if chosen == key and chosen:
            return item.points
        partial = item.type == "multiple_choice" and item.scoring == "partial"
        if partial and chosen and chosen < key:
            return item.partial_points
        return 0.0
    right = 0
    for blank, text in zip(item.blanks, answer, strict=False):
        if _plain(text, blank) in {_plain(a, blank) for a in blank.accepted}:
            right += 1
    return item.points * right / len(item.blanks)


def simple_total(paper: Paper, canonical: dict[str, Any]) -> float:
    return sum(simple_item(item, canonical.get(item.item_id)) for item in paper.items())


# --- the whole chain over generated papers --------------------------------------------------


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), paper=papers(), secret=secrets(), ticket=tickets())
def test_whole_chain_equals_simple_scorer(
    data: st.DataObject, paper: Paper, secret: bytes, ticket: str
) -> None:
    """Variant, tokens (or the venue's canonical ids), inverse and rules give the simple
    scorer's total for any paper."""
    form = data.draw(st.sampled_from(paper.forms)) if paper.forms else None
    canonical = data.draw(answers(paper))
    # The venue builds the variant from the paper without keys and records its digest.
    venue_variant = build_variant(strip_keys(paper), secret, "S-h", ticket, form)
    attempt: dict[str, Any] = {
        "ticket": ticket,
        "variant": {"digest": venue_variant.digest, "form": form},
        "final_answers": to_display(venue_variant, canonical),
    }
    if data.draw(st.booleans()):  # the venue already mapped them (as JSON: lists, not tuples)
        attempt["answers_form"] = "canonical"
        attempt["final_answers"] = {
            k: v if isinstance(v, str) else list(v) for k, v in canonical.items()
        }
    out = CandidateScore("V", ticket)
    AttemptScorer(paper, secret, "S-h").score(attempt, out)
    assert out.status != HELD, out.flags
    assert math.fsum(out.earned) == pytest.approx(simple_total(paper, canonical), abs=1e-9)


@settings(max_examples=60, deadline=None)
@given(paper=papers(), secret=secrets(), other=secrets(), ticket=tickets())
def test_variant_from_another_secret_is_held(
    paper: Paper, secret: bytes, other: bytes, ticket: str
) -> None:
    """A variant the venue built with another secret is held, never scored."""
    if secret == other:
        return
    venue_variant = build_variant(strip_keys(paper), other, "S-h", ticket)
    for answers_form in ("tokens", "canonical"):
        attempt = {"ticket": ticket, "variant": {"digest": venue_variant.digest},
                   "final_answers": {}, "answers_form": answers_form}  # fmt: skip
        out = CandidateScore("V", ticket)
        AttemptScorer(paper, secret, "S-h").score(attempt, out)
        assert out.status == HELD and "variant mismatch" in out.flags[0]
        assert out.earned == []


def test_answer_naming_a_foreign_token_is_held(packed_session: PackedSession) -> None:
    """An answer naming a token the recomputed variant lacks puts the candidate on hold."""
    paper, secret = packed_session.paper, b"k" * 32
    variant = build_variant(paper, secret, SESSION_ID, "T1")
    item = next(vi for vi in variant.items() if vi.type == "single_choice")
    attempt = {"ticket": "T1", "variant": {"digest": variant.digest},
               "final_answers": {item.token: ["AAAAAAAAAAAA"]}}  # fmt: skip
    material = VenueMaterial("V9", "p", paper, "h", secret, START)
    contents = {"attempts": [attempt], "candidates": [{"ticket": "T1"}, {"ticket": "T2"}]}
    scores = score_venue(VenuePackage("V9", "x", 1, "", contents), material, SESSION_ID)
    by_ticket = {s.ticket: s for s in scores}
    assert by_ticket["T1"].status == HELD
    assert "option" in by_ticket["T1"].flags[0]
    assert by_ticket["T2"].status == "absent"


# --- a realistic session, end to end --------------------------------------------------------


async def test_session_scores_equal_simple_scorer(
    central_store: CentralStorage,
    authority: Authority,
    packed_session: PackedSession,
    tmp_path: Path,
) -> None:
    """Every present candidate's objective score equals the simple scorer's over their answers."""
    scored = await score_session(central_store, authority, SESSION_ID, AFTER_END, tmp_path)
    plants = packed_session.plants
    statuses = {r.score.ticket: r.status for r in scored.results}
    checked = 0
    for result in scored.results:
        ticket = result.score.ticket
        if result.status != "pending":
            continue
        expected = simple_total(packed_session.paper, packed_session.canonical[ticket])
        assert result.objective == pytest.approx(expected, abs=1e-9), ticket
        checked += 1
    assert checked == 116
    assert statuses[plants.mismatch_ticket] == HELD
    assert statuses[plants.cancelled_ticket] == "cancelled"
    assert statuses[plants.absent_marked] == statuses[plants.absent_unmarked] == "absent"
    cancelled = next(r for r in scored.results if r.score.ticket == plants.cancelled_ticket)
    assert cancelled.total == 0.0  # by the centre's determination, not the venue's proposal
    assert cancelled.score.references == ["violation:V002/1", "change:C0001(violation:V002/1)"]


async def test_scoring_before_the_end_is_refused(
    central_store: CentralStorage, authority: Authority, tmp_path: Path
) -> None:
    """Before the session's end the answer keys stay sealed and scoring is refused."""
    with pytest.raises(KeysNotReleased, match="released to scoring only after the end"):
        await score_session(central_store, authority, SESSION_ID, START, tmp_path)


async def test_both_backends_score_alike(
    database: str, authority: Authority, packed_session: PackedSession, tmp_path: Path
) -> None:
    """The same packages give the same results on SQLite and on PostgreSQL."""
    from server.central.app import open_storage

    await upload_all(database, tmp_path, authority, packed_session)
    storage = open_storage(database, pg_pool_size=2)
    await storage.open()
    try:
        scored = await score_session(storage, authority, SESSION_ID, AFTER_END, tmp_path)
    finally:
        await storage.close()
    totals = {r.score.ticket: r.total for r in scored.results}
    assert len(totals) == 120
    assert totals[packed_session.plants.mismatch_ticket] is None
    reference = simple_total(packed_session.paper, packed_session.canonical["10003"])
    assert totals["10003"] == pytest.approx(reference, abs=1e-9)


async def test_publication_files_mask_id_numbers_and_omit_names(
    central_store: CentralStorage,
    authority: Authority,
    packed_session: PackedSession,
    tmp_path: Path,
) -> None:
    """The publication CSV (UTF-8 with BOM) masks ID numbers and holds no names."""
    scored = await score_session(central_store, authority, SESSION_ID, AFTER_END, tmp_path)
    out_csv, out_json = tmp_path / "pub.csv", tmp_path / "pub.json"
    write_results(tmp_path, SESSION_ID, scored.paper, scored.results, out_csv, out_json)
    data = out_csv.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    text = data.decode("utf-8-sig") + out_json.read_text(encoding="utf-8")
    for name, id_number in packed_session.people.values():
        assert name not in text and id_number not in text
    assert "110101********0001" in text
    internal = (tmp_path / "scores-internal.csv").read_text(encoding="utf-8-sig")
    assert "考生10001" in internal and "110101199001010001" in internal


def test_mask_id_keeps_region_and_last_four() -> None:
    """An 18-digit ID number keeps its first 6 and last 4 digits."""
    assert mask_id("110101199001011234") == "110101********1234"
    assert mask_id("A1234567") == "****4567"
    assert mask_id("123") == "***"


def test_session_id_cannot_leave_the_results_directory(tmp_path: Path) -> None:
    """A session id with path separators is refused before any file is touched."""
    from server.scoring.material import ScoringError
    from server.scoring.pipeline import results_dir

    with pytest.raises(ScoringError, match="not a session id"):
        results_dir(tmp_path, "../etc")
    assert results_dir(tmp_path, "S2026-ECON") == tmp_path / "results" / "S2026-ECON"


async def test_unreadable_records_in_a_signed_package_are_a_typed_error(
    authority: Authority, packed_session: PackedSession, tmp_path: Path
) -> None:
    """A package whose attempt has no ticket stops scoring with a message naming the venue."""
    import dataclasses

    from server.central.app import open_storage
    from server.clock import iso
    from server.protocol import response_package
    from server.scoring.pipeline import PackageContentsInvalid

    broken = response_package.build_response_package(
        {"attempts": [{"variant": {}}]}, session_id=SESSION_ID, venue_id="V001", export_seq=1,
        created_at=iso(START), venue_key=packed_session.venue_keys["V001"],
        central_wrap_public=authority.wrapping_public,
    )  # fmt: skip
    packed = dataclasses.replace(
        packed_session, packages={**packed_session.packages, "V001": broken}
    )
    database = str(tmp_path / "central.db")
    await upload_all(database, tmp_path, authority, packed)
    storage = open_storage(database)
    await storage.open()
    try:
        with pytest.raises(PackageContentsInvalid, match="package of venue V001"):
            await score_session(storage, authority, SESSION_ID, AFTER_END, tmp_path)
    finally:
        await storage.close()


def test_registration_problems_are_named_by_row_and_column() -> None:
    """Empty cells and a repeated ticket in the registration CSV are each reported."""
    from server.scoring.registration import RegistrationInvalid, parse_registration

    data = "ticket,name,id_number\nT1,张三,110101199001011234\nT2,,1\nT1,李四,2\n".encode()
    with pytest.raises(RegistrationInvalid) as caught:
        parse_registration(data)
    assert caught.value.problems == [
        "row 3, column name: empty",
        "row 4, column ticket: T1 appears twice",
    ]
    good = parse_registration(b"\xef\xbb\xbfticket,name,id_number\nT1,A,110101199001011234\n")
    assert good == {"T1": {"name": "A", "id_number": "110101199001011234"}}


def _journal(attempt_id: str, saves: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A journal chained as the venue chains it (server.protocol.journal_chain.link_hash)."""
    from paperpack.canonical import canonical_json
    from server.protocol.journal_chain import GENESIS, link_hash

    out, previous = [], GENESIS
    for position, responses in enumerate(saves, start=1):
        at = "2026-06-13T02:00:00.000Z"
        body = canonical_json(responses).decode()
        digest = link_hash(attempt_id, position, position, at, body, previous)
        out.append({"seq": position, "position": position, "saved_at": at,
                    "responses": responses, "prev_hash": previous, "hash": digest})  # fmt: skip
        previous = digest
    return out


def test_altered_journal_holds_the_candidate(packed_session: PackedSession) -> None:
    """A journal that chains is scored; one whose saved answer was edited afterwards is held."""
    paper, secret = packed_session.paper, b"k" * 32
    digest = build_variant(paper, secret, SESSION_ID, "T1").digest
    first = paper.items()[0]
    saves = [{first.item_id: list(first.key)}, {first.item_id: [first.options[-1].option_id]}]
    honest = {"attempt_id": "a1", "ticket": "T1", "variant": {"digest": digest},
              "journal": _journal("a1", saves), "final_answers": saves[-1]}  # fmt: skip
    forged = {**honest, "attempt_id": "a2", "ticket": "T2",
              "variant": {"digest": build_variant(paper, secret, SESSION_ID, "T2").digest},
              "journal": _journal("a2", saves)}  # fmt: skip
    forged["journal"][0]["responses"] = {first.item_id: ["x"]}
    material = VenueMaterial("V9", "p", paper, "h", secret, START)
    package = VenuePackage("V9", "x", 1, "", {"attempts": [honest, forged]})
    by_ticket = {s.ticket: s for s in score_venue(package, material, SESSION_ID)}
    assert by_ticket["T1"].status == "scored"
    assert by_ticket["T2"].status == HELD
    assert "does not chain" in by_ticket["T2"].flags[0]


def test_journals_in_the_evidence_are_checked_once_per_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Format 2 carries the journals in the evidence document: a forged one holds its
    candidate, and the verdict is kept per package, so later runs do not re-chain."""
    from paperpack import crypto
    from server.protocol import response_package
    from server.scoring import journals

    saves = [{"q1": ["a"]}, {"q1": ["b"]}]
    forged = _journal("a2", saves)
    forged[0]["responses"] = {"q1": ["x"]}
    evidence = {"journals": [{"attempt_id": "a1", "ticket": "T1", "journal": _journal("a1", saves)},
                             {"attempt_id": "a2", "ticket": "T2", "journal": forged}],
                "audit": []}  # fmt: skip
    venue_key, centre_key = crypto.generate_signing_key(), crypto.generate_wrapping_key()
    data = response_package.build_response_package(
        {"attempts": []}, evidence=evidence, session_id=SESSION_ID, venue_id="V9",
        export_seq=1, created_at="2026-06-13T04:00:00.000Z", venue_key=venue_key,
        central_wrap_public=centre_key.public_key(),
    )  # fmt: skip
    opened = response_package.open_response_package(data, venue_key.public_key(), centre_key)
    assert "journals" not in opened.contents and opened.evidence() == evidence
    package = VenuePackage("V9", opened.package_sha256, 1, "", opened.contents, opened)

    held = journals.journal_holds(package, tmp_path, START)
    assert list(held) == ["T2"] and "does not chain" in held["T2"]
    verdict = tmp_path / "journals" / f"{opened.package_sha256}.json"
    assert '"checked_saves": 2' in verdict.read_text()  # T1's two saves; T2 stopped at its first

    def must_not_run(_: Any) -> None:
        raise AssertionError("the journals were re-chained although a verdict is kept")

    monkeypatch.setattr(journals, "broken_journals", must_not_run)
    assert journals.journal_holds(package, tmp_path, START) == held


def test_an_unwritable_output_is_a_clear_error(tmp_path: Path) -> None:
    """A results path that cannot be written names the path and what to do: no traceback."""
    from server.scoring.material import ScoringError
    from server.scoring.results import write_atomic

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    with pytest.raises(ScoringError, match=r"cannot write .*not-a-folder/scores\.csv.*writable"):
        write_atomic(blocker / "scores.csv", b"data")
