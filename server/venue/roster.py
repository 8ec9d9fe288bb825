"""The roster (art. 16-17): importing the candidates of a session from CSV, checked.

CSV: UTF-8 with or without a BOM; header `ticket,name,id_number,subject` plus optional
`photo` and `id_type`. Every problem is reported at once, each naming the row (the file's
line number, the header being row 1) and the column; nothing is stored unless all rows pass.
Resident ID numbers (id_type `resident_id`, the default) are checked as GB 11643-1999:
18 characters, a valid birth date, and the ISO 7064 MOD 11-2 check digit. ID numbers are
personal data: error messages and logs never contain them, and the database keeps only a keyed
hash (what login compares) and a masked form (server.venue.id_protect, F12).
"""

from __future__ import annotations

import csv
import io
import logging
import re
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from sqlite_utils import Database

from paperpack.canonical import canonical_hash
from server.audit import record
from server.clock import iso
from server.errors import CbtError
from server.venue.id_protect import id_hash, id_key_for, mask_id

log = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("ticket", "name", "id_number", "subject")
OPTIONAL_COLUMNS = ("photo", "id_type")
ID_TYPES = ("resident_id", "passport", "hk_macao_permit", "taiwan_permit", "other")
GB11643_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
GB11643_CHECK = "10X98765432"
TICKET_PATTERN = re.compile(r"[A-Za-z0-9-]{1,32}")
OTHER_ID_PATTERN = re.compile(r"[A-Za-z0-9]{5,20}")
PHOTO_PATTERN = re.compile(r"[A-Za-z0-9_.-]{1,100}")


class RosterInvalid(CbtError):
    """The roster file has problems; `problems` lists them, one line each."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(
            f"{source}: {len(problems)} problem(s) in the roster; fix them and import again:\n"
            + "\n".join(problems)
        )


@dataclass(frozen=True)
class Candidate:
    """One roster row, checked."""

    ticket: str
    name: str
    id_number: str
    subject: str
    photo: str = ""
    id_type: str = "resident_id"
    row_no: int = 0

    def __repr__(self) -> str:  # never show the ID number, even in a traceback
        return f"Candidate(ticket={self.ticket!r}, row_no={self.row_no})"


def gb11643_check_digit(first17: str) -> str:
    """The check character of an 18-character resident ID number, from its first 17 digits."""
    total = sum(int(d) * w for d, w in zip(first17, GB11643_WEIGHTS, strict=True))
    return GB11643_CHECK[total % 11]


def resident_id_problem(id_number: str) -> str | None:
    """Why `id_number` is not a valid GB 11643 number (without repeating it), or None."""
    if len(id_number) != 18:
        return f"must be 18 characters (GB 11643), not {len(id_number)}"
    if not id_number[:17].isdigit() or not (id_number[17].isdigit() or id_number[17] in "Xx"):
        return "must be 17 digits followed by a digit or X (GB 11643)"
    try:
        date(int(id_number[6:10]), int(id_number[10:12]), int(id_number[12:14]))
    except ValueError:
        return "holds no valid birth date in characters 7-14 (GB 11643)"
    if gb11643_check_digit(id_number[:17]) != id_number[17].upper():
        return "has a wrong check digit (GB 11643): check the number against the ID card"
    return None


def parse_roster(data: bytes, source: str, subject: str | None = None) -> list[Candidate]:
    """Parse and check a roster CSV; raise RosterInvalid listing every problem."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise RosterInvalid(
            source, [f"byte {exc.start}: the file is not UTF-8; save it as UTF-8 (CSV UTF-8)"]
        ) from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise RosterInvalid(
            source,
            [
                f"row 1: missing column {c!r} (the header has: {', '.join(header) or 'nothing'})"
                for c in missing
            ],
        )
    reader.fieldnames = header
    problems: list[str] = []
    candidates: list[Candidate] = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(reader, start=2):
        row = {k: (v or "").strip() for k, v in raw.items() if k is not None}
        candidate, row_problems = _check_row(row, index, subject, seen)
        problems.extend(row_problems)
        if candidate is not None:
            candidates.append(candidate)
    if not candidates and not problems:
        problems.append("row 2: the roster has no candidates")
    if problems:
        raise RosterInvalid(source, problems)
    return candidates


def _check_row(
    row: dict[str, str], row_no: int, subject: str | None, seen: dict[str, int]
) -> tuple[Candidate | None, list[str]]:
    problems: list[str] = []

    def bad(column: str, why: str) -> None:
        problems.append(f"row {row_no}, column {column}: {why}")

    ticket = row.get("ticket", "")
    if not ticket:
        bad("ticket", "is empty")
    elif not TICKET_PATTERN.fullmatch(ticket):
        bad("ticket", "may hold only letters, digits and '-' (at most 32)")
    elif ticket in seen:
        bad("ticket", f"{ticket} is a duplicate of row {seen[ticket]}")
    else:
        seen[ticket] = row_no
    if not row.get("name"):
        bad("name", "is empty")
    id_type = row.get("id_type") or "resident_id"
    id_number = row.get("id_number", "")
    if id_type not in ID_TYPES:
        bad("id_type", f"{id_type!r} is not one of {', '.join(ID_TYPES)}")
    elif not id_number:
        bad("id_number", "is empty")
    elif id_type == "resident_id":
        why = resident_id_problem(id_number)
        if why:
            bad("id_number", why)
    elif not OTHER_ID_PATTERN.fullmatch(id_number):
        bad("id_number", "must be 5-20 letters or digits for this id_type")
    row_subject = row.get("subject", "")
    if not row_subject:
        bad("subject", "is empty")
    elif subject is not None and row_subject != subject:
        bad("subject", f"{row_subject!r} but this session is for {subject!r}")
    photo = row.get("photo", "")
    if photo and not PHOTO_PATTERN.fullmatch(photo):
        bad("photo", "must be a plain file name (letters, digits, '_', '.', '-')")
    if problems:
        return None, problems
    return (
        Candidate(
            ticket=ticket,
            name=row["name"],
            id_number=id_number.upper() if id_type == "resident_id" else id_number,
            subject=row_subject,
            photo=photo,
            id_type=id_type,
            row_no=row_no,
        ),
        [],
    )


def session_subject(db: Database, session_id: str) -> str | None:
    """The subject of a known session, or None when the session is not known yet."""
    row = db.execute("SELECT subject FROM sessions WHERE session_id = ?", (session_id,)).fetchone()
    return None if row is None else str(row[0])


def roster_hash(tickets: list[str]) -> str:
    """Hex SHA-256 of the canonical sorted ticket list (what a seat plan is drawn from)."""
    return canonical_hash(sorted(tickets))


def store_roster(
    db: Database,
    session_id: str,
    candidates: list[Candidate],
    *,
    actor: str,
    now: datetime,
    subject: str | None = None,
) -> int:
    """Store the roster of `session_id` (replacing one not yet in use); audited; return count.

    A session not yet known (no package imported) is created with `subject`.
    """
    known = session_subject(db, session_id)
    if known is None:
        if not subject:
            raise CbtError(
                f"session {session_id} is not known yet (no package imported): pass --subject"
            )
        db.execute(
            "INSERT INTO sessions (session_id, subject) VALUES (?, ?)", (session_id, subject)
        )
    elif subject and subject != known:
        raise CbtError(f"session {session_id} is for subject {known!r}, not {subject!r}")
    in_use = db.execute(
        "SELECT (SELECT count(*) FROM attempts WHERE session_id = ?)"
        " + (SELECT count(*) FROM seats WHERE session_id = ?)",
        (session_id, session_id),
    ).fetchone()[0]
    if in_use:
        raise CbtError(
            f"session {session_id} already has seats or attempts: the roster can no longer be "
            "replaced; correct single entries through an audited change"
        )
    replaced = db.execute("DELETE FROM candidates WHERE session_id = ?", (session_id,)).rowcount
    key = id_key_for(db)  # the number itself is never stored (F12): its keyed hash and mask
    db.conn.executemany(
        "INSERT INTO candidates (session_id, ticket, name, id_type, id_hash, id_masked, subject,"
        " photo, row_no, imported_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                session_id,
                c.ticket,
                c.name,
                c.id_type,
                id_hash(key, c.id_number),
                mask_id(c.id_number),
                c.subject,
                c.photo,
                c.row_no,
                iso(now),
            )
            for c in candidates
        ],
    )
    record(
        db,
        actor,
        "roster.imported",
        f"session:{session_id}",
        {
            "candidates": len(candidates),
            "replaced": replaced,
            "roster_hash": roster_hash([c.ticket for c in candidates]),
        },
        now=now,
    )
    log.info("roster.imported session=%s candidates=%d", session_id, len(candidates))
    return len(candidates)


def import_roster_file(
    db: Database,
    path: Path,
    session_id: str,
    *,
    actor: str,
    now: datetime,
    subject: str | None = None,
) -> int:
    """Read, check and store a roster CSV in one transaction the caller holds."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CbtError(f"cannot read roster {path}: {exc.strerror}") from None
    expected = session_subject(db, session_id) or subject
    candidates = parse_roster(data, str(path), expected)
    return store_roster(db, session_id, candidates, actor=actor, now=now, subject=subject)


CORRECTABLE = ("name", "id_number")


def correct_candidate(
    db: Database,
    session_id: str,
    ticket: str,
    field: str,
    value: str,
    reason: str,
    *,
    actor: str,
    now: datetime,
) -> None:
    """Correct one registered field of one candidate (art. 42), audited with a reason.

    The name and the ID number are never both changed: once one of them has been corrected
    for a candidate, a change of the other is refused (that would be another person).
    """
    if field not in CORRECTABLE:
        raise CbtError(
            f"field {field!r} cannot be corrected; correctable: {', '.join(CORRECTABLE)}"
        )
    if not reason.strip():
        raise CbtError("a correction needs a reason (and the evidence it rests on)")
    row = db.execute(
        "SELECT id_type FROM candidates WHERE session_id = ? AND ticket = ?", (session_id, ticket)
    ).fetchone()
    if row is None:
        raise CbtError(f"ticket {ticket} is not in the roster of session {session_id}")
    value = value.strip()
    if not value:
        raise CbtError(f"the new {field} is empty")
    if field == "id_number" and row[0] == "resident_id":
        why = resident_id_problem(value)
        if why:
            raise CbtError(f"the new id_number {why}")
        value = value.upper()
    other = "id_number" if field == "name" else "name"
    earlier = db.execute(
        "SELECT count(*) FROM audit_events WHERE action = 'roster.corrected' AND object = ?"
        " AND json_extract(details, '$.field') = ?",
        (f"session:{session_id}/ticket:{ticket}", other),
    ).fetchone()[0]
    if earlier:
        raise CbtError(
            f"the {other} of {ticket} was already corrected: name and ID number are never both "
            "changed (art. 42); register the candidate anew through the centre"
        )
    if field == "id_number":  # kept as login needs it only (F12)
        db.execute(
            "UPDATE candidates SET id_hash = ?, id_masked = ? WHERE session_id = ? AND ticket = ?",
            (id_hash(id_key_for(db), value), mask_id(value), session_id, ticket),
        )
    else:
        db.execute(
            "UPDATE candidates SET name = ? WHERE session_id = ? AND ticket = ?",
            (value, session_id, ticket),
        )
    record(
        db,
        actor,
        "roster.corrected",
        f"session:{session_id}/ticket:{ticket}",
        # The value is personal data: neither it nor a (guessable) hash of it goes in the log.
        {"field": field, "reason": reason},
        now=now,
    )
