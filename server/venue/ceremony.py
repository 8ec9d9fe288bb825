"""Package import and the unlock ceremony (art. 23-24), routes and domain.

- Import: a package directory (uploaded as a tar or zip, or a server-side path) is verified
  with `paperpack.unlock.open_package` against the pinned authority key: signature, venue
  binding, fragment hashes, manifest version. Nothing is decrypted. The verified files are
  copied to DIR/packages/<package id>/ and the session row is filled from the manifest.
- Ceremony: the system administrator opens it (inside the unlock window); each supervisor,
  logged in under their own account, enters their share card, checked on entry (a wrong share
  is named by its holder number; the same person twice is refused); the time release is
  fetched from the central server when `central_url` is set, or typed in as the code. The
  ceremony times out after `ceremony_timeout_s` and can be reset by hand; either way every
  entered share is forgotten.
- On success the paper (without keys) is decrypted into memory only (`ExamState`, kept on the
  app, never written to disk) and every candidate's variant is prepared. Each step is audited.
- A practice package (imported with `practice`) goes through the same steps: the dry run.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
import shutil
import tarfile
import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from sqlite_utils import Database

from paperpack import crypto, unlock, variants
from paperpack.canonical import canonical_hash, canonical_json
from paperpack.errors import PaperpackError
from paperpack.model import Paper, paper_to_dict
from paperpack.package import open_package, read_manifest_unverified
from paperpack.variants import Variant
from server import audit, keys
from server.central.release import open_release_response, sign_release_request
from server.clock import iso
from server.errors import CbtError
from server.problems import Problem
from server.venue import attempts
from server.venue.rules import RuleViolation, check_start_delay
from server.venue.staff import require_role
from server.venue.workspace import Venue, load_signing_key, load_venue, load_wrapping_key

log = logging.getLogger(__name__)
routes = web.RouteTableDef()

AUTHORITY_KEY_FILE = "authority-sign.pub"  # in DIR/keys/: the pinned central signing key
ADMIN = "system_administrator"
SUPERVISORS = ("chief_examiner", "invigilator")
MAX_BODY = 64 * 1024


class ImportRefused(CbtError):
    """A package cannot be imported; the message says why and what to do."""


# --- the unlocked exam, in memory only ----------------------------------------------------


@dataclass
class ExamState:
    """The decrypted paper and every candidate's variant. Never written to disk."""

    session_id: str
    package_id: str
    dry_run: bool
    paper: Paper  # without keys
    variant_secret: bytes
    forms: dict[str, str]  # ticket -> form, for papers with forms
    variants: dict[str, Variant] = field(default_factory=dict)
    bodies: dict[str, bytes] = field(default_factory=dict)  # ticket -> rendered paper JSON

    def variant(self, ticket: str) -> Variant:
        found = self.variants.get(ticket)
        if found is None:  # a roster row added after the unlock
            found = variants.build_variant(
                self.paper, self.variant_secret, self.session_id, ticket, self.forms.get(ticket)
            )
            self.variants[ticket] = found
        return found

    def paper_body(self, ticket: str) -> bytes:
        """This candidate's paper as the browser gets it (cached; opaque tokens only)."""
        body = self.bodies.get(ticket)
        if body is None:
            rendered = variants.render_variant(self.paper, self.variant(ticket))
            body = json.dumps(rendered, ensure_ascii=False, separators=(",", ":")).encode()
            self.bodies[ticket] = body
        return body

    def render_all(self) -> None:
        """Render every prepared variant ahead of the exam-start herd (runs in a thread)."""
        for ticket in list(self.variants):
            self.paper_body(ticket)

    def to_canonical(self, ticket: str, responses: Mapping[str, Any]) -> dict[str, Any]:
        """A browser's answers in canonical ids, or Problem 422 for an unknown token."""
        try:
            return variants.to_canonical(self.variant(ticket), responses)
        except variants.UnknownToken as exc:
            raise Problem(422, f"unknown-{exc.role}", str(exc)) from None


# --- the ceremony in progress -------------------------------------------------------------


@dataclass
class LiveState:
    """What the venue holds in memory only: the open ceremony and the unlocked exam."""

    ceremony: CeremonyState | None = None
    exam: ExamState | None = None
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)  # jobs not awaited


@dataclass
class CeremonyState:
    """One open ceremony: the unlock object holding the shares entered so far (in memory)."""

    ceremony_id: int
    session_id: str
    package_id: str
    dry_run: bool
    expires_at: datetime
    unlocker: unlock.Unlock
    holders: dict[int, str] = field(default_factory=dict)  # holder number -> staff login
    release_source: str | None = None

    def view(self, now: datetime) -> dict[str, Any]:
        return {
            "ceremony_id": self.ceremony_id,
            "session_id": self.session_id,
            "package_id": self.package_id,
            "dry_run": self.dry_run,
            "status": "open",
            "expires_at": iso(self.expires_at),
            "shares_entered": len(self.holders),
            "shares_needed": self.unlocker.threshold,
            "progress": self.unlocker.progress,
            "entered_by": sorted(self.holders.values()),
            "release": self.release_source,
            "server_time": iso(now),
        }


def authority_key_path(venue: Venue) -> Path:
    return venue.keys_dir / AUTHORITY_KEY_FILE


def pin_authority_key(venue: Venue, public_key_file: Path) -> None:
    """Pin the centre's signing key (first import); a different key later is refused."""
    text = public_key_file.read_text(encoding="utf-8").strip()
    crypto.read_signing_public(text, "authority signing key")
    target = authority_key_path(venue)
    if target.exists() and target.read_text(encoding="utf-8").strip() != text:
        raise ImportRefused(
            f"{public_key_file} differs from the authority key pinned in {target}: a venue "
            "trusts one authority; check where this key came from"
        )
    target.write_text(text + "\n", encoding="utf-8")


def authority_key(venue: Venue) -> crypto.Ed25519PublicKey:
    path = authority_key_path(venue)
    if not path.exists():
        raise ImportRefused(
            "no authority key is pinned yet: run `cbt venue import DIR PACKAGE --authority-pub "
            "FILE` once with the centre's public signing key"
        )
    return crypto.read_signing_public(path.read_text(encoding="utf-8").strip(), "authority key")


# --- import -------------------------------------------------------------------------------


def highest_version(db: Database, session_id: str) -> int:
    """The highest manifest version this venue has imported for `session_id` (0: none)."""
    row = db.execute(
        "SELECT MAX(manifest_version) FROM packages WHERE session_id = ?", [session_id]
    ).fetchone()
    return int(row[0] or 0)


def claimed_session(source: Path) -> str:
    """The session the (not yet verified) manifest names: only to look up versions seen."""
    try:
        return str(read_manifest_unverified(source).session_id)
    except PaperpackError as exc:
        raise ImportRefused(f"the package was refused: {exc}") from None


def verify_package(venue: Venue, source: Path, highest_seen: int) -> Any:
    """Open (verify) a package directory: signature, venue binding, fragments. No decryption."""
    try:
        return open_package(
            source,
            authority_key(venue),
            highest_seen_version=highest_seen,
            venue_id=venue.venue_id,
        )
    except PaperpackError as exc:
        raise ImportRefused(f"the package was refused: {exc}") from None


def store_package_files(venue: Venue, source: Path, package_id: str) -> Path:
    """Copy the verified package files to DIR/packages/<package id>/ (still encrypted)."""
    target = venue.packages_dir / package_id
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target)
    return target


def record_import(
    db: Database,
    manifest: Mapping[str, Any],
    directory: str,
    count: int,
    size: int,
    practice: bool,
    actor: str,
    now: datetime,
) -> dict[str, Any]:
    """The packages row and the session's schedule from the manifest, audited."""
    package_id = manifest["package_id"]
    db.table("packages").upsert(
        {
            "package_id": package_id,
            "session_id": manifest["session_id"],
            "venue_id": manifest["venue_id"],
            "kind": "practice" if practice else "real",
            "manifest_version": manifest["manifest_version"],
            "manifest": canonical_json(dict(manifest)).decode(),
            "directory": directory,
            "fragment_count": count,
            "size_bytes": size,
            "imported_at": iso(now),
            "imported_by": actor,
        },
        pk="package_id",
    )
    schedule = {
        "session_id": manifest["session_id"],
        "subject": manifest["subject_code"],
        "title": manifest["subject_name"],
        "paper_kind": manifest["kind"],
        "package_id": package_id,
        "window_not_before": iso(datetime.fromisoformat(manifest["window"]["not_before"])),
        "window_not_after": iso(datetime.fromisoformat(manifest["window"]["not_after"])),
        "starts_at": iso(datetime.fromisoformat(manifest["start"])),
        "duration_ms": manifest["duration_minutes"] * 60_000,
        "rules": canonical_json(manifest.get("rules") or {}).decode(),
    }
    db.table("sessions").upsert(schedule, pk="session_id")
    audit.record(
        db,
        actor,
        "package.imported",
        f"session:{manifest['session_id']}",
        {
            "package_id": package_id,
            "manifest_version": manifest["manifest_version"],
            "fragments": count,
            "practice": practice,
        },
        now=now,
    )
    return {
        "package_id": package_id,
        "session_id": manifest["session_id"],
        "practice": practice,
        "starts_at": schedule["starts_at"],
        "window": {
            "not_before": schedule["window_not_before"],
            "not_after": schedule["window_not_after"],
        },
    }


def import_package(
    venue: Venue, db: Database, source: Path, *, practice: bool, actor: str, now: datetime
) -> dict[str, Any]:
    """Verify `source` and store it: the one import path of the CLI and the API."""
    opened = verify_package(venue, source, highest_version(db, claimed_session(source)))
    manifest = opened.manifest.raw
    target = store_package_files(venue, source, manifest["package_id"])
    files = [p for p in target.iterdir() if p.is_file()]
    size = sum(p.stat().st_size for p in files if p.name.startswith("fragment"))
    count = sum(1 for p in files if p.name.startswith("fragment"))
    directory = str(target.relative_to(venue.directory))
    return record_import(db, manifest, directory, count, size, practice, actor, now)


def unpack_upload(data: bytes, into: Path) -> Path:
    """Extract an uploaded tar or zip safely (no absolute paths, no '..', no links)."""
    if zipfile.is_zipfile(io.BytesIO(data)):
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for info in archive.infolist():
                _check_member(info.filename)
            archive.extractall(into)  # noqa: S202 - every member name was checked above
    else:
        try:
            with tarfile.open(fileobj=io.BytesIO(data)) as archive:
                archive.extractall(into, filter="data")
        except tarfile.TarError as exc:
            raise ImportRefused(f"the upload is neither a zip nor a tar archive ({exc})") from None
    manifests = list(into.rglob("manifest.json"))
    if len(manifests) != 1:
        raise ImportRefused("the archive must hold exactly one package (one manifest.json)")
    return manifests[0].parent


def _check_member(name: str) -> None:
    if name.startswith(("/", "\\")) or ".." in Path(name).parts:
        raise ImportRefused(f"the archive member {name!r} points outside the package")


async def _import_via_thread(
    app: web.Application, source: Path, practice: bool, actor: str
) -> dict[str, Any]:
    venue = load_venue(app[keys.SETTINGS].venue_dir)
    now = app[keys.CLOCK].now()
    session_id = await asyncio.to_thread(claimed_session, source)
    version = await app[keys.STORE].read(highest_version, session_id)
    opened = await asyncio.to_thread(verify_package, venue, source, version)
    manifest = opened.manifest.raw
    target = await asyncio.to_thread(store_package_files, venue, source, manifest["package_id"])
    fragments = [p for p in target.iterdir() if p.is_file() and p.name.startswith("fragment")]
    size = sum(p.stat().st_size for p in fragments)
    directory = str(target.relative_to(venue.directory))
    return await app[keys.STORE].write(
        record_import, manifest, directory, len(fragments), size, practice, actor, now
    )


@routes.post("/api/v1/staff/packages", name="import_package")
async def post_package(request: web.Request) -> web.Response:
    """Import a package: an uploaded tar/zip body, or JSON {"path": "...", "practice": bool}
    naming a directory on this server. Verified only; nothing is decrypted."""
    staff = await require_role(request, ADMIN)
    practice = request.query.get("practice") in {"1", "true"}
    try:
        if request.content_type == "application/json":
            body = await attempts.read_json_object(request, MAX_BODY)
            path = Path(attempts.require_field(body, "path", str))
            practice = bool(body.get("practice", practice))
            if not (path / "manifest.json").is_file():
                raise ImportRefused(f"{path} is not a package directory (no manifest.json)")
            result = await _import_via_thread(request.app, path, practice, staff.login)
        else:
            data = await request.read()
            with tempfile.TemporaryDirectory() as tmp:
                source = await asyncio.to_thread(unpack_upload, data, Path(tmp))
                result = await _import_via_thread(request.app, source, practice, staff.login)
    except ImportRefused as exc:
        raise Problem(422, "package-refused", str(exc)) from None
    return web.json_response(result, status=201)


def list_packages(db: Database) -> list[dict[str, Any]]:
    return list(
        db.query(
            "SELECT package_id, session_id, kind, manifest_version, fragment_count, size_bytes,"
            " imported_at, imported_by FROM packages ORDER BY imported_at"
        )
    )


@routes.get("/api/v1/staff/packages", name="packages")
async def get_packages(request: web.Request) -> web.Response:
    """Imported packages (still encrypted)."""
    await require_role(request, ADMIN, *SUPERVISORS)
    return web.json_response(await request.app[keys.STORE].read(list_packages))


# --- the ceremony -------------------------------------------------------------------------


def latest_package(db: Database, session_id: str) -> dict[str, Any]:
    rows = list(
        db.query(
            "SELECT p.*, s.window_not_before, s.window_not_after FROM packages p"
            " JOIN sessions s ON s.session_id = p.session_id WHERE p.session_id = ?"
            " ORDER BY p.manifest_version DESC LIMIT 1",
            [session_id],
        )
    )
    if not rows:
        raise Problem(
            409, "no-package", f"no package is imported for session {session_id}: import it first"
        )
    return rows[0]


def check_window(package: Mapping[str, Any], now: datetime) -> None:
    opens = attempts.parse_time(package["window_not_before"])
    closes = attempts.parse_time(package["window_not_after"])
    if not opens <= now < closes:
        raise Problem(
            409,
            "outside-window",
            f"the unlock window is {iso(opens)} to {iso(closes)}; it is {iso(now)}: the paper "
            "can only be unlocked inside it (art. 24)",
        )


def start_ceremony(
    db: Database, package: Mapping[str, Any], actor: str, now: datetime, expires: datetime
) -> int:
    cursor = db.execute(
        "INSERT INTO ceremonies (session_id, package_id, dry_run, status, opened_by, opened_at,"
        " expires_at) VALUES (?, ?, ?, 'open', ?, ?, ?)",
        [
            package["session_id"],
            package["package_id"],
            int(package["kind"] == "practice"),
            actor,
            iso(now),
            iso(expires),
        ],
    )
    ceremony_id = int(cursor.lastrowid or 0)
    audit.record(
        db,
        actor,
        "ceremony.opened",
        f"session:{package['session_id']}",
        {
            "ceremony_id": ceremony_id,
            "package_id": package["package_id"],
            "dry_run": package["kind"] == "practice",
        },
        now=now,
    )
    return ceremony_id


def end_ceremony(db: Database, ceremony_id: int, status: str, actor: str, now: datetime) -> None:
    db.execute(
        "UPDATE ceremonies SET status = ?, closed_at = ? WHERE ceremony_id = ? AND status = 'open'",
        [status, iso(now), ceremony_id],
    )
    audit.record(db, actor, f"ceremony.{status}", f"ceremony:{ceremony_id}", {}, now=now)


def record_share(
    db: Database, ceremony_id: int, holder: int, staff_login: str, now: datetime
) -> None:
    staff_id = db.execute("SELECT staff_id FROM staff WHERE login = ?", [staff_login]).fetchone()
    db.execute(
        "INSERT INTO ceremony_shares (ceremony_id, holder_no, staff_id, entered_at)"
        " VALUES (?, ?, ?, ?)",
        [ceremony_id, holder, staff_id[0] if staff_id else 0, iso(now)],
    )
    audit.record(
        db,
        staff_login,
        "ceremony.share_entered",
        f"ceremony:{ceremony_id}",
        {"holder_no": holder},
        now=now,
    )


def record_release(db: Database, ceremony_id: int, source: str, actor: str, now: datetime) -> None:
    db.execute(
        "UPDATE ceremonies SET release_source = ? WHERE ceremony_id = ?", [source, ceremony_id]
    )
    audit.record(
        db,
        actor,
        "ceremony.release_entered",
        f"ceremony:{ceremony_id}",
        {"source": source},
        now=now,
    )


def record_unlocked(
    db: Database, state: CeremonyState, paper_hash: str, digest: str, count: int, now: datetime
) -> None:
    db.execute(
        "UPDATE ceremonies SET status = 'unlocked', closed_at = ? WHERE ceremony_id = ?",
        [iso(now), state.ceremony_id],
    )
    db.execute(
        "UPDATE sessions SET status = 'unlocked', unlocked_at = ? WHERE session_id = ?",
        [iso(now), state.session_id],
    )
    audit.record(
        db,
        "system",
        "ceremony.unlocked",
        f"session:{state.session_id}",
        {
            "ceremony_id": state.ceremony_id,
            "paper_hash": paper_hash,
            "variants": count,
            "variant_digest": digest,
            "dry_run": state.dry_run,
            "holders": sorted(state.holders),
        },
        now=now,
    )


def roster_forms(db: Database, session_id: str) -> dict[str, str | None]:
    return {
        row[0]: row[1]
        for row in db.execute(
            "SELECT ticket, form_id FROM candidates WHERE session_id = ?", [session_id]
        )
    }


def open_exam(state: CeremonyState, roster: Mapping[str, str | None], now: datetime) -> ExamState:
    """Decrypt the paper into memory and prepare every candidate's variant (CPU: a thread)."""
    unlocked = state.unlocker.open(now)
    paper: Paper = unlocked.paper
    secret = bytes(unlocked.variant_secret)
    forms = {t: f for t, f in roster.items() if f}
    exam = ExamState(
        session_id=state.session_id,
        package_id=state.package_id,
        dry_run=state.dry_run,
        paper=paper,
        variant_secret=secret,
        forms=forms,
    )
    exam.variants = variants.build_variants(paper, secret, state.session_id, roster, forms)
    return exam


async def _expire_if_due(app: web.Application, now: datetime) -> bool:
    """End the ceremony if it has timed out (its shares are forgotten); True if it did."""
    state = app[keys.LIVE].ceremony
    if state is None or now < state.expires_at:
        return False
    app[keys.LIVE].ceremony = None
    state.unlocker.close()
    await app[keys.STORE].write(end_ceremony, state.ceremony_id, "expired", "system", now)
    return True


async def _current(app: web.Application, now: datetime) -> CeremonyState:
    """The open ceremony, or Problem 409 saying it timed out or was never opened."""
    if await _expire_if_due(app, now):
        raise Problem(
            409,
            "ceremony-expired",
            "the ceremony timed out and every entered share was forgotten: the administrator "
            "opens a new one",
        )
    state = app[keys.LIVE].ceremony
    if state is None:
        raise Problem(409, "no-ceremony", "no unlock ceremony is open: the administrator opens one")
    return state


async def _finish_if_complete(app: web.Application, state: CeremonyState) -> dict[str, Any]:
    """Open the paper once enough shares and the release are in; else report progress."""
    now = app[keys.CLOCK].now()
    unlocker = state.unlocker
    if len(unlocker.holders_entered) < unlocker.threshold or not unlocker.has_release:
        return state.view(now)
    roster = await app[keys.STORE].read(roster_forms, state.session_id)
    try:
        exam = await asyncio.to_thread(open_exam, state, roster, now)
    except PaperpackError as exc:
        raise Problem(409, "unlock-failed", str(exc)) from None
    paper_hash = canonical_hash(paper_to_dict(exam.paper, with_keys=False, with_assets=False))
    digest = variants.variant_digest(exam.variants.values())
    await app[keys.STORE].write(record_unlocked, state, paper_hash, digest, len(exam.variants), now)
    app[keys.LIVE].exam = exam
    app[keys.LIVE].ceremony = None
    unlocker.close()
    # Render every paper before the exam-start herd arrives; requests render on demand meanwhile.
    _background(app, asyncio.to_thread(exam.render_all))
    log.info("ceremony.unlocked session=%s variants=%d", state.session_id, len(exam.variants))
    return {**state.view(now), "status": "unlocked", "variants": len(exam.variants)}


def _background(app: web.Application, job: Any) -> None:
    """Run `job` without awaiting it; the app keeps a reference until it is done."""
    tasks = app[keys.LIVE].tasks
    task = asyncio.ensure_future(job)
    tasks.add(task)
    task.add_done_callback(tasks.discard)


@routes.post("/api/v1/staff/ceremony", name="open_ceremony")
async def post_ceremony(request: web.Request) -> web.Response:
    """Open the unlock ceremony for a session (system administrator, inside the window)."""
    staff = await require_role(request, ADMIN)
    app = request.app
    body = await attempts.read_json_object(request, MAX_BODY)
    session_id = attempts.require_field(body, "session_id", str)
    now = app[keys.CLOCK].now()
    await _expire_if_due(app, now)
    if app[keys.LIVE].ceremony is not None:
        raise Problem(409, "ceremony-open", "a ceremony is already open: reset it first")
    package = await app[keys.STORE].read(latest_package, session_id)
    check_window(package, now)
    venue = load_venue(app[keys.SETTINGS].venue_dir)
    try:
        opened = await asyncio.to_thread(
            verify_package, venue, venue.directory / package["directory"], 0
        )
        unlocker = unlock.Unlock(opened, load_wrapping_key(venue), now)
    except (ImportRefused, PaperpackError) as exc:
        raise Problem(409, "package-refused", str(exc)) from None
    expires = now + timedelta(seconds=app[keys.SETTINGS].ceremony_timeout_s)
    ceremony_id = await app[keys.STORE].write(start_ceremony, package, staff.login, now, expires)
    state = CeremonyState(
        ceremony_id=ceremony_id,
        session_id=session_id,
        package_id=package["package_id"],
        dry_run=package["kind"] == "practice",
        expires_at=expires,
        unlocker=unlocker,
    )
    app[keys.LIVE].ceremony = state
    return web.json_response(state.view(now), status=201)


@routes.get("/api/v1/staff/ceremony", name="ceremony")
async def get_ceremony(request: web.Request) -> web.Response:
    """The ceremony's progress ("2 of 3"), or whether the paper is unlocked."""
    await require_role(request, ADMIN, *SUPERVISORS)
    app = request.app
    now = app[keys.CLOCK].now()
    await _expire_if_due(app, now)
    state = app[keys.LIVE].ceremony
    if state is not None:
        return web.json_response(state.view(now))
    exam = app[keys.LIVE].exam
    if exam is not None:
        return web.json_response(
            {
                "status": "unlocked",
                "session_id": exam.session_id,
                "dry_run": exam.dry_run,
                "variants": len(exam.variants),
                "server_time": iso(now),
            }
        )
    return web.json_response({"status": "none", "server_time": iso(now)})


@routes.post("/api/v1/staff/ceremony/shares", name="enter_share")
async def post_share(request: web.Request) -> web.Response:
    """A supervisor enters their share card under their own login; checked on entry."""
    staff = await require_role(request, *SUPERVISORS)
    app = request.app
    body = await attempts.read_json_object(request, MAX_BODY)
    card = attempts.require_field(body, "share", str)
    now = app[keys.CLOCK].now()
    state = await _current(app, now)
    if staff.login in state.holders.values():
        raise Problem(
            409,
            "same-person",
            f"{staff.login} has already entered a share in this ceremony: "
            "each share must come from a different supervisor (art. 23(4))",
        )
    try:
        holder = state.unlocker.add_share(card, staff.login)
    except PaperpackError as exc:
        audit_slug = "share-duplicate" if "Duplicate" in type(exc).__name__ else "share-rejected"
        raise Problem(422, audit_slug, str(exc), holder=getattr(exc, "holder", None)) from None
    holder_no = int(holder)
    state.holders[holder_no] = staff.login
    await app[keys.STORE].write(record_share, state.ceremony_id, holder_no, staff.login, now)
    return web.json_response(await _finish_if_complete(app, state))


@routes.post("/api/v1/staff/ceremony/release", name="enter_release")
async def post_release(request: web.Request) -> web.Response:
    """The time release: {"code": "..."} typed in, or {} to fetch it from the central server."""
    staff = await require_role(request, ADMIN, "chief_examiner")
    app = request.app
    body = await attempts.read_json_object(request, MAX_BODY)
    now = app[keys.CLOCK].now()
    state = await _current(app, now)
    code = body.get("code")
    if code is not None and not isinstance(code, str):
        raise Problem(422, "invalid-field", "field 'code' must be a string")
    if code:
        release: Any = code
        source = "code"
    else:
        release = await fetch_release_for(app, state.session_id, now)
        source = "online"
    try:
        state.unlocker.add_release(release, now)
    except PaperpackError as exc:
        status = 409 if type(exc).__name__ == "OutsideWindow" else 422
        raise Problem(status, "release-rejected", str(exc)) from None
    state.release_source = source
    await app[keys.STORE].write(record_release, state.ceremony_id, source, staff.login, now)
    return web.json_response(await _finish_if_complete(app, state))


@routes.post("/api/v1/staff/ceremony/reset", name="reset_ceremony")
async def post_reset(request: web.Request) -> web.Response:
    """Reset the ceremony by hand: every entered share is forgotten."""
    staff = await require_role(request, ADMIN, "chief_examiner")
    app = request.app
    now = app[keys.CLOCK].now()
    state, app[keys.LIVE].ceremony = app[keys.LIVE].ceremony, None
    if state is None:
        raise Problem(409, "no-ceremony", "no unlock ceremony is open")
    state.unlocker.close()
    await app[keys.STORE].write(end_ceremony, state.ceremony_id, "reset", staff.login, now)
    return web.json_response({"status": "reset", "ceremony_id": state.ceremony_id})


# --- the online time release --------------------------------------------------------------


async def fetch_release(
    central_url: str, body: Mapping[str, str], timeout_s: float
) -> dict[str, Any]:
    """POST the signed request (`server.central.release.sign_release_request`) to the central
    server; returns its JSON answer (the release record wrapped to this venue's key)."""
    url = central_url.rstrip("/") + "/api/v1/release"
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as client,
            client.post(url, json=dict(body)) as response,
        ):
            if response.status != 200:
                detail = (await response.text())[:300]
                raise Problem(
                    502,
                    "release-unavailable",
                    f"the central server refused the release "
                    f"({response.status}): {detail}; ask for the release code by phone",
                )
            record: dict[str, Any] = await response.json()
            return record
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise Problem(
            502,
            "release-unavailable",
            f"the central server at {central_url} could not be "
            f"reached ({type(exc).__name__}); ask for the release code by phone",
        ) from None


async def fetch_release_for(app: web.Application, session_id: str, now: datetime) -> Any:
    settings = app[keys.SETTINGS]
    if not settings.central_url:
        raise Problem(
            422,
            "release-code-needed",
            "this venue has no central server configured: type in "
            "the release code read out by the centre",
        )
    venue = load_venue(settings.venue_dir)
    body = sign_release_request(load_signing_key(venue), session_id, venue.venue_id, iso(now))
    answer = await fetch_release(settings.central_url, body, settings.central_timeout_s)
    try:
        return open_release_response(answer, load_wrapping_key(venue))
    except (KeyError, ValueError, TypeError, PaperpackError) as exc:
        raise Problem(
            502,
            "release-unavailable",
            f"the central server's answer cannot be opened by this "
            f"venue ({type(exc).__name__}); ask for the release code by phone",
        ) from None


# --- start delays (art. 31) ---------------------------------------------------------------


def set_delay(
    db: Database,
    session_id: str,
    delay_ms: int,
    reason: str,
    approval: str | None,
    actor: str,
    now: datetime,
) -> dict[str, Any]:
    changed = db.execute(
        "UPDATE sessions SET start_delay_ms = ? WHERE session_id = ?", [delay_ms, session_id]
    ).rowcount
    if not changed:
        raise Problem(404, "unknown-session", f"there is no session {session_id}")
    db.execute(
        "INSERT INTO start_delays (session_id, delay_ms, reason, approval, decided_by,"
        " decided_at) VALUES (?, ?, ?, ?, ?, ?)",
        [session_id, delay_ms, reason, approval, actor, iso(now)],
    )
    audit.record(
        db,
        actor,
        "session.delayed",
        f"session:{session_id}",
        {"delay_ms": delay_ms, "reason": reason, "approved_by_centre": approval is not None},
        now=now,
    )
    return {"session_id": session_id, "start_delay_ms": delay_ms}


@routes.post("/api/v1/staff/sessions/{session_id}/delay", name="delay_start")
async def post_delay(request: web.Request) -> web.Response:
    """Delay the start: {"delay_minutes", "reason", "approval"?}; over 30 min needs the
    centre's signed approval code (base64 Ed25519 signature, see rules.delay_approval_message)."""
    staff = await require_role(request, "chief_examiner")
    app = request.app
    session_id = request.match_info["session_id"]
    body = await attempts.read_json_object(request, MAX_BODY)
    minutes = attempts.require_field(body, "delay_minutes", int)
    reason = attempts.require_field(body, "reason", str)
    approval = body.get("approval")
    if approval is not None and not isinstance(approval, str):
        raise Problem(422, "invalid-field", "field 'approval' must be a string")
    venue = load_venue(app[keys.SETTINGS].venue_dir)
    signature = _decode_approval(approval)

    def verify(message: bytes, sig: bytes) -> None:
        crypto.verify(authority_key(venue), sig, message)

    try:
        check_start_delay(session_id, venue.venue_id, minutes, signature, verify)
    except RuleViolation as exc:
        raise Problem(403, exc.slug, str(exc)) from None
    now = app[keys.CLOCK].now()
    result = await app[keys.STORE].write(
        set_delay, session_id, minutes * 60_000, reason, approval, staff.login, now
    )
    return web.json_response(result)


def _decode_approval(approval: str | None) -> bytes | None:
    if not approval:
        return None
    try:
        return base64.b64decode(approval.strip(), validate=True)
    except ValueError:
        return b"not-base64"


def setup(app: web.Application) -> None:
    """Nothing is unlocked when the server starts: the paper lives in memory only."""
    app[keys.LIVE] = LiveState()
