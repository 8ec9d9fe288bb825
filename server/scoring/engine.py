"""Objective scoring of a session: variant check, inverse map, key table, absences, violations.

For each candidate of each venue's response package:

1. recompute the variant (variant secret, session, ticket, form) with paperpack's
   `VariantPlan` and compare its digest with the one the venue recorded; a mismatch (or a
   missing record, or an answer naming a token the recomputed variant does not have) puts the
   candidate on **hold**: flagged in the report, never silently scored;
2. map the answers back to canonical ids (`paperpack.variants.to_canonical`);
3. apply every item's rule through the compiled `KeyTable` (`paperpack.scoring`);
4. mark absences; cancel the score of a candidate whose violation was handled by cancelling
   it (status `cancelled`, total 0, with the violation's reference).

Totals and pass/fail against the paper's published `pass_mark` are finished in
`server.scoring.results`, once human marks and approved changes are in.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from paperpack.canonical import canonical_hash, quick_canonical_hash
from paperpack.model import Paper
from paperpack.scoring import Answer, KeyTable, compile_key
from paperpack.variants import UnknownToken, VariantError, VariantPlan, paused_gc, to_canonical
from server.protocol.candidate_receipt import ANSWERS_V1, ATTEMPT_V2, receipt_document
from server.protocol.candidate_receipt import READABLE as READABLE_RECEIPTS
from server.protocol.journal_chain import JournalMismatch, check_journals
from server.scoring.material import VenueMaterial
from server.scoring.packages import VenuePackage

# A violation whose handling result is one of these cancels the candidate's score.

SCORED, ABSENT, CANCELLED, HELD = "scored", "absent", "cancelled", "held"


@dataclass
class CandidateScore:
    """One candidate's objective result (names and ID numbers travel with it, never logged)."""

    venue_id: str
    ticket: str
    name: str = ""
    id_number: str = ""
    form: str | None = None
    status: str = SCORED  # scored / absent / cancelled / held (then pending or final later)
    flags: list[str] = field(default_factory=list)  # why held, in words (no answers in them)
    references: list[str] = field(default_factory=list)  # violation / change references
    submitted: bool = False
    earned: list[float] = field(default_factory=list)  # per item, paper order
    # The canonical answers as scored (JSON lists as the package holds them, or tuples).
    received: Mapping[str, Any] = field(default_factory=dict, repr=False)
    answer_count: int = 0  # answers as received from the venue
    receipt_venue: str = ""  # the receipt the venue gave the candidate at submission
    receipt_centre: str = ""  # the same hash recomputed here over the answers received

    @property
    def objective(self) -> float:
        return math.fsum(self.earned) if self.status == SCORED else 0.0

    @cached_property
    def answers(self) -> dict[str, Answer]:
        """The canonical answers in hashable form (lists made tuples), for the report's
        statistics and essay marking; made on first use, as scoring needs only `received`."""
        return {
            item_id: answer if type(answer) is str else _hashable(answer)
            for item_id, answer in self.received.items()
            if answer is not None
        }


def _hashable(answer: Any) -> Answer:
    if isinstance(answer, list | tuple):
        shaped = tuple(answer)
        try:
            hash(shaped)
        except TypeError:  # an unhashable element: not an answer shape
            return repr(answer)
        return shaped
    if isinstance(answer, str):
        return answer
    return repr(answer)  # not an answer shape (a venue bug): kept visible, never counted


class AttemptScorer:
    """Scores attempts of one paper: the hot path (variant, inverse, key table)."""

    def __init__(self, paper: Paper, variant_secret: bytes, session_id: str) -> None:
        self.paper = paper
        self.plan = VariantPlan(paper)
        self.table: KeyTable = compile_key(paper)
        self.item_ids = frozenset(item.item_id for item in paper.items())
        self.secret = variant_secret
        self.session_id = session_id

    def score(
        self,
        attempt: Mapping[str, Any],
        out: CandidateScore,
        responses: Mapping[str, Any] | None = None,
    ) -> None:
        """Fill `out` from one attempt record; on any mismatch set status HELD with a flag.

        `responses` are the attempt's final answers when the caller already has them
        (`final_answers`). Token answers (what the browser sent) are mapped back through the
        recomputed variant. Canonical answers (the venue mapped them at save time with the
        same paperpack code; see `answers_are_canonical`) need only the variant's digest,
        cheaper to recompute.
        """
        recorded = attempt.get("variant") or {}
        form = recorded.get("form", recorded.get("form_id"))
        out.form = form
        if responses is None:
            responses = final_answers(attempt)
        canonical_form = self.answers_are_canonical(attempt, responses)
        try:
            if canonical_form:
                variant, digest = (
                    None,
                    self.plan.digest(self.secret, self.session_id, out.ticket, form),
                )
            else:
                variant = self.plan.build(self.secret, self.session_id, out.ticket, form)
                digest = variant.digest
        except VariantError as exc:
            return _hold(out, f"variant cannot be rebuilt: {exc}")
        if not recorded.get("digest"):
            return _hold(out, "the venue recorded no variant digest for this candidate")
        if recorded["digest"] != digest:
            return _hold(
                out,
                "variant mismatch: the variant the venue recorded is not the one recomputed "
                "from the session's variant secret",
            )
        out.answer_count = len(responses)
        try:
            if variant is None:
                canonical = _check_canonical(self.item_ids, responses)
            else:
                canonical = to_canonical(variant, responses)
        except UnknownToken as exc:
            return _hold(out, f"answers do not fit the recomputed variant ({exc.role}): {exc}")
        out.received = canonical
        out.earned = self.table.earned(canonical)

    def answers_are_canonical(
        self, attempt: Mapping[str, Any], responses: Mapping[str, Any]
    ) -> bool:
        """Whether the answers name canonical item ids rather than the browser's tokens.

        An explicit `answers_form` ("canonical" or "tokens") decides; without it (the venue
        export keeps the canonical answers its journal holds) answers whose every key is an
        item id of the paper are canonical. Item tokens are 16 hex characters drawn per
        candidate, so they are item ids only if an author named items that way.
        """
        declared = attempt.get("answers_form")
        if declared is not None:
            return bool(declared == "canonical")
        return bool(responses) and self.item_ids.issuperset(responses)


def _hold(out: CandidateScore, why: str) -> None:
    out.status = HELD
    out.flags.append(why)


def final_answers(attempt: Mapping[str, Any]) -> Mapping[str, Any]:
    """The answers that count: `final_answers` (the submission's answers once submitted,
    else the journal's last state); older exports also repeated them in the submission."""
    submission = attempt.get("submission") or {}
    answers = submission.get("answers")
    if answers is None:
        answers = attempt.get("final_answers")
    if answers is None:
        return {}
    if not isinstance(answers, dict):
        raise TypeError("an attempt's answers are not an object of item -> answer")
    return answers


def _check_canonical(known: frozenset[str], responses: Mapping[str, Any]) -> Mapping[str, Any]:
    """Canonical answers are scored as they are: every item id must be the paper's."""
    if not known.issuperset(responses):
        raise UnknownToken("item", "the answers name an item that is not in this paper")
    return responses


def _roster(contents: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    rows = contents.get("candidates") or contents.get("roster") or []
    return {str(r["ticket"]): dict(r) for r in rows if "ticket" in r}


def violation_reference(venue_id: str, violation: Mapping[str, Any], position: int) -> str:
    """How a violation is cited in results: venue and the venue's violation number (or, when
    the export carries none, its 1-based position in the package's violation list)."""
    return f"violation:{venue_id}/{violation.get('violation_id', position)}"


def score_venue(
    package: VenuePackage,
    material: VenueMaterial,
    session_id: str,
    journal_holds: Mapping[str, str] | None = None,
) -> list[CandidateScore]:
    """Every candidate of one venue: present ones scored (or held), the others absent;
    `journal_holds` (ticket -> why) holds those whose journal in the evidence is broken."""
    contents = package.contents
    scorer = AttemptScorer(material.paper, material.variant_secret, session_id)
    roster = _roster(contents)
    absent = {str(a["ticket"]) for a in contents.get("absences", []) if "ticket" in a}
    results: dict[str, CandidateScore] = {}
    with paused_gc():  # thousands of answer dicts, no cycles: see paperpack.variants.paused_gc
        for attempt in contents.get("attempts", []):
            results[str(attempt["ticket"])] = _score_attempt(
                package.venue_id, attempt, roster, absent, scorer
            )
    for ticket, why in (journal_holds or {}).items():
        if ticket in results:
            _hold(results[ticket], why)
    for ticket in sorted((set(roster) | absent) - set(results)):
        person = roster.get(ticket, {})
        results[ticket] = CandidateScore(
            package.venue_id,
            ticket,
            str(person.get("name", "")),
            str(person.get("id_number", "")),
            status=ABSENT,
        )
    _apply_violations(package, results)
    return list(results.values())


def _score_attempt(
    venue_id: str,
    attempt: Mapping[str, Any],
    roster: Mapping[str, Mapping[str, Any]],
    absent: set[str],
    scorer: AttemptScorer,
) -> CandidateScore:
    ticket = str(attempt["ticket"])
    person = roster.get(ticket, {})
    out = CandidateScore(
        venue_id, ticket, str(person.get("name", "")), str(person.get("id_number", ""))
    )
    submission = attempt.get("submission") or {}
    out.submitted = bool(submission)
    out.receipt_venue = str(submission.get("receipt", ""))
    responses = final_answers(attempt)
    if submission:
        receipt_format = str(submission.get("receipt_format") or ANSWERS_V1)
        if receipt_format not in READABLE_RECEIPTS:
            _hold(out, f"receipt format {receipt_format} is unknown: upgrade the central server")
        else:
            out.receipt_centre = _receipt(attempt, responses, receipt_format, out.receipt_venue)
    scorer.score(attempt, out, responses)
    _check_journal(attempt, out)
    if ticket in absent:
        _hold(out, "marked absent by the venue yet has an attempt with answers")
    return out


def _receipt(
    attempt: Mapping[str, Any], answers: Mapping[str, Any], receipt_format: str, venue_receipt: str
) -> str:
    """The receipt recomputed here in the venue's format (server.protocol.candidate_receipt):
    format 1 over the final answers alone, format 2 binding session, ticket and attempt too.
    The quick encoder first, the definition deciding any mismatch."""
    hashed: Any = answers
    if receipt_format == ATTEMPT_V2:
        hashed = receipt_document(
            answers,
            session_id=str(attempt.get("session_id", "")),
            ticket=str(attempt["ticket"]),
            attempt_id=str(attempt.get("attempt_id", "")),
        )
    receipt = quick_canonical_hash(hashed)
    return receipt if receipt == venue_receipt else canonical_hash(hashed)


def _check_journal(attempt: Mapping[str, Any], out: CandidateScore) -> None:
    """Hold a candidate whose journal does not chain (here or, by its own flag, at the venue)."""
    if attempt.get("journal_chain_verified") is False:
        _hold(out, "the venue found this attempt's journal chain broken")
    if not attempt.get("journal"):
        return
    try:
        check_journals({"attempts": [attempt]})
    except JournalMismatch:
        _hold(out, "the journal in the package does not chain: saved answers were altered")
    except (KeyError, TypeError):
        _hold(out, "the journal in the package is incomplete: it cannot be checked")


def _apply_violations(package: VenuePackage, results: dict[str, CandidateScore]) -> None:
    """Cite each reported violation on its candidate. The venue's proposed handling changes
    nothing here: only the centre's determination does, an approved `cancel` change citing
    the violation (art. 32; server.protocol.violation_rules)."""
    for position, violation in enumerate(package.contents.get("violations", []), start=1):
        out = results.get(str(violation.get("ticket")))
        if out is not None:
            out.references.append(violation_reference(package.venue_id, violation, position))
