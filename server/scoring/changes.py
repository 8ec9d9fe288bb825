"""The change rules for results (art. 41-42): what may change, who must agree, and the trace.

A result changes only through a change request, and only in these ways:

- `cancel` / `restore`: cancel or restore a candidate's score for a violation; needs an
  evidence reference (the violation record, a video file) and a reason. An approved `cancel`
  citing a reported violation (`violation:<venue>/<number>`) or a similar-answers flag is the
  centre's determination of it (art. 32): the venue's proposed handling alone changes nothing;
- `dismiss`: the determination that a reported violation or a flagged pair does not stand;
  needs the evidence reference (what is dismissed) and the reason; the score is untouched;
- `correct`: set one item's points (a marking or keying error); needs a stated cause;
- `personal`: correct a candidate's name *or* ID number; never both at once (a request naming
  both is refused, and so is one while the other field has a pending or approved change).

Every request needs a second, different operator to approve it (maker-checker): the proposer
can never approve their own request. Requests and decisions are events in the central store's
hash-chained audit log (`AuditLog.audit`, the same chain on SQLite and PostgreSQL), and
the current state of every request is a replay of that log, verified first: there is no second
copy that could disagree with the trace. New personal data (a corrected name or ID number)
never enters the log: the event carries its SHA-256 and the value is kept in a file under the
session's results directory (`personal/<change_id>.json`, mode 0600).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from server.central.storage import AuditLog
from server.clock import iso
from server.protocol.audit_chain import LEGACY_CENTRAL_FORMAT, AuditBroken, verify_audit_records
from server.scoring.material import ScoringError

KINDS = ("cancel", "restore", "dismiss", "correct", "personal")
PERSONAL_FIELDS = ("name", "id_number")
PROPOSED, APPROVED, REJECTED = "proposed", "approved", "rejected"
ACTION_PROPOSED = "results.change.proposed"
ACTION_APPROVED = "results.change.approved"
ACTION_REJECTED = "results.change.rejected"


class ChangeRefused(ScoringError):
    """A change request or decision breaks a rule of art. 41-42; the message names the rule."""


class SelfApprovalRefused(ChangeRefused):
    """The operator who proposed a change tried to approve it (maker-checker)."""


class NameAndIdTogether(ChangeRefused):
    """A change would alter a candidate's name and ID number together (art. 42)."""


class UnknownChange(ChangeRefused):
    """No change request with this id exists in the session."""


class AuditChainBroken(ScoringError):
    """The central audit log does not verify, so no change can be trusted or added."""


@dataclass
class Change:
    """One change request and its state, as replayed from the audit log."""

    change_id: str
    session_id: str
    ticket: str
    kind: str
    reason: str
    evidence: str
    proposed_by: str
    proposed_at: str
    item_id: str = ""  # correct: the item whose points are set
    points: float | None = None  # correct: the new points for that item
    fields: tuple[str, ...] = ()  # personal: the one field corrected
    value_sha256: str = ""  # personal: hash of the new value (the value is in a file)
    status: str = PROPOSED
    decided_by: str = ""
    decided_at: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["fields"] = list(self.fields)
        out.pop("extra")
        return out


async def load_changes(storage: AuditLog, session_id: str) -> list[Change]:
    """Every change request of `session_id`, in proposal order, from the verified audit log."""
    events = await storage.audit_events()
    try:
        verify_audit_records(events, "seq", LEGACY_CENTRAL_FORMAT)
    except AuditBroken as exc:
        raise AuditChainBroken(
            f"audit event {exc.event_id} {exc.why}; results cannot be changed or computed from "
            "a broken log: keep the database as evidence and restore the log from the backup"
        ) from None
    changes: dict[str, Change] = {}
    for event in events:
        details = event["details"]
        if not isinstance(details, dict) or details.get("session_id") != session_id:
            continue
        if event["action"] == ACTION_PROPOSED:
            change = _from_details(details, event)
            changes[change.change_id] = change
        elif event["action"] in (ACTION_APPROVED, ACTION_REJECTED):
            found = changes.get(str(details.get("change_id")))
            if found is not None and found.status == PROPOSED:
                found.status = APPROVED if event["action"] == ACTION_APPROVED else REJECTED
                found.decided_by, found.decided_at = str(event["actor"]), str(event["at"])
    return list(changes.values())


def _from_details(details: Mapping[str, Any], event: Mapping[str, Any]) -> Change:
    points = details.get("points")
    return Change(
        change_id=str(details["change_id"]),
        session_id=str(details["session_id"]),
        ticket=str(details["ticket"]),
        kind=str(details["kind"]),
        reason=str(details.get("reason", "")),
        evidence=str(details.get("evidence", "")),
        proposed_by=str(event["actor"]),
        proposed_at=str(event["at"]),
        item_id=str(details.get("item_id", "")),
        points=float(points) if points is not None else None,
        fields=tuple(details.get("fields", ())),
        value_sha256=str(details.get("value_sha256", "")),
    )


@dataclass(frozen=True)
class ChangeRequest:
    """What an operator asks for (validated by `check_request`)."""

    ticket: str
    kind: str
    reason: str
    evidence: str = ""
    item_id: str = ""
    points: float | None = None
    personal: Mapping[str, str] = field(default_factory=dict)  # field -> new value


def check_request(
    request: ChangeRequest, existing: list[Change], item_points: Mapping[str, float]
) -> None:
    """Raise ChangeRefused (or a subclass) unless `request` is allowed by art. 41-42."""
    if request.kind not in KINDS:
        raise ChangeRefused(f"change kind {request.kind!r} is not allowed; use one of {KINDS}")
    if not request.reason.strip():
        raise ChangeRefused("every change needs a stated reason or cause (--reason)")
    if request.kind in ("cancel", "restore", "dismiss") and not request.evidence.strip():
        raise ChangeRefused(
            f"a {request.kind} for a violation needs an evidence reference (--evidence), e.g. the"
            " violation record or the video file"
        )
    if request.kind == "correct":
        _check_correction(request, item_points)
    if request.kind == "personal":
        _check_personal(request, existing)


def _check_correction(request: ChangeRequest, item_points: Mapping[str, float]) -> None:
    if request.item_id not in item_points:
        raise ChangeRefused(f"item {request.item_id!r} is not in the paper: name an item id")
    maximum = item_points[request.item_id]
    if request.points is None or not 0 <= request.points <= maximum:
        raise ChangeRefused(
            f"a correction of item {request.item_id} must set points from 0 to {maximum:g}"
        )


def _check_personal(request: ChangeRequest, existing: list[Change]) -> None:
    chosen = set(request.personal)
    if chosen >= set(PERSONAL_FIELDS):
        raise NameAndIdTogether(
            "a candidate's name and ID number may never change together (art. 42): correct one,"
            " have it approved, and raise the other separately with its own evidence"
        )
    if len(chosen) != 1 or not chosen <= set(PERSONAL_FIELDS):
        raise ChangeRefused("a personal change corrects exactly one of: name, id_number")
    if not all(v.strip() for v in request.personal.values()):
        raise ChangeRefused("the corrected value is empty")
    other = (set(PERSONAL_FIELDS) - chosen).pop()
    for change in existing:
        if change.ticket == request.ticket and other in change.fields and change.status != REJECTED:
            raise NameAndIdTogether(
                f"candidate {request.ticket} already has a {change.status} change of their "
                f"{other} ({change.change_id}); name and ID number may never both change (art. 42)"
            )


def _write_personal(results_dir: Path, change_id: str, values: Mapping[str, str]) -> str:
    folder = results_dir / "personal"
    folder.mkdir(parents=True, exist_ok=True)
    data = json.dumps(dict(values), ensure_ascii=False, sort_keys=True).encode("utf-8")
    path = folder / f"{change_id}.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    return hashlib.sha256(data).hexdigest()


def read_personal(results_dir: Path, change: Change) -> dict[str, str]:
    """The corrected value of an approved personal change, checked against its logged hash."""
    try:
        data = (results_dir / "personal" / f"{change.change_id}.json").read_bytes()
    except OSError:
        raise ChangeRefused(
            f"the value of change {change.change_id} is missing from {results_dir}/personal: "
            "restore it from the backup"
        ) from None
    if hashlib.sha256(data).hexdigest() != change.value_sha256:
        raise ChangeRefused(f"the value file of change {change.change_id} was edited after logging")
    return dict(json.loads(data))


async def propose_change(
    storage: AuditLog,
    session_id: str,
    request: ChangeRequest,
    operator: str,
    now: datetime,
    *,
    item_points: Mapping[str, float],
    results_dir: Path,
) -> Change:
    """Record a change request (maker); it has no effect until another operator approves it."""
    if not operator.strip():
        raise ChangeRefused("name the operator proposing the change (--operator)")
    existing = await load_changes(storage, session_id)
    check_request(request, existing, item_points)
    change_id = f"C{len(existing) + 1:04d}"
    details: dict[str, Any] = {
        "change_id": change_id,
        "session_id": session_id,
        "ticket": request.ticket,
        "kind": request.kind,
        "reason": request.reason,
        "evidence": request.evidence,
    }
    if request.kind == "correct":
        details.update(item_id=request.item_id, points=request.points)
    if request.kind == "personal":
        details["fields"] = sorted(request.personal)
        details["value_sha256"] = _write_personal(results_dir, change_id, request.personal)
    obj = f"session:{session_id}/ticket:{request.ticket}"
    await storage.audit(operator, ACTION_PROPOSED, obj, details, iso(now))
    return _from_details(details, {"actor": operator, "at": iso(now)})


async def decide_change(
    storage: AuditLog,
    session_id: str,
    change_id: str,
    operator: str,
    now: datetime,
    *,
    approve: bool = True,
) -> Change:
    """Approve (or reject) a change as the checker: never the operator who proposed it."""
    changes = {c.change_id: c for c in await load_changes(storage, session_id)}
    change = changes.get(change_id)
    if change is None:
        raise UnknownChange(
            f"session {session_id} has no change {change_id}: list them with "
            "`cbt central changes list`"
        )
    if change.status != PROPOSED:
        raise ChangeRefused(
            f"change {change_id} was already {change.status} by {change.decided_by}"
        )
    if not operator.strip():
        raise ChangeRefused("name the operator deciding the change (--operator)")
    if operator == change.proposed_by:
        raise SelfApprovalRefused(
            f"operator {operator} proposed change {change_id} and cannot also decide it: a second,"
            " different operator must approve it (art. 41, maker-checker)"
        )
    action = ACTION_APPROVED if approve else ACTION_REJECTED
    details = {"change_id": change_id, "session_id": session_id}
    obj = f"session:{session_id}/ticket:{change.ticket}"
    await storage.audit(operator, action, obj, details, iso(now))
    change.status = APPROVED if approve else REJECTED
    change.decided_by, change.decided_at = operator, iso(now)
    return change
