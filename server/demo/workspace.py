"""Build the demo's workspace: authority, central directory, session, package and a venue.

`build_demo(directory, start_in_minutes)` does what the centre and a venue do before exam
day, with the real functions each step's command line uses:

    DIR/authority/     `paperpack authority init` (keys; central-only material per session)
    DIR/central/       `cbt central init` + `cbt central venues add` (the venue registry)
                       + `cbt central staff add` (the console's operator)
    DIR/session.yaml   the session file, starting in --start-in minutes (demo rules below)
    DIR/packages/      `paperpack pack` of the sample paper for venue DEMO-01 (3 cards, any 2)
    DIR/venue/         `cbt venue init`, `staff add` x4, `import`, `roster import`, `seats`;
                       the centre's keys pinned, so `cbt venue export/upload` need no key flags
    DIR/roster.csv     the 30 invented candidates, as a venue would receive them
    DIR/logins.txt     the staff passwords, venue and central (mode 0600)
    DIR/demo.json      marks DIR as a demo directory (a later `cbt demo --dir DIR` rebuilds it)

Demo-only session settings (never use them for a real exam): the unlock window opens at
once (at least 60 minutes before the start); entry stays open 60 minutes after the start
instead of 5 (art. 29(2)); there is no sealed period, so submission opens at the start
(art. 29(3) would keep it shut until 15 minutes before the end, or 2 hours for this 150-minute
paper); a candidate answers without waiting for an invigilator's identity check (art. 30: a
real session waits for it). Each is a `rules` / `window` override of the session file,
signed into the manifest.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import math
import os
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from paperpack.authority import init_authority, load_authority
from paperpack.crypto import public_key_text
from paperpack.pack import pack_venue
from paperpack.paperfile import load_paper
from paperpack.release import issue_release
from paperpack.session import Session, session_from_dict
from server.central.settings import CentralSettings, init_central
from server.central.storage import VenueRecord
from server.clock import iso
from server.demo.people import StaffMember, demo_candidates, demo_central_staff, demo_staff
from server.errors import CbtError
from server.staffauth import hash_password
from server.store import transaction
from server.venue import rooms, roster, seats, staff
from server.venue.export import central_wrap_key
from server.venue.packages import import_package, pin_authority_key
from server.venue.workspace import Venue, init_venue, open_venue_db

MARKER = "demo.json"
VENUE_ID = "DEMO-01"
VENUE_NAME = "演示考点 / Demo test centre"
ACTOR = "cli:demo"
SUPERVISORS, THRESHOLD = 3, 2  # three share cards, any two unlock
DEMO_RULES = {  # demo-only: see the module docstring
    "entry_cutoff_minutes": 60,
    "sealed_before_end_minutes": 24 * 60,
    "sealed_long_minutes": 0,
    "identity_check": 0,  # a demo candidate answers without an invigilator's check (art. 30)
}


class DemoError(CbtError):
    """The demo cannot be set up where it was asked to be."""


@dataclass(frozen=True)
class DemoWorkspace:
    """Everything the demo made, and what it prints."""

    directory: Path
    session_id: str
    venue_id: str
    starts_at: datetime
    cards: dict[int, str]  # holder number -> share card text
    release_code: str  # the offline time release, as the centre would read it out
    staff: list[StaffMember]
    candidates: list[roster.Candidate]
    central_staff: list[StaffMember]  # the centre's console accounts (status page, reports)

    @property
    def authority_dir(self) -> Path:
        return self.directory / "authority"

    @property
    def central_dir(self) -> Path:
        return self.directory / "central"

    @property
    def venue_dir(self) -> Path:
        return self.directory / "venue"

    @property
    def package_dir(self) -> Path:
        return self.directory / "packages" / self.venue_id / "package"

    def member(self, login: str) -> StaffMember:
        return next(m for m in self.staff if m.login == login)


def data_path(name: str) -> Path:
    """A file of the embedded sample data (a copy of examples/, shipped with the package)."""
    return Path(str(resources.files("server.demo") / "data" / name))


def prepare_directory(directory: Path) -> None:
    """Empty a previous demo directory, or create a new one; refuse anything else."""
    if directory.exists() and any(directory.iterdir()):
        if not (directory / MARKER).is_file():
            raise DemoError(
                f"{directory} is not empty and not a demo directory: "
                "pass --dir with a new or empty directory"
            )
        shutil.rmtree(directory)
    directory.mkdir(parents=True, exist_ok=True)


def demo_session(venue: Venue, now: datetime, start_in_minutes: float) -> Session:
    """The session file's contents: the sample paper's subject, starting soon, demo rules."""
    start = (now + timedelta(minutes=start_in_minutes)).replace(microsecond=0)
    raw: dict[str, Any] = {
        "session_id": "DEMO-" + now.strftime("%Y%m%d-%H%M%S"),
        "subject": {"code": "27", "name": "信息系统项目管理师 / IT project management"},
        "paper": "paper.yaml",
        "start": start.isoformat(),
        "window": {
            "opens_minutes_before": max(60, math.ceil(start_in_minutes) + 5),
            "closes_minutes_after": 60,
        },
        "rules": dict(DEMO_RULES),
        "venues": [
            {
                "id": VENUE_ID,
                "name": VENUE_NAME,
                "public_key": venue.wrap_public,
                "supervisors": SUPERVISORS,
                "threshold": THRESHOLD,
            }
        ],
    }
    return session_from_dict(raw, "demo session")


def _session_yaml(session: Session, venue: Venue) -> str:
    raw = {
        "session_id": session.session_id,
        "subject": {"code": session.subject_code, "name": session.subject_name},
        "paper": "paper.yaml",
        "start": session.start.isoformat(),
        "window": {
            "opens_minutes_before": int((session.start - session.not_before).total_seconds())
            // 60,
            "closes_minutes_after": int((session.not_after - session.start).total_seconds())
            // 60,
        },
        "rules": dict(session.rules),
        "venues": [{"id": VENUE_ID, "name": VENUE_NAME, "public_key": venue.wrap_public,
                    "supervisors": SUPERVISORS, "threshold": THRESHOLD}],
    }  # fmt: skip
    header = "# The demo's session (made by `cbt demo`). Demo-only rules: see server/demo.\n"
    return header + yaml.safe_dump(raw, allow_unicode=True, sort_keys=False)


async def register_venue(
    central_dir: Path, venue: Venue, members: list[StaffMember], now: datetime
) -> None:
    """`cbt central venues add` (the venue's public keys into the central registry) and
    `cbt central staff add` (the console accounts)."""
    from server.central.app import open_storage

    settings = CentralSettings(directory=central_dir)
    storage = open_storage(settings.database_url())
    await storage.open()
    try:
        record = VenueRecord(venue.venue_id, venue.name, venue.sign_public, venue.wrap_public,
                             iso(now))  # fmt: skip
        await storage.add_venue(record)
        details = {"name": venue.name, "signing_public": venue.sign_public}
        await storage.audit(ACTOR, "venue.registered", f"venue:{venue.venue_id}", details, iso(now))
        for m in members:
            password_hash = hash_password(m.password)
            await storage.add_staff(m.login, m.name, m.role, password_hash, ACTOR, iso(now))
    finally:
        await storage.close()


def populate_venue(
    venue: Venue, session_id: str, package_dir: Path, members: list[StaffMember], now: datetime
) -> list[roster.Candidate]:
    """Staff, package import, roster, rooms and the seat draw, in one transaction."""
    candidates = demo_candidates()
    hashes = {m.login: hash_password(m.password) for m in members}
    db = open_venue_db(venue.directory)
    try:
        with transaction(db):
            for m in members:
                staff.add_staff(db, m.login, m.name, m.role, hashes[m.login], actor=ACTOR, now=now)
            # Two people receive the package (art. 23(4)): the administrator and the chief.
            admin = next(m.login for m in members if m.role == "system_administrator")
            chief = next(m.login for m in members if m.role == "chief_examiner")
            import_package(venue, db, package_dir, actor=admin, confirmed_by=chief, now=now)
            roster.store_roster(db, session_id, candidates, actor=ACTOR, now=now)
            rooms.store_rooms(db, rooms.load_rooms(data_path("rooms.yaml")), actor=ACTOR, now=now)
            seats.draw_seats(db, session_id, actor=ACTOR, now=now)
    finally:
        db.close()
    return candidates


def _write_roster_csv(path: Path, candidates: list[roster.Candidate]) -> None:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["ticket", "name", "id_number", "subject"])
    for c in candidates:
        writer.writerow([c.ticket, c.name, c.id_number, c.subject])
    path.write_text(out.getvalue(), encoding="utf-8")


def _write_logins(path: Path, members: list[StaffMember]) -> None:
    lines = [f"{m.login}\t{m.role}\t{m.password}\n" for m in members]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.writelines(lines)


def build_demo(
    directory: Path, start_in_minutes: float, now: datetime | None = None
) -> DemoWorkspace:
    """Create the whole demo in `directory` (emptied first if it holds an earlier demo)."""
    now = now or datetime.now(UTC)
    directory = directory.resolve()
    prepare_directory(directory)
    # The marker first: a build cut short (Ctrl-C) still counts as a demo and is rebuilt.
    (directory / MARKER).write_text('{"status": "building"}\n', encoding="utf-8")
    init_authority(directory / "authority")
    authority = load_authority(directory / "authority")
    init_central(directory / "central", directory / "authority")
    venue = init_venue(directory / "venue", VENUE_ID, VENUE_NAME, now)
    central_staff = demo_central_staff()
    asyncio.run(register_venue(directory / "central", venue, central_staff, now))
    session = demo_session(venue, now, start_in_minutes)
    (directory / "session.yaml").write_text(_session_yaml(session, venue), encoding="utf-8")
    shutil.copy(data_path("paper.yaml"), directory / "paper.yaml")
    shutil.copytree(data_path("assets"), directory / "assets")
    paper = load_paper(directory / "paper.yaml")
    packed = pack_venue(paper, session, session.venues[0], authority, directory / "packages",
                        now=now)  # fmt: skip
    cards = {int(p.stem.split("-")[1]): p.read_text(encoding="utf-8")
             for p in sorted(packed.shares_dir.glob("holder-*.txt"))}  # fmt: skip
    release = issue_release(authority, session.session_id, VENUE_ID, now=now)
    pub = directory / "authority" / "signing.pub"
    pub.write_text(public_key_text(authority.signing_public) + "\n", encoding="ascii")
    pin_authority_key(venue, pub)
    central_wrap_key(venue.directory, directory / "authority" / "upload.pub")  # pins it
    members = demo_staff()
    candidates = populate_venue(venue, session.session_id, packed.package_dir, members, now)
    _write_roster_csv(directory / "roster.csv", candidates)
    _write_logins(directory / "logins.txt", members + central_staff)
    marker = {"session_id": session.session_id, "venue_id": VENUE_ID, "created_at": iso(now),
              "starts_at": iso(session.start)}  # fmt: skip
    (directory / MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
    return DemoWorkspace(directory, session.session_id, VENUE_ID, session.start, cards,
                         release.code, members, candidates, central_staff)  # fmt: skip
