"""`cbt central` subcommands for results: score, essays and marks, change requests.

cbt central score DIR --session ID --out scores.csv [--json FILE] [--report FILE.html]
cbt central export-essays DIR --session ID --out FILE.csv
cbt central import-marks DIR --session ID FILE.csv --operator NAME
cbt central changes propose DIR --session ID --ticket T --kind KIND --reason TEXT --operator NAME
                            [--evidence REF] [--item ID --points P] [--name N | --id-number X]
cbt central changes approve|reject DIR --session ID --change C0001 --operator NAME
cbt central changes list DIR --session ID

Every command takes `--database` like `cbt central serve`. The arguments are declared in
server.commands.central_args.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from paperpack.authority import Authority
from server.central.settings import load_central_keys, read_central, settings_from_env
from server.central.storage import CentralStorage
from server.clock import iso
from server.scoring import changes as change_rules
from server.scoring import marks as marking
from server.scoring import registration
from server.scoring.material import release_keys
from server.scoring.pipeline import results_dir, score_session
from server.scoring.report import build_report, render_report_html
from server.scoring.results import write_atomic, write_results

T = TypeVar("T")
Action = Callable[[CentralStorage, Authority, argparse.Namespace], Awaitable[T]]


def _now() -> datetime:
    return datetime.now(UTC)


def _run(args: argparse.Namespace, action: Action[T]) -> T:
    """Open the central store and keys of DIR, run `action`, close the store."""
    from server.central.app import open_storage

    read_central(args.dir)
    settings = settings_from_env(args.dir, database=args.database)
    authority = load_central_keys(args.dir)

    async def go() -> T:
        storage = open_storage(settings.database_url())
        await storage.open()
        try:
            return await action(storage, authority, args)
        finally:
            await storage.close()

    return asyncio.run(go())


# --- score --------------------------------------------------------------------------------


async def _score(storage: CentralStorage, authority: Authority, args: argparse.Namespace) -> str:
    folder = results_dir(args.dir, args.session)
    marking.ensure_private(folder)
    if args.roster is not None:
        await _take_roster(storage, args, folder)
    scored = await score_session(storage, authority, args.session, _now(), folder)
    write_results(folder, args.session, scored.paper, scored.results, args.out, args.json)
    report = build_report(scored, _now())
    report_json = json.dumps(report, ensure_ascii=False, indent=1).encode("utf-8")
    write_atomic(folder / "report.json", report_json)
    html = render_report_html(report)
    write_atomic(folder / "report.html", html.encode("utf-8"))
    if args.report is not None:
        write_atomic(args.report, html.encode("utf-8"))
    details = {"session_id": args.session, "candidates": len(scored.results),
               "summary": report["summary"], "report_sha256": _sha256(report_json),
               "packages": sorted(p.package_sha256 for p in scored.packages.values())}  # fmt: skip
    await storage.audit("cli", "results.scored", f"session:{args.session}", details, iso(_now()))
    summary = ", ".join(f"{k} {v}" for k, v in report["summary"].items())
    flagged = sum(1 for i in report["items"] if i["flag"])
    return (
        f"session {args.session}: {summary}; {flagged} item(s) flagged, "
        f"{len(report['similar_pairs'])} similar pair(s); wrote {args.out}"
    )


async def _take_roster(storage: CentralStorage, args: argparse.Namespace, folder: Path) -> None:
    try:
        data = args.roster.read_bytes()
    except OSError as exc:
        raise registration.RegistrationInvalid(
            [f"cannot read {args.roster}: {exc.strerror}"]
        ) from None
    people = registration.parse_registration(data)
    digest = registration.save_registration(folder, people)
    details = {"session_id": args.session, "candidates": len(people), "registration_sha256": digest}
    obj = f"session:{args.session}"
    await storage.audit("cli", "results.registration.imported", obj, details, iso(_now()))


def _sha256(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def cmd_score(args: argparse.Namespace) -> int:
    print(_run(args, _score))
    return 0


# --- essays and marks ---------------------------------------------------------------------


async def _essays(
    storage: CentralStorage, authority: Authority, args: argparse.Namespace
) -> tuple[list[marking.EssayRow], dict[str, str]]:
    folder = results_dir(args.dir, args.session)
    marking.ensure_private(folder)
    scored = await score_session(storage, authority, args.session, _now(), folder)
    secret = marking.results_secret(folder)
    return marking.essay_rows(scored.scores, scored.paper, secret, args.session)


def cmd_export_essays(args: argparse.Namespace) -> int:
    rows, owners = _run(args, _essays)
    write_atomic(args.out, marking.export_essays_csv(rows))
    print(f"{len(rows)} essay answer(s) of {len(owners)} candidate(s) written to {args.out}")
    return 0


async def _import(storage: CentralStorage, authority: Authority, args: argparse.Namespace) -> int:
    rows, owners = await _essays(storage, authority, args)
    try:
        data = args.file.read_bytes()
    except OSError as exc:
        raise marking.MarksInvalid([f"cannot read {args.file}: {exc.strerror}"]) from None
    marks = marking.parse_marks(data, rows, owners)
    digest = marking.save_marks(results_dir(args.dir, args.session), marks)
    details = {"session_id": args.session, "marks": sum(len(m) for m in marks.values()),
               "marks_sha256": digest, "file_sha256": _sha256(data)}  # fmt: skip
    obj = f"session:{args.session}"
    await storage.audit(args.operator, "results.marks.imported", obj, details, iso(_now()))
    return int(details["marks"])


def cmd_import_marks(args: argparse.Namespace) -> int:
    count = _run(args, _import)
    print(f"{count} mark(s) imported for session {args.session}; run `cbt central score` again")
    return 0


# --- changes ------------------------------------------------------------------------------


async def _item_points(authority: Authority, session_id: str) -> dict[str, float]:
    material = release_keys(authority, session_id, _now())
    paper = next(iter(material.values())).paper
    return {item.item_id: item.points for item in paper.items()}


async def _propose(
    storage: CentralStorage, authority: Authority, args: argparse.Namespace
) -> change_rules.Change:
    personal = {k: v for k, v in (("name", args.name), ("id_number", args.id_number)) if v}
    request = change_rules.ChangeRequest(
        ticket=args.ticket, kind=args.kind, reason=args.reason, evidence=args.evidence,
        item_id=args.item, points=args.points, personal=personal,
    )  # fmt: skip
    points = await _item_points(authority, args.session) if args.kind == "correct" else {}
    return await change_rules.propose_change(
        storage, args.session, request, args.operator, _now(),
        item_points=points, results_dir=results_dir(args.dir, args.session),
    )  # fmt: skip


def cmd_changes_propose(args: argparse.Namespace) -> int:
    change = _run(args, _propose)
    print(
        f"change {change.change_id} proposed by {change.proposed_by}; a different operator "
        f"must approve it: cbt central changes approve ... --change {change.change_id}"
    )
    return 0


async def _decide(
    storage: CentralStorage, _authority: Authority, args: argparse.Namespace
) -> change_rules.Change:
    return await change_rules.decide_change(
        storage, args.session, args.change, args.operator, _now(), approve=args.approve
    )


def cmd_changes_decide(args: argparse.Namespace) -> int:
    change = _run(args, _decide)
    print(f"change {change.change_id} {change.status} by {change.decided_by}")
    return 0


async def _list(
    storage: CentralStorage, _authority: Authority, args: argparse.Namespace
) -> list[dict[str, Any]]:
    return [c.to_dict() for c in await change_rules.load_changes(storage, args.session)]


def cmd_changes_list(args: argparse.Namespace) -> int:
    for c in _run(args, _list):
        columns = ("change_id", "ticket", "kind", "status", "proposed_by", "decided_by")
        print("\t".join(str(c[k]) for k in columns))
    return 0
