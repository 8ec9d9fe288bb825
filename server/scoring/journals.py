"""The journals of a venue's package, re-chained once per package (not once per scoring run).

A real export carries every save of every candidate: most of a package's bytes, and most of
the work of reading it. They are evidence, not answers: scoring reads the final answers and
receipts; the journals prove the history behind them (art. 36 review). So the centre checks
a package's journals the first time a session is scored with it and keeps the verdict in
`DIR/results/<session>/journals/<package sha256>.json`; a later run (after marks, after a
change) reads the verdict. A candidate whose journal does not chain is held.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from server.clock import iso
from server.protocol.journal_chain import broken_journals
from server.scoring.packages import VenuePackage
from server.scoring.results import load_json, save_private_json

JOURNALS = "journals"


def journal_holds(package: VenuePackage, folder: Path, now: datetime) -> dict[str, str]:
    """ticket -> why to hold it, for the package's journals in its evidence document."""
    if package.opened is None or not package.opened.evidence_frame:
        return {}  # format 1: journals inline, checked with each attempt (engine)
    path = folder / JOURNALS / f"{package.package_sha256}.json"
    try:
        return {str(k): str(v) for k, v in load_json(path)["held"].items()}
    except (TypeError, ValueError, KeyError, AttributeError):
        pass  # not checked yet (None), or an unreadable verdict: check now
    attempts = package.opened.evidence().get("journals") or []
    checked, held = broken_journals([a for a in attempts if isinstance(a, dict)])
    verdict = {"package_sha256": package.package_sha256, "venue_id": package.venue_id,
               "checked_saves": checked, "held": held, "checked_at": iso(now)}  # fmt: skip
    save_private_json(path, verdict)
    return held
