"""Package import: verify a package directory and store it, decrypting nothing.

A package arrives as a directory on this server (CLI `cbt venue import`, or the API with a
path) or as an uploaded tar/zip. `paperpack.package.open_package` checks it against the
authority key pinned in DIR/keys/authority-sign.pub: the manifest signature, the venue
binding, every fragment's header and hash, and the manifest version (no rollback). The
verified files are copied to DIR/packages/<package id>/ (still encrypted) and the session's
schedule (start, duration, kind, rules, unlock window) is filled from the signed manifest.
A package imported with `practice` is the dry run's package (art. 21(3)).
"""

from __future__ import annotations

import asyncio
import shutil
import tarfile
import tempfile
import zipfile
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


def unpack_upload(upload: Path, into: Path) -> Path:
    """Extract an uploaded tar or zip safely (no absolute paths, no '..', no links)."""
    if zipfile.is_zipfile(upload):
        with zipfile.ZipFile(upload) as archive:
            for info in archive.infolist():
                _check_member(info.filename)
            archive.extractall(into)  # noqa: S202 - every member name was checked above
    else:
        try:
            with tarfile.open(upload) as archive:
                archive.extractall(into, filter="data")
        except tarfile.TarError as exc:
            raise ImportRefused(f"the upload is neither a zip nor a tar archive ({exc})") from None
    manifests = list(into.rglob("manifest.json"))
    if len(manifests) != 1:
        raise ImportRefused("the archive must hold exactly one package (one manifest.json)")
    return manifests[0].parent


async def save_upload(request: web.Request, target: Path, max_bytes: int) -> None:
    """Stream the request body to `target` (memory stays bounded), or Problem 413."""
    size = 0
    with target.open("wb") as out:
        async for chunk in request.content.iter_chunked(1 << 20):
            size += len(chunk)
            if size > max_bytes:
                raise Problem(
                    413,
                    "too-large",
                    f"the package is larger than {max_bytes} bytes; copy it "
                    "to the server and import it by path instead",
                )
            await asyncio.to_thread(out.write, chunk)


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
            body = await read_json_object(request, MAX_BODY)
            path = Path(require_field(body, "path", str))
            practice = body.get("practice", practice)
            if not isinstance(practice, bool):
                raise Problem(422, "invalid-field", "field 'practice' must be true or false")
            if not (path / "manifest.json").is_file():
                raise ImportRefused(f"{path} is not a package directory (no manifest.json)")
            result = await _import_via_thread(request.app, path, practice, staff.login)
        else:
            with tempfile.TemporaryDirectory() as tmp:
                upload = Path(tmp) / "upload"
                await save_upload(request, upload, request.app[keys.SETTINGS].max_package_bytes)
                source = await asyncio.to_thread(unpack_upload, upload, Path(tmp) / "package")
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
    await require_role(request, *STAFF)
    return web.json_response(await request.app[keys.STORE].read(list_packages))
