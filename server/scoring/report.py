"""The verification report of art. 35(5): reconciliation, item statistics, anomalies, copying.

`build_report(scored)` returns plain JSON-able data; `render_report_html(report)` renders it
with the jinja2 template `templates/report.html` and inline SVG charts (`charts.py`).
The report carries tickets, never names or ID numbers, and no answers.

- Per venue: candidates expected (roster), present, absent, submitted, held, cancelled; the
  answers the venue says it received (count, and a hash over the receipts it gave candidates)
  against what the centre recomputed over the answers that arrived.
- Per item: difficulty (p-value: mean share of the item's points earned) and discrimination
  (corrected point-biserial: correlation of the item score with the rest of the total);
  negative discrimination is flagged as a likely key error.
- Anomalies: present candidates with a zero total, candidates who gave one answer to every
  choice item, items every candidate answered the same way.
- Held candidates (variant mismatch) with the reason.
- Similar-answer pairs (`server.scoring.similarity`), neighbours in the seating plan marked.
- What a person judges beside the statistics (`server.scoring.near_misses`): per room the
  pairs with the most identical wrong answers, even below significance, and essays whose texts
  are identical or near-identical. Each flag carries its evidence: the venue's package (by
  hash) holding the answers, the tickets, seats and items, for the centre's determination.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
from markupsafe import Markup

from paperpack.canonical import canonical_hash
from paperpack.model import CHOICE_TYPES, Paper
from server.clock import iso
from server.i18n import format_time, translator
from server.protocol.violation_rules import KINDS as VIOLATION_KINDS
from server.scoring import charts
from server.scoring.engine import ABSENT, CANCELLED, HELD, violation_reference
from server.scoring.near_misses import closest_pairs, matching_texts
from server.scoring.pipeline import ScoredSession
from server.scoring.results import PENDING, FinalResult
from server.scoring.similarity import WrongAnswer, find_similar_pairs

# The item flag the report writes (in English, as the JSON keeps it); the page says it from
# the catalogue (report.flag.negative_discrimination) in its language.
NEGATIVE_DISCRIMINATION = "negative discrimination: check the key"
MIN_SAME_ANSWER = 10  # choice items a candidate must answer before "one answer everywhere" counts
MIN_ITEM_ANSWERS = 5  # answers an item needs before "everyone answered alike" counts
TEMPLATES = Path(__file__).with_name("templates")


def _present(results: Sequence[FinalResult]) -> list[FinalResult]:
    return [r for r in results if r.status not in (ABSENT, HELD)]


def venue_rows(scored: ScoredSession) -> list[dict[str, Any]]:
    """Counts and hashes per venue, venue's records against the centre's."""
    rows = []
    for venue_id, package in sorted(scored.packages.items()):
        mine = [r for r in scored.results if r.score.venue_id == venue_id]
        attempts = [r.score for r in mine if r.status != ABSENT]
        venue_receipts = sorted([s.ticket, s.receipt_venue] for s in attempts if s.submitted)
        centre_receipts = sorted([s.ticket, s.receipt_centre] for s in attempts if s.submitted)
        mismatched = [
            t for (t, v), (_, c) in zip(venue_receipts, centre_receipts, strict=True) if v != c
        ]
        rows.append(
            {
                "venue_id": venue_id,
                "package_sha256": package.package_sha256,
                "export_seq": package.export_seq,
                "expected": len(mine),
                "present": len(attempts),
                "absent": sum(1 for r in mine if r.status == ABSENT),
                "submitted": sum(1 for s in attempts if s.submitted),
                "held": sum(1 for r in mine if r.status == HELD),
                "cancelled": sum(1 for r in mine if r.status == CANCELLED),
                "answers_venue": sum(s.answer_count for s in attempts),
                "answers_centre": sum(len(s.answers) for s in attempts if s.answers),
                "hash_venue": canonical_hash(venue_receipts),
                "hash_centre": canonical_hash(centre_receipts),
                "hashes_match": not mismatched,
                "receipt_mismatches": mismatched,
            }
        )
    return rows


def _matrix(paper: Paper, present: Sequence[FinalResult]) -> np.ndarray[Any, Any]:
    points = np.array([i.points for i in paper.items()], dtype=np.float64)
    earned = np.array([r.score.earned for r in present], dtype=np.float64)
    return earned / points if len(present) else np.zeros((0, len(points)))


def item_rows(paper: Paper, results: Sequence[FinalResult]) -> list[dict[str, Any]]:
    """Difficulty and discrimination of every objective item over the present candidates."""
    present = [r for r in _present(results) if r.score.earned]
    share = _matrix(paper, present)
    totals = np.array([sum(r.score.earned) for r in present], dtype=np.float64)
    rows = []
    for n, item in enumerate(paper.items()):
        if item.type == "essay":
            continue
        column = share[:, n] if len(present) else np.zeros(0)
        rest = totals - column * item.points
        disc = _correlation(column, rest)
        rows.append(
            {
                "item_id": item.item_id,
                "type": item.type,
                "points": item.points,
                "candidates": len(present),
                "p_value": round(float(column.mean()), 4) if len(present) else None,
                "discrimination": None if disc is None else round(disc, 4),
                "flag": NEGATIVE_DISCRIMINATION if disc is not None and disc < 0 else "",
            }
        )
    return rows


def _correlation(x: np.ndarray[Any, Any], y: np.ndarray[Any, Any]) -> float | None:
    if len(x) < 3 or float(x.std()) == 0.0 or float(y.std()) == 0.0:
        return None
    return float(np.corrcoef(x, y)[0, 1])


def anomalies(paper: Paper, results: Sequence[FinalResult]) -> dict[str, list[str]]:
    """Zero totals, one answer to every choice item, items everyone answered alike."""
    present = [r for r in _present(results) if r.status != CANCELLED]
    choice = [i.item_id for i in paper.items() if i.type in CHOICE_TYPES]
    same: list[str] = []
    for r in present:
        given = [r.score.answers[i] for i in choice if i in r.score.answers]
        if len(given) >= MIN_SAME_ANSWER and len(set(given)) == 1:
            same.append(r.score.ticket)
    alike = []
    for item in paper.items():
        given = [r.score.answers[item.item_id] for r in present if item.item_id in r.score.answers]
        if len(given) >= MIN_ITEM_ANSWERS and len(set(map(repr, given))) == 1:
            alike.append(item.item_id)
    return {
        "zero_scores": sorted(r.score.ticket for r in present if r.total == 0),
        "one_answer_everywhere": sorted(same),
        "items_answered_alike": alike,
    }


def wrong_answers(paper: Paper, results: Sequence[FinalResult]) -> dict[str, list[WrongAnswer]]:
    """Per present candidate, per objective item: the wrong answer given, else None."""
    items = [(n, i) for n, i in enumerate(paper.items()) if i.type != "essay"]
    out: dict[str, list[WrongAnswer]] = {}
    for r in _present(results):
        s = r.score
        if not s.earned:
            continue
        row: list[WrongAnswer] = []
        for n, item in items:
            answer = s.answers.get(item.item_id)
            wrong = answer is not None and answer != () and s.earned[n] < item.points
            row.append(answer if wrong else None)
        out[s.ticket] = row
    return out


def seat_map(scored: ScoredSession) -> dict[str, tuple[str, str, int, int]]:
    """ticket -> (venue, room, row, column); seat number alone counts as one row."""
    seats = {}
    for venue_id, package in scored.packages.items():
        seating = package.contents.get("seating") or []
        if isinstance(seating, dict):  # the venue export: {"plans", "seats", "moves"}
            seating = seating.get("seats") or []
        for seat in seating:
            row = int(seat.get("row_no") or 1)
            column = int(seat.get("column_no") or seat.get("seat_no") or 0)
            seats[str(seat["ticket"])] = (venue_id, str(seat.get("room_id", "")), row, column)
    return seats


def are_neighbours(
    a: tuple[str, str, int, int] | None, b: tuple[str, str, int, int] | None
) -> bool:
    """Same venue and room, seats touching (row and column differ by at most one)."""
    if a is None or b is None or a[:2] != b[:2]:
        return False
    return abs(a[2] - b[2]) <= 1 and abs(a[3] - b[3]) <= 1


def similar_rows(scored: ScoredSession) -> list[dict[str, Any]]:
    answers = wrong_answers(scored.paper, scored.results)
    seats = seat_map(scored)
    venues = {r.score.ticket: r.score.venue_id for r in scored.results}
    rows = []
    for pair in find_similar_pairs(answers, groups=venues):
        rows.append(
            {
                "first": pair.first,
                "second": pair.second,
                "identical_wrong": pair.identical_wrong,
                "both_wrong": pair.both_wrong,
                "expected": round(pair.expected, 3),
                "p_value": pair.p_value,
                "neighbours": are_neighbours(seats.get(pair.first), seats.get(pair.second)),
            }
        )
    return rows


def _seat(seat: tuple[str, str, int, int] | None) -> dict[str, Any] | None:
    return None if seat is None else {"room_id": seat[1], "row": seat[2], "column": seat[3]}


def _evidence(
    scored: ScoredSession, kind: str, venue_id: str, tickets: Sequence[str], items: Sequence[str]
) -> dict[str, Any]:
    """Where the centre finds what it needs to determine a flag: the venue's package (the
    answers and the seating are in it), the tickets, their seats and the items concerned."""
    seats = seat_map(scored)
    package = scored.packages.get(venue_id)
    return {
        "flag_id": "-".join([kind, venue_id, *tickets]),
        "venue_id": venue_id,
        "package_sha256": package.package_sha256 if package else None,
        "tickets": list(tickets),
        "seats": [_seat(seats.get(t)) for t in tickets],
        "items": list(items),
    }


def close_pair_rows(scored: ScoredSession) -> list[dict[str, Any]]:
    """Per room, the pairs with the most identical wrong answers, even below significance."""
    items = [i.item_id for i in scored.paper.items() if i.type != "essay"]
    venues = {r.score.ticket: r.score.venue_id for r in scored.results}
    pairs = closest_pairs(
        wrong_answers(scored.paper, scored.results), items, seat_map(scored), venues
    )
    return [
        {
            "venue_id": pair.venue_id,
            "room_id": pair.room_id,
            "first": pair.first,
            "second": pair.second,
            "identical_wrong": pair.identical_wrong,
            "both_wrong": pair.both_wrong,
            "neighbours": pair.neighbours,
            "evidence": _evidence(
                scored, "pair", pair.venue_id, (pair.first, pair.second), pair.items
            ),
        }
        for pair in pairs
    ]


def text_match_rows(scored: ScoredSession) -> list[dict[str, Any]]:
    """Essays with identical or near-identical texts, flagged whatever the session's size."""
    essays = {i.item_id for i in scored.paper.items() if i.type == "essay"}
    texts = {
        r.score.ticket: {
            item: answer
            for item, answer in r.score.answers.items()
            if item in essays and isinstance(answer, str)
        }
        for r in _present(scored.results)
    }
    venues = {r.score.ticket: r.score.venue_id for r in scored.results}
    return [
        {
            "venue_id": match.venue_id,
            "item_id": match.item_id,
            "first": match.first,
            "second": match.second,
            "similarity": match.similarity,
            "identical": match.identical,
            "length": match.length,
            "evidence": _evidence(
                scored, "text", match.venue_id, (match.first, match.second), (match.item_id,)
            ),
        }
        for match in matching_texts(texts, venues)
    ]


def violation_rows(scored: ScoredSession) -> list[dict[str, Any]]:
    """Every violation the venues reported, with the venue's proposal and the centre's
    determination: `awaiting` until an approved `cancel` or `dismiss` change cites it."""
    decided = {c.evidence: c for c in scored.changes
               if c.status == "approved" and c.kind in ("cancel", "dismiss")}  # fmt: skip
    rows = []
    for venue_id, package in sorted(scored.packages.items()):
        for position, violation in enumerate(package.contents.get("violations", []), start=1):
            reference = violation_reference(venue_id, violation, position)
            change = decided.get(reference)
            rows.append(
                {
                    "reference": reference,
                    "ticket": violation.get("ticket"),
                    "kind": violation.get("kind"),
                    "serious": bool(violation.get("serious")),
                    "proposed_handling": violation.get("handling"),
                    "confirmed_by": violation.get("confirmed_by"),
                    "determination": change.kind if change else "awaiting",
                    "change_id": change.change_id if change else None,
                }
            )
    return rows


def distribution(
    paper: Paper, results: Sequence[FinalResult], bins: int = 10
) -> list[dict[str, Any]]:
    """Totals of final and pending candidates in `bins` equal bands of the paper's points."""
    totals = [
        r.total for r in results if r.total is not None and r.status not in (ABSENT, CANCELLED)
    ]
    top = paper.total_points or 1.0
    counts = [0] * bins
    for total in totals:
        counts[min(bins - 1, int(total / top * bins))] += 1
    width = top / bins
    return [
        {"from": round(k * width, 2), "to": round((k + 1) * width, 2), "count": c}
        for k, c in enumerate(counts)
    ]


def build_report(scored: ScoredSession, now: datetime | None = None) -> dict[str, Any]:
    """The whole report as JSON-able data."""
    results = scored.results
    return {
        "format": "cbt-verification-report",
        "format_version": 1,
        "session_id": scored.session_id,
        "paper_id": scored.paper.paper_id,
        "generated_at": iso(now or datetime.now(UTC)),
        "pass_mark": scored.paper.pass_mark,
        "total_points": scored.paper.total_points,
        "summary": {
            status: sum(1 for r in results if r.status == status)
            for status in ("scored", PENDING, ABSENT, CANCELLED, HELD)
        },
        "venues": venue_rows(scored),
        "items": item_rows(scored.paper, results),
        "anomalies": anomalies(scored.paper, results),
        "held": [
            {"venue_id": r.score.venue_id, "ticket": r.score.ticket, "flags": r.score.flags}
            for r in results
            if r.status == HELD
        ],
        "similar_pairs": similar_rows(scored),
        "violations": violation_rows(scored),
        "close_pairs": close_pair_rows(scored),
        "text_matches": text_match_rows(scored),
        "distribution": distribution(scored.paper, results),
        "changes": [c.to_dict() for c in scored.changes if c.kind != "personal"],
    }


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )


def render_report_html(report: Mapping[str, Any], lang: str = "en", time_zone: str = "UTC") -> str:
    """The report as one self-contained HTML page (inline CSS and SVG, no scripts), its words
    from the pages' catalogue in `lang` and its times in `time_zone`."""
    t = translator(lang)
    svg = {
        "histogram": Markup(charts.histogram_svg(report["distribution"], t)),  # noqa: S704 - our own SVG, data escaped
        "difficulty": Markup(charts.difficulty_svg(report["items"], t)),  # noqa: S704 - our own SVG, data escaped
    }
    return (
        _environment()
        .get_template("report.html")
        .render(
            report=report,
            charts=svg,
            lang=lang,
            t=t,
            when=lambda text: format_time(text, lang, time_zone),
            flag_text={NEGATIVE_DISCRIMINATION: t("report.flag.negative_discrimination")},
            violation_kinds=VIOLATION_KINDS,  # each has its words in the catalogues (kind.*)
        )
    )
