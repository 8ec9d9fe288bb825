"""Package import: verify a package directory and store it, decrypting nothing.

A package arrives as a directory on this server (CLI `cbt venue import`, or the API with a
path) or as an uploaded tar/zip. `paperpack.package.open_package` checks it against the
authority key pinned in DIR/keys/authority-sign.pub: the manifest signature, the venue
binding, every fragment's header and hash, and the manifest version (no rollback). The
verified files are copied to DIR/packages/<package id>/ (still encrypted).

Receiving is a two-person act (art. 23(4)): the system administrator imports (the package is
staged, `package_imports` status `pending`, with the SHA-256 of its manifest), and another
staff member confirms under their own login; only then is it in force and the session's
schedule (start, duration, kind, rules, unlock window) filled from the signed manifest. The
CLI takes both logins and passwords at once. The package must fit the session it names
(art. 24): the roster's subject, the paper of the version in force, and no replacement once
the session is unlocked. Whether it is the dry run's package (art. 21(3)) is the manifest's
`practice`, signed by the centre; a practice session is kept apart from real ones.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
import tempfile
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from aiohttp import web
from sqlite_utils import Database

from paperpack import crypto
from paperpack.canonical import canonical_json
from paperpack.errors import PaperpackError
from paperpack.package import open_package, read_manifest_unverified
from server import audit
from server.clock import iso
from server.errors import CbtError
from server.http import read_json_object, require_field
from server.problems import Problem
from server.venue import keys
from server.venue.package_upload import ArchiveRefused, save_upload, unpack_upload
from server.venue.staff import require_role
from server.venue.workspace import Venue, load_venue

routes = web.RouteTableDef()

AUTHORITY_KEY_FILE = "authority-sign.pub"  # in DIR/keys/: the pinned central signing key
UPLOAD_KEY_FILE = "authority-upload.pub"  # in DIR/keys/: the centre's X25519 key, from the manifest
ADMIN = "system_administrator"
STAFF = ("system_administrator", "chief_examiner", "invigilator")
MAX_BODY = 64 * 1024


class ImportRefused(CbtError):
    """A package cannot be imported; the message says why and what to do."""


class SecondPersonNeeded(CbtError):
    """The same login tried to import and confirm a package: it takes two people."""


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
        opened = open_package(
            source,
            authority_key(venue),
            highest_seen_version=highest_seen,
            venue_id=venue.venue_id,
        )
    except PaperpackError as exc:
        raise ImportRefused(f"the package was refused: {exc}") from None
    pin_upload_key(venue, opened.manifest.upload_key)
    return opened


def pin_upload_key(venue: Venue, key_text: str | None) -> None:
    """Pin the centre's upload key from a verified manifest (first package that carries one),
    so the outbox can seal and send answers home by itself; a different key later is refused,
    like a different authority signing key."""
    if key_text is None:  # a package made before the manifest carried it
        return
    target = venue.keys_dir / UPLOAD_KEY_FILE
    if target.exists():
        pinned = target.read_text(encoding="ascii").strip()
        if pinned != key_text:
            raise ImportRefused(
                f"the package names another centre upload key than the one pinned in {target}:"
                " a venue sends its answers to one centre; check where this package came from"
            )
        return
    crypto.read_wrapping_public(key_text, "centre upload")
    target.write_text(key_text + "\n", encoding="ascii")


def store_package_files(venue: Venue, source: Path, package_id: str) -> Path:
    """Copy the verified package files to DIR/packages/<package id>/ (still encrypted)."""
    target = venue.packages_dir / package_id
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target)
    return target


def manifest_sha256(source: Path) -> str:
    """The package hash recorded with the import: SHA-256 of the signed manifest.json."""
    return hashlib.sha256((source / "manifest.json").read_bytes()).hexdigest()


def is_practice(db: Database, session_id: str) -> bool:
    """Whether the package in force for `session_id` is a practice package (the dry run)."""
    row = db.execute(
        "SELECT p.kind FROM sessions s JOIN packages p ON p.package_id = s.package_id"
        " WHERE s.session_id = ?",
        [session_id],
    ).fetchone()
    return bool(row and row[0] == "practice")


def check_fits_session(db: Database, manifest: Mapping[str, Any]) -> None:
    """Refuse a package that does not belong to the session it names (art. 24): another
    subject than its roster's, another paper or kind than the package in force, or any
    package once the session has been unlocked."""
    session_id, subject = manifest["session_id"], manifest["subject_code"]
    kind = "practice" if manifest.get("practice") else "real"
    row = db.execute(
        "SELECT subject, status, unlocked_at, package_id FROM sessions WHERE session_id = ?",
        [session_id],
    ).fetchone()
    if row is None:
        return
    known_subject, status, unlocked_at, in_force = row
    if known_subject != subject:
        raise ImportRefused(
            f"this package is for subject {subject} (session {session_id}, paper "
            f"{manifest['paper_id']}), but session {session_id} at this venue is for subject "
            f"{known_subject} (its roster was imported for {known_subject}): it is not this "
            f"session's package; ask the centre for session {session_id}'s {known_subject} package"
        )
    if in_force == manifest["package_id"]:
        return  # the package in force, received again: nothing is replaced
    if unlocked_at or status != "scheduled":
        raise ImportRefused(
            f"session {session_id} was unlocked at {unlocked_at or '(unknown)'}: a new manifest "
            "version may replace the package only before the unlock"
        )
    if in_force is None:
        return
    current = db.execute(
        "SELECT kind, manifest_version, manifest FROM packages WHERE package_id = ?", [in_force]
    ).fetchone()
    if current is None:
        return
    if current[0] != kind:
        raise ImportRefused(
            f"session {session_id} already has a {current[0]} package and this one is "
            f"{kind}: a dry run's session is kept apart from a real one (art. 21(3)); ask the "
            "centre to pack the practice package under its own session id"
        )
    paper = json.loads(current[2]).get("paper_id")
    if paper != manifest["paper_id"]:
        raise ImportRefused(
            f"this package carries paper {manifest['paper_id']}, but session {session_id}'s "
            f"package in force (manifest version {current[1]}) carries paper {paper}: a new "
            "version may not change the paper; ask the centre"
        )


def stage_import(
    db: Database, venue: Venue, opened: Any, stored: Path, digest: str, actor: str, now: datetime
) -> dict[str, Any]:
    """Record a verified, stored package as waiting for a second person's confirmation."""
    manifest = opened.manifest.raw
    check_fits_session(db, manifest)
    files = [p for p in stored.iterdir() if p.is_file() and p.name.startswith("fragment")]
    db.execute(
        "UPDATE package_imports SET status = 'superseded' WHERE package_id = ?"
        " AND status = 'pending'",
        [manifest["package_id"]],
    )
    cursor = db.execute(
        "INSERT INTO package_imports (package_id, session_id, manifest_version, manifest_sha256,"
        " practice, manifest, directory, fragment_count, size_bytes, imported_by, imported_at,"
        " status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending')",
        [
            manifest["package_id"],
            manifest["session_id"],
            manifest["manifest_version"],
            digest,
            int(bool(manifest.get("practice"))),
            canonical_json(dict(manifest)).decode(),
            str(stored.relative_to(venue.directory)),
            len(files),
            sum(p.stat().st_size for p in files),
            actor,
            iso(now),
        ],
    )
    audit.record(
        db,
        actor,
        "package.import_staged",
        f"session:{manifest['session_id']}",
        {
            "package_id": manifest["package_id"],
            "manifest_version": manifest["manifest_version"],
            "manifest_sha256": digest,
            "practice": bool(manifest.get("practice")),
        },
        now=now,
    )
    return {
        "import_id": int(cursor.lastrowid or 0),
        "package_id": manifest["package_id"],
        "session_id": manifest["session_id"],
        "manifest_version": manifest["manifest_version"],
        "manifest_sha256": digest,
        "practice": bool(manifest.get("practice")),
        "status": "pending",
        "imported_by": actor,
        "imported_at": iso(now),
    }


def confirm_import(db: Database, package_id: str, confirmer: str, now: datetime) -> dict[str, Any]:
    """The second person confirms a staged import: the package comes into force (art. 23(4))."""
    row = db.execute(
        "SELECT import_id, imported_by, manifest, directory, fragment_count, size_bytes,"
        " manifest_sha256 FROM package_imports WHERE package_id = ? AND status = 'pending'"
        " ORDER BY import_id DESC LIMIT 1",
        [package_id],
    ).fetchone()
    if row is None:
        raise ImportRefused(
            f"no import of package {package_id} is waiting for confirmation: import it first"
        )
    import_id, importer, manifest_text, directory, count, size, digest = row
    if confirmer == importer:
        raise SecondPersonNeeded(
            f"{confirmer} imported this package: another staff member confirms it under their "
            "own login (art. 23(4))"
        )
    manifest = json.loads(manifest_text)
    check_fits_session(db, manifest)  # the session may have changed since it was staged
    if manifest["manifest_version"] < highest_version(db, manifest["session_id"]):
        raise ImportRefused(
            f"a newer manifest version than {manifest['manifest_version']} is already in force "
            f"for session {manifest['session_id']}: refused (no rollback)"
        )
    db.execute(
        "UPDATE package_imports SET status = 'replaced'"
        " WHERE session_id = ? AND status = 'in_force'",
        [manifest["session_id"]],
    )
    db.execute(
        "UPDATE package_imports SET status = 'in_force', confirmed_by = ?, confirmed_at = ?"
        " WHERE import_id = ?",
        [confirmer, iso(now), import_id],
    )
    return record_import(
        db, manifest, directory, count, size, importer, now, confirmed_by=confirmer, digest=digest
    )


def record_import(
    db: Database,
    manifest: Mapping[str, Any],
    directory: str,
    count: int,
    size: int,
    actor: str,
    now: datetime,
    *,
    confirmed_by: str,
    digest: str,
) -> dict[str, Any]:
    """The packages row and the session's schedule from the manifest, audited."""
    package_id = manifest["package_id"]
    practice = bool(manifest.get("practice"))
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
        confirmed_by,
        "package.imported",
        f"session:{manifest['session_id']}",
        {
            "package_id": package_id,
            "manifest_version": manifest["manifest_version"],
            "manifest_sha256": digest,
            "fragments": count,
            "practice": practice,
            "imported_by": actor,
            "confirmed_by": confirmed_by,
        },
        now=now,
    )
    return {
        "package_id": package_id,
        "session_id": manifest["session_id"],
        "manifest_version": manifest["manifest_version"],
        "manifest_sha256": digest,
        "practice": practice,
        "status": "in_force",
        "imported_by": actor,
        "confirmed_by": confirmed_by,
        "confirmed_at": iso(now),
        "starts_at": schedule["starts_at"],
        "window": {
            "not_before": schedule["window_not_before"],
            "not_after": schedule["window_not_after"],
        },
    }


def import_package(
    venue: Venue, db: Database, source: Path, *, actor: str, confirmed_by: str, now: datetime
) -> dict[str, Any]:
    """Verify `source`, store it and bring it into force in one go, for two people who have
    both proved who they are (the CLI asks both passwords; the demo sets its own venue up)."""
    opened = verify_package(venue, source, highest_version(db, claimed_session(source)))
    check_fits_session(db, opened.manifest.raw)
    digest = manifest_sha256(source)
    stored = store_package_files(venue, source, opened.manifest.raw["package_id"])
    staged = stage_import(db, venue, opened, stored, digest, actor, now)
    return confirm_import(db, staged["package_id"], confirmed_by, now)


async def _stage_via_thread(app: web.Application, source: Path, actor: str) -> dict[str, Any]:
    venue = load_venue(app[keys.SETTINGS].venue_dir)
    now = app[keys.CLOCK].now()
    session_id = await asyncio.to_thread(claimed_session, source)
    version = await app[keys.STORE].read(highest_version, session_id)
    opened = await asyncio.to_thread(verify_package, venue, source, version)
    await app[keys.STORE].read(check_fits_session, opened.manifest.raw)
    digest = await asyncio.to_thread(manifest_sha256, source)
    stored = await asyncio.to_thread(
        store_package_files, venue, source, opened.manifest.raw["package_id"]
    )
    return await app[keys.STORE].write(stage_import, venue, opened, stored, digest, actor, now)


PRACTICE_NOT_A_CHOICE = (
    "whether a package is a practice package (the dry run) is read from its signed manifest, "
    "not chosen at import: ask the centre for a package packed with `paperpack pack --practice`"
)


@routes.post("/api/v1/staff/packages", name="import_package")
async def post_package(request: web.Request) -> web.Response:
    """Import a package, first of two people (art. 23(4)): an uploaded tar/zip body, or JSON
    {"path": "..."} naming a directory on this server. Verified and stored (nothing is
    decrypted) but not in force until another staff member confirms it."""
    staff = await require_role(request, ADMIN)
    if "practice" in request.query:
        raise Problem(422, "practice-not-a-choice", PRACTICE_NOT_A_CHOICE)
    try:
        if request.content_type == "application/json":
            body = await read_json_object(request, MAX_BODY)
            if "practice" in body:
                raise Problem(422, "practice-not-a-choice", PRACTICE_NOT_A_CHOICE)
            path = Path(require_field(body, "path", str))
            if not (path / "manifest.json").is_file():
                raise ImportRefused(f"{path} is not a package directory (no manifest.json)")
            result = await _stage_via_thread(request.app, path, staff.login)
        else:
            with tempfile.TemporaryDirectory() as tmp:
                upload = Path(tmp) / "upload"
                await save_upload(request, upload, request.app[keys.SETTINGS].max_package_bytes)
                source = await asyncio.to_thread(unpack_upload, upload, Path(tmp) / "package")
                result = await _stage_via_thread(request.app, source, staff.login)
    except (ImportRefused, ArchiveRefused) as exc:
        raise Problem(422, "package-refused", str(exc)) from None
    return web.json_response(result, status=201)


@routes.post("/api/v1/staff/packages/{package_id}/confirm", name="confirm_package")
async def post_confirm(request: web.Request) -> web.Response:
    """The second person confirms an import under their own login: the package comes into
    force, recorded with its hash, both logins and the time (art. 23(4))."""
    staff = await require_role(request, *STAFF)
    package_id = request.match_info["package_id"]
    now = request.app[keys.CLOCK].now()
    try:
        result = await request.app[keys.STORE].write(confirm_import, package_id, staff.login, now)
    except SecondPersonNeeded as exc:
        raise Problem(409, "second-person-needed", str(exc)) from None
    except ImportRefused as exc:
        raise Problem(422, "package-refused", str(exc)) from None
    return web.json_response(result)


def list_packages(db: Database) -> list[dict[str, Any]]:
    """Every import, newest last: pending (waiting for the second person), in force,
    replaced by a newer version, or superseded by a re-import."""
    return list(
        db.query(
            "SELECT package_id, session_id, CASE practice WHEN 1 THEN 'practice' ELSE 'real' END"
            " AS kind, manifest_version, manifest_sha256, fragment_count, size_bytes, status,"
            " imported_at, imported_by, confirmed_at, confirmed_by FROM package_imports"
            " ORDER BY import_id"
        )
    )


@routes.get("/api/v1/staff/packages", name="packages")
async def get_packages(request: web.Request) -> web.Response:
    """Imported packages (still encrypted)."""
    await require_role(request, *STAFF)
    return web.json_response(await request.app[keys.STORE].read(list_packages))
