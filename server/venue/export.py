"""Exporting a session's answers at the venue: the venue tables -> one response package.

`collect_session(db, session_id)` gathers, as plain data: every attempt with its whole
journal (hash chain as stored, and whether it verified here), its final answers and
submission; the variants served (seed inputs: session, ticket, form; plus each variant's
digest when the unlocked exam is at hand), the seating plan and moves, absences, incidents,
violations (flagged `serious` for the 5-year retention of art. 23(7)), time grants, pauses
and the venue's audit chain. No names or ID numbers: the centre holds the registration data.
A dry run's session (its package signed as practice) is never exported (art. 21(3)).

`export_session(...)` splits that into the contents and the evidence (journals and audit
log: `split_evidence`), seals both (`server.protocol.response_package`), writes it to the outbox
(`server.venue.upload`), and records the export and an audit event in one transaction.
The export number is the `exports` row number, so it rises with every export and the centre
refuses a replayed older package.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from paperpack import crypto
from server import audit
from server.clock import Clock, iso
from server.errors import CbtError
from server.protocol.response_package import build_response_package
from server.protocol.violation_rules import is_serious
from server.store import transaction
from server.venue import journal
from server.venue.background import stop_task
from server.venue.end_report import end_report
from server.venue.packages import is_practice
from server.venue.upload import Backoff, drain_outbox, put_in_outbox
from server.venue.workspace import load_signing_key, load_venue, open_venue_db

log = logging.getLogger(__name__)

CONTENTS_FORMAT = "cbt-response-contents"
CONTENTS_VERSION = 1
CENTRAL_KEY_FILE = "authority-upload.pub"  # in DIR/keys/: the centre's X25519 key (upload.pub)
AUTHORITY_SIGN_FILE = "authority-sign.pub"  # in DIR/keys/: the centre's Ed25519 key (receipts)
# Violations that keep the records 5 years (art. 23(7)): cheating with help or for another.


class ExportError(CbtError):
    """A session cannot be exported; the message says what to do."""


@dataclass(frozen=True)
class ExportResult:
    path: Path  # the package in DIR/outbox/
    package_sha256: str
    export_seq: int
    session_id: str
    attempts: int


def _rows(db: Database, sql: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
    cursor = db.execute(sql, params)
    names = [c[0] for c in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _attempt(db: Database, row: dict[str, Any], digests: Mapping[str, str]) -> dict[str, Any]:
    attempt_id = row.pop("attempt_id")
    row.pop("token_hash", None)  # a bearer token hash has no business at the centre
    row.pop("client", None)
    saves = _rows(
        db,
        "SELECT seq, position, saved_at, responses, prev_hash, hash FROM journal"
        " WHERE attempt_id = ? ORDER BY position",
        (attempt_id,),
    )
    for save in saves:
        save["responses"] = json.loads(save["responses"])
    try:
        journal.verify_chain(db, attempt_id)
        chain_ok = True
    except journal.ChainBroken:
        chain_ok = False  # exported anyway: the centre must see it, and the flag says why
    # The submitted answers travel once, as final_answers: the submission record carries
    # the receipt over them (repeating them doubled the package and the centre's decoding).
    submission = _rows(
        db,
        "SELECT submitted_at, how, final_seq, answers, receipt, receipt_format FROM submissions"
        " WHERE attempt_id = ?",
        (attempt_id,),
    )
    if submission:
        final = json.loads(submission[0].pop("answers"))
    else:
        final = journal.current_responses(db, attempt_id)
    grants = _rows(
        db,
        "SELECT granted_ms, reason, granted_by, granted_at FROM time_grants WHERE attempt_id = ?"
        " ORDER BY grant_id",
        (attempt_id,),
    )
    return {
        "attempt_id": attempt_id,
        **row,
        "journal": saves,
        "journal_chain_verified": chain_ok,
        "final_answers": final,
        "submission": submission[0] if submission else None,
        "time_grants": grants,
        "variant": {"ticket": row["ticket"], "digest": digests.get(row["ticket"])},
    }


def collect_session(
    db: Database, session_id: str, *, variant_digests: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Everything the centre needs about one session at this venue, as plain data."""
    sessions = _rows(db, "SELECT * FROM sessions WHERE session_id = ?", (session_id,))
    if not sessions:
        raise ExportError(f"session {session_id} is not known at this venue: check --session")
    session = sessions[0]
    if is_practice(db, session_id):
        raise ExportError(
            f"session {session_id} is a dry run (its package is signed as practice): its "
            "answers are never exported as real answers (art. 21(3))"
        )
    session["rules"] = json.loads(session["rules"] or "{}")
    forms = dict(
        db.execute(
            "SELECT ticket, form_id FROM candidates WHERE session_id = ?", (session_id,)
        ).fetchall()
    )
    if variant_digests is None:  # those the unlock recorded (the paper may be gone by now)
        variant_digests = dict(
            db.execute(
                "SELECT ticket, digest FROM variants WHERE session_id = ?", (session_id,)
            ).fetchall()
        )
    attempts = [
        _attempt(db, row, variant_digests)
        for row in _rows(
            db, "SELECT * FROM attempts WHERE session_id = ? ORDER BY ticket", (session_id,)
        )
    ]
    for attempt in attempts:
        attempt["variant"].update(session_id=session_id, form_id=forms.get(attempt["ticket"]))
    violations = _rows(
        db,
        "SELECT violation_id, ticket, kind, text, recorded_by, recorded_at, handling,"
        " confirmed_by, confirmed_at FROM violations WHERE session_id = ? ORDER BY violation_id",
        (session_id,),
    )
    for violation in violations:
        violation["serious"] = is_serious(violation["kind"])
    by_session = (session_id,)
    return {
        "format": CONTENTS_FORMAT,
        "version": CONTENTS_VERSION,
        "session": session,
        "candidates": [{"ticket": t, "form_id": f} for t, f in sorted(forms.items())],
        "attempts": attempts,
        "seating": {
            "plans": _rows(
                db, "SELECT * FROM seat_plans WHERE session_id = ? ORDER BY plan_id", by_session
            ),
            "seats": _rows(
                db,
                "SELECT ticket, room_id, seat_no, row_no, column_no, moved FROM seats"
                " WHERE session_id = ? ORDER BY room_id, seat_no",
                by_session,
            ),
            "moves": _rows(
                db, "SELECT * FROM seat_moves WHERE session_id = ? ORDER BY move_id", by_session
            ),
        },
        "absences": _rows(
            db, "SELECT * FROM absences WHERE session_id = ? ORDER BY ticket", by_session
        ),
        "incidents": _rows(
            db, "SELECT * FROM incidents WHERE session_id = ? ORDER BY incident_id", by_session
        ),
        "violations": violations,
        "time_grants": [g | {"ticket": a["ticket"]} for a in attempts for g in a["time_grants"]],
        "pauses": _rows(
            db, "SELECT * FROM pauses WHERE session_id = ? ORDER BY pause_id", by_session
        ),
        "audit": _rows(db, "SELECT * FROM audit_events ORDER BY event_id", ()),
    }


def central_wrap_key(venue_dir: Path, override: Path | None = None) -> crypto.X25519PublicKey:
    """The centre's X25519 key: `override` (copied into DIR/keys/), else DIR/keys/ (pinned)."""
    pinned = venue_dir / "keys" / CENTRAL_KEY_FILE
    if override is not None:
        text = override.read_text(encoding="ascii") if override.is_file() else ""
        if override.is_dir():
            text = (override / "upload.pub").read_text(encoding="ascii")
        key = crypto.read_wrapping_public(text, "centre upload")
        pinned.write_text(crypto.public_key_text(key) + "\n", encoding="ascii")
        return key
    if not pinned.is_file():
        raise ExportError(
            f"the centre's upload key is not pinned ({pinned}): pass --central-key with the "
            "authority's upload.pub once"
        )
    return crypto.read_wrapping_public(pinned.read_text(encoding="ascii"), "centre upload")


def pick_session(db: Database, session_id: str | None) -> str:
    if session_id is not None:
        return session_id
    known = [
        row[0]
        for row in db.execute(
            "SELECT s.session_id FROM sessions s LEFT JOIN packages p"
            " ON p.package_id = s.package_id WHERE COALESCE(p.kind, 'real') != 'practice'"
            " ORDER BY s.starts_at"
        )
    ]
    if len(known) != 1:
        raise ExportError(
            f"this venue has {len(known)} sessions ({', '.join(known) or 'none'}): "
            "name one with --session"
        )
    return str(known[0])


def split_evidence(collected: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The package's two documents: the contents scoring reads, and the evidence (each
    attempt's journal, the audit log) that the centre checks once and keeps for review."""
    contents = dict(collected)
    journals = []
    attempts = []
    for attempt in collected["attempts"]:
        attempt = dict(attempt)
        journals.append(
            {"attempt_id": attempt["attempt_id"], "ticket": attempt["ticket"],
             "journal": attempt.pop("journal")}
        )  # fmt: skip
        attempts.append(attempt)
    contents["attempts"] = attempts
    evidence = {"journals": journals, "audit": contents.pop("audit")}
    return contents, evidence


def export_session(
    venue_dir: Path,
    session_id: str | None = None,
    *,
    central_key: Path | None = None,
    actor: str = "system",
    now: datetime | None = None,
    variant_digests: Mapping[str, str] | None = None,
    partial_reason: str | None = None,
) -> ExportResult:
    """Seal one session's answers into DIR/outbox/ and record the export. Returns where.

    While any attempt is open the export is refused, naming them, unless `partial_reason`
    says why it must go now: then its end-of-session report says partial, and the centre
    never takes it as the session's end (`server.venue.end_report`)."""
    venue = load_venue(venue_dir)
    wrap_public = central_wrap_key(venue_dir, central_key)
    signing = load_signing_key(venue)
    moment = now or datetime.now(UTC)
    db = open_venue_db(venue_dir)
    try:
        chosen = pick_session(db, session_id)
        report = _checked_end_report(db, chosen, moment, partial_reason)
        contents, evidence = split_evidence(
            collect_session(db, chosen, variant_digests=variant_digests)
        )
        contents["end_report"] = report
        export_seq = int(
            db.execute("SELECT COALESCE(MAX(export_id), 0) + 1 FROM exports").fetchone()[0]
        )
        data = build_response_package(
            contents,
            evidence=evidence,
            session_id=chosen,
            venue_id=venue.venue_id,
            export_seq=export_seq,
            created_at=iso(moment),
            venue_key=signing,
            central_wrap_public=wrap_public,
        )
        path = put_in_outbox(venue_dir, data)
        result = ExportResult(
            path, path.name.split(".")[0], export_seq, chosen, len(contents["attempts"])
        )
        with transaction(db):
            if (
                int(db.execute("SELECT COALESCE(MAX(export_id), 0) FROM exports").fetchone()[0])
                >= export_seq
            ):
                raise ExportError("another export of this venue ran at the same time: export again")
            db.execute(
                "INSERT INTO exports (export_id, session_id, file, package_hash, attempts,"
                " created_at, created_by) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (export_seq, chosen, str(path.relative_to(venue_dir)), result.package_sha256,
                 result.attempts, iso(moment), actor),
            )  # fmt: skip
            details = {"package_sha256": result.package_sha256, "export_seq": export_seq,
                       "attempts": result.attempts, "final": contents["end_report"]["final"],
                       "partial_reason": contents["end_report"]["partial_reason"]}  # fmt: skip
            audit.record(db, actor, "responses.exported", f"session:{chosen}", details, now=moment)
        return result
    finally:
        db.close()


def _checked_end_report(
    db: Database, session_id: str, now: datetime, partial_reason: str | None
) -> dict[str, Any]:
    """The end-of-session report, or ExportError while attempts are open without a reason."""
    row = next(db.query("SELECT * FROM sessions WHERE session_id = ?", [session_id]), None)
    if row is None:
        raise ExportError(f"session {session_id} is not known at this venue: check --session")
    reason = partial_reason.strip() if partial_reason else None
    report = end_report(db, row, now, reason)
    still_open = report["open_tickets"]
    if still_open and reason is None:
        shown = ", ".join(still_open[:10]) + (" ..." if len(still_open) > 10 else "")
        raise ExportError(
            f"{len(still_open)} attempt(s) of session {session_id} are still open (tickets"
            f' {shown}): export after they end, or give --partial --reason "why" to send'
            " what there is now (the centre will not take it as the session's end)"
        )
    return report


def sessions_to_export(venue_dir: Path) -> list[str]:
    """Sessions that have ended and have no export yet (the outbox worker exports them)."""
    db = open_venue_db(venue_dir)
    try:
        rows = db.execute(
            "SELECT s.session_id FROM sessions s LEFT JOIN packages p"
            " ON p.package_id = s.package_id WHERE s.status = 'ended'"
            " AND COALESCE(p.kind, 'real') != 'practice'"  # a dry run never goes home (art. 21(3))
            " AND s.session_id NOT IN (SELECT session_id FROM exports) ORDER BY s.ended_at"
        ).fetchall()
        return [str(row[0]) for row in rows]
    finally:
        db.close()


def pinned_centre_signing_key(venue_dir: Path) -> crypto.Ed25519PublicKey | None:
    """The centre's signing key when both centre keys are pinned in DIR/keys/ (the import
    pins both from the package), else None."""
    pinned = venue_dir / "keys" / AUTHORITY_SIGN_FILE
    if not pinned.is_file() or not (venue_dir / "keys" / CENTRAL_KEY_FILE).is_file():
        return None
    return crypto.read_signing_public(pinned.read_text(encoding="ascii"), "centre signing")


async def export_and_upload_worker(
    venue_dir: Path,
    central_url: str,
    central_public: crypto.Ed25519PublicKey | None = None,
    *,
    idle_s: float = 10.0,
    clock: Clock | None = None,
) -> None:
    """Once a session ends, export it and send the outbox; retry with backoff (cancel to stop).
    Upload calls are signed at `clock`'s time (the venue app's).

    The centre's keys are looked for every round (`central_public` overrides the pinned
    signing key): a package imported while the server runs pins them, and the next round
    sends. The venue server runs this as a background task when a central URL is configured."""
    failures, waiting_logged = 0, False
    while True:
        try:
            public = central_public or pinned_centre_signing_key(venue_dir)
            if public is None:
                if not waiting_logged:
                    log.warning("export.outbox_waiting reason=centre keys not pinned yet")
                    waiting_logged = True
                await asyncio.sleep(idle_s)
                continue
            for session_id in sessions_to_export(venue_dir):
                await asyncio.to_thread(export_session, venue_dir, session_id)
            await drain_outbox(
                venue_dir, central_url, public, backoff=Backoff(attempts=3), clock=clock
            )
            failures = 0
            await asyncio.sleep(idle_s)
        except CbtError as exc:
            failures += 1
            log.warning("export.outbox_failed error=%s", exc)
            await asyncio.sleep(Backoff().delay(min(failures, 10)))


def outbox_context(
    venue_dir: Path, central_url: str, clock: Clock | None = None
) -> Callable[[Any], AsyncIterator[None]]:
    """An aiohttp cleanup context running `export_and_upload_worker` while the app runs.

    The venue app appends it when a central URL is configured:
    `app.cleanup_ctx.append(outbox_context(settings.venue_dir, settings.central_url))`.
    The worker waits for the centre's keys (pinned by the package import) by itself."""

    async def context(app: Any) -> AsyncIterator[None]:
        task = asyncio.create_task(export_and_upload_worker(venue_dir, central_url, clock=clock))
        try:
            yield
        finally:
            await stop_task(task)

    return context
