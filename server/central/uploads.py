"""The resumable upload endpoints (in the spirit of tus) and acceptance of packages.

    POST   /api/v1/uploads              {package_sha256, size, venue_id, head} -> upload state;
                                        the same hash again returns the same upload (or its receipt)
    PATCH  /api/v1/uploads/{id}         body = bytes at `Upload-Offset`,
                                        `Upload-Checksum: sha256 <base64>`
                                        -> 204 with the new `Upload-Offset`; a wrong offset is 409
    HEAD   /api/v1/uploads/{id}         -> `Upload-Offset`, `Upload-Length` (resume after a cut)
    GET    /api/v1/uploads/{id}         -> the state as JSON, with the receipt once accepted
    POST   /api/v1/uploads/{id}/finish  -> verify hash, signature and payload,
                                        then the signed receipt

Every call is signed by the venue (`server.central.venue_auth`, issue 16, F1): unsigned calls
get 401 before any body is read; an upload is its venue's alone; `head` (base64 of the
package's magic, header and signature) is verified against the venue's registered key, and
its sizes against `size`, before the upload exists, so no byte is stored for a package the
venue did not sign; each venue's unfinished uploads are bounded in number and bytes.

The upload id IS the package's SHA-256, so a retried create, chunk or finish can never make a
second copy. A chunk is stored whole or not at all (its checksum is checked first), so a cut
connection leaves the upload at the last whole chunk. Nothing is accepted before the venue's
signature, the payload hash and the unwrap of the content key with the centre's key have
all checked out (the payload's AEAD is checked again whenever it is read).

Throughput: a chunk's body is kept as the pieces it arrived in and handed to the store so
(never joined into one buffer here), and every hash, of a chunk or of a whole package, runs
on a worker thread, so the event loop keeps receiving the other uploads meanwhile.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import re
from typing import Any

from aiohttp import web

from paperpack import crypto
from paperpack.canonical import DuplicateKey
from server.central import keys
from server.central.storage import (
    ChunkPastEnd,
    OffsetConflict,
    PackageEntry,
    PackageReplayed,
    StorageError,
    UnknownUpload,
    UploadQuota,
    UploadQuotaExceeded,
    UploadState,
    VenueRecord,
)
from server.central.venue_auth import (
    VENUE,
    authenticate_venue,
    challenge,
    own_upload,
    require_signed,
    venue_or_staff,
)
from server.clock import iso
from server.errors import Invalid, Malformed
from server.http import parse_json
from server.problems import Problem
from server.protocol import response_package
from server.protocol.receipts import sign_receipt

routes = web.RouteTableDef()
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
MAX_CREATE = 256 * 1024  # a create's JSON with the package's head (a header is at most 64 KiB)
REFUSALS: dict[type[response_package.ResponsePackageError], str] = {
    response_package.PackageMalformed: "package-malformed",
    response_package.PackageSignerUnknown: "package-signer-unknown",
    response_package.PackageTampered: "package-tampered",
    response_package.PackageUnreadable: "package-unreadable",
}


def state_json(request: web.Request, state: UploadState) -> dict[str, Any]:
    return {
        "upload_id": state.upload_id,
        "venue_id": state.venue_id,
        "size": state.size,
        "offset": state.offset,
        "complete": state.receipt is not None,
        "receipt": state.receipt,
        "location": str(request.app.router["upload"].url_for(upload_id=state.upload_id)),
    }


async def _read_small(request: web.Request) -> bytes:
    """A create's body (a few hundred bytes and the package's head), 413 past MAX_CREATE."""
    too_large = Problem(413, "too-large", f"a create request is at most {MAX_CREATE} bytes")
    if (request.content_length or 0) > MAX_CREATE:
        raise too_large
    body = bytearray()
    async for piece in request.content.iter_chunked(65536):
        body += piece
        if len(body) > MAX_CREATE:
            raise too_large
    return bytes(body)


def _create_fields(raw: bytes, limit: int) -> tuple[str, int, str, bytes]:
    try:
        body = parse_json(raw)
    except DuplicateKey as exc:  # which copy is meant? (issue 16, F11)
        raise Malformed("bad-upload", f"the body is not a valid request: {exc}") from None
    except ValueError:
        raise Malformed("bad-upload", "the body is not JSON") from None
    if not isinstance(body, dict):
        raise Malformed("bad-upload", "send {package_sha256, size, venue_id, head}")
    digest, size, venue_id = body.get("package_sha256"), body.get("size"), body.get("venue_id")
    if not isinstance(digest, str) or not SHA256_HEX.match(digest):
        raise Malformed("bad-upload", "package_sha256 must be 64 lower-case hex characters")
    if isinstance(size, bool) or not isinstance(size, int) or not 0 < size <= limit:
        raise Malformed("bad-upload", f"size must be a whole number of bytes from 1 to {limit}")
    if not isinstance(venue_id, str):
        raise Malformed("bad-upload", "venue_id must be the venue's id, a string")
    encoded, head = body.get("head"), b""
    if isinstance(encoded, str):
        with contextlib.suppress(ValueError):
            head = base64.b64decode(encoded, validate=True)
    if not head:
        raise Malformed(
            "bad-upload",
            "head must be base64 of the package's first bytes: magic, header and signature",
        )  # fmt: skip
    return digest, size, venue_id, head


def _check_head(head: bytes, size: int, venue: VenueRecord) -> None:
    """The package's signed head: by this venue's key, naming this venue, of this size."""
    try:
        public = crypto.read_signing_public(venue.signing_public)
        header = response_package.verify_package_head(head, public)
        length = response_package.head_length(head)
    except response_package.ResponsePackageError as exc:
        raise Invalid(REFUSALS.get(type(exc), "package-refused"), str(exc)) from None
    if header.venue_id != venue.venue_id:
        raise Invalid(
            "package-malformed",
            f"the package is venue {header.venue_id}'s, not venue {venue.venue_id}'s",
        )  # fmt: skip
    if length + header.payload_size != size:
        raise Invalid(
            "size-mismatch",
            f"the signed header makes the package {length + header.payload_size} bytes, "
            f"not {size}",
        )  # fmt: skip


@routes.post("/api/v1/uploads", name="uploads")
@challenge
async def create_upload(request: web.Request) -> web.Response:
    """Start (or find again) the upload of one package, keyed by its hash."""
    require_signed(request)
    raw = await _read_small(request)
    venue = await authenticate_venue(request, hashlib.sha256(raw).hexdigest())
    settings = request.app[keys.SETTINGS]
    digest, size, venue_id, head = _create_fields(raw, settings.max_package_bytes)
    if venue_id != venue.venue_id:
        raise Problem(
            403, "wrong-venue", f"the request is signed by venue {venue.venue_id}, not {venue_id}"
        )
    _check_head(head, size, venue)
    now = iso(request.app[keys.CLOCK].now())
    quota = UploadQuota(settings.max_open_uploads, settings.max_open_upload_bytes)
    try:
        state = await request.app[keys.STORAGE].create_upload(digest, venue_id, size, now, quota)
    except UploadQuotaExceeded as exc:
        raise Problem(429, "upload-quota-exceeded", str(exc)) from None
    if state.venue_id != venue_id:
        raise Problem(409, "upload-conflict", f"upload {digest} belongs to another venue")
    if state.size != size:
        raise Problem(409, "size-mismatch", f"upload {digest} was created with size {state.size}")
    status = 200 if state.receipt is not None or state.offset else 201
    return web.json_response(state_json(request, state), status=status)


@routes.get("/api/v1/uploads/{upload_id}", name="upload", allow_head=False)
@challenge
async def get_upload(request: web.Request) -> web.Response:
    """The upload's state as JSON, with its receipt once accepted: for its venue or staff."""
    return web.json_response(state_json(request, await venue_or_staff(request)))


@routes.head("/api/v1/uploads/{upload_id}")
@challenge
async def head_upload(request: web.Request) -> web.Response:
    """The current offset, to resume after a cut connection."""
    require_signed(request)
    state = await own_upload(request, await authenticate_venue(request))
    headers = {
        "Upload-Offset": str(state.offset),
        "Upload-Length": str(state.size),
        "Upload-Complete": "1" if state.receipt is not None else "0",
        "Cache-Control": "no-store",
    }
    return web.Response(status=200, headers=headers)


def _chunk_headers(request: web.Request) -> tuple[int, bytes]:
    try:
        offset = int(request.headers["Upload-Offset"])
        algorithm, encoded = request.headers["Upload-Checksum"].split(" ", 1)
        checksum = base64.b64decode(encoded, validate=True)
    except (KeyError, ValueError):
        raise Problem(
            400, "bad-chunk", "send Upload-Offset: <bytes> and Upload-Checksum: sha256 <base64>"
        ) from None
    limit = request.app[keys.SETTINGS].max_package_bytes
    if algorithm != "sha256" or not 0 <= offset <= limit:
        # No upload is longer than the limit; a larger offset was a 500 on PostgreSQL (bigint).
        raise Problem(
            400, "bad-chunk", f"Upload-Checksum must be sha256; Upload-Offset from 0 to {limit}"
        )
    return offset, checksum


async def _read_chunk(request: web.Request) -> tuple[list[bytes], bytes]:
    """The PATCH body as the pieces it arrived in, and their SHA-256; 413 past the limit."""
    limit = request.app[keys.SETTINGS].max_chunk_bytes
    too_large = Problem(
        413, "chunk-too-large", f"a chunk may hold at most {limit} bytes: send smaller chunks"
    )
    if (request.content_length or 0) > limit:
        raise too_large
    pieces, size = [], 0
    async for piece in request.content.iter_any():
        size += len(piece)
        if size > limit:
            raise too_large
        pieces.append(piece)
    # On a worker thread (hashlib lets go of the GIL): the event loop keeps receiving the
    # other uploads' bodies meanwhile.
    return pieces, await asyncio.to_thread(_sha256_pieces, pieces)


def _sha256_pieces(pieces: list[bytes]) -> bytes:
    digest = hashlib.sha256()
    for piece in pieces:
        digest.update(piece)
    return digest.digest()


@routes.patch("/api/v1/uploads/{upload_id}")
@challenge
async def patch_upload(request: web.Request) -> web.Response:
    """Store one chunk at the upload's current offset, whole or not at all."""
    require_signed(request)
    offset, checksum = _chunk_headers(request)
    venue = await authenticate_venue(request, checksum.hex(), request.headers["Upload-Offset"])
    upload_id = (await own_upload(request, venue)).upload_id
    data, digest = await _read_chunk(request)
    if not crypto.constant_time_equal(digest, checksum):
        raise Problem(
            400, "checksum-mismatch", "the chunk does not match its Upload-Checksum; send it again"
        )
    now = iso(request.app[keys.CLOCK].now())
    try:
        new_offset = await request.app[keys.STORAGE].append_chunk(upload_id, offset, data, now)
    except UnknownUpload as exc:
        raise Problem(404, "unknown-upload", str(exc)) from None
    except OffsetConflict as exc:
        raise Problem(409, "offset-mismatch", str(exc), offset=exc.expected) from None
    except ChunkPastEnd as exc:
        raise Problem(400, "chunk-past-end", str(exc)) from None
    return web.Response(status=204, headers={"Upload-Offset": str(new_offset)})


# Magic, header length, the longest header a package may have and the signature: enough
# bytes to read the header without copying the payload on the event loop.
HEADER_PREFIX = (
    len(response_package.MAGIC) + 4 + response_package.MAX_HEADER + response_package.SIGNATURE_SIZE
)


async def _check(request: web.Request, data: bytes) -> response_package.ResponseHeader:
    header = response_package.read_header(data[:HEADER_PREFIX])  # unverified: names the venue
    venue = await request.app[keys.STORAGE].get_venue(header.venue_id)
    if venue is None:
        raise Problem(
            403, "unknown-venue", f"venue {header.venue_id} is not registered at this centre"
        )
    public = crypto.read_signing_public(venue.signing_public)
    wrapping = request.app[keys.AUTHORITY].wrapping_key
    return await asyncio.to_thread(response_package.check_response_package, data, public, wrapping)


def _sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def package_entry(header: response_package.ResponseHeader, digest: str, size: int) -> PackageEntry:
    """What the store records about a package, from its verified header."""
    summary = dict(header.summary)
    return PackageEntry(
        package_sha256=digest,
        session_id=header.session_id,
        venue_id=header.venue_id,
        export_seq=header.export_seq,
        size=size,
        serious_violation=bool(summary.pop("serious_violation", False)),
        summary=summary,
    )


@routes.post("/api/v1/uploads/{upload_id}/finish")
@challenge
async def finish_upload(request: web.Request) -> web.Response:
    """Verify the whole package, append it to the log and return the signed receipt."""
    app = request.app
    require_signed(request)
    state = await own_upload(request, await authenticate_venue(request))
    if state.receipt is not None:
        return web.json_response(state.receipt)
    if state.offset != state.size:
        raise Problem(
            409, "upload-incomplete",
            f"{state.offset} of {state.size} bytes received; send the rest first",
            offset=state.offset,
        )  # fmt: skip
    try:
        data = await app[keys.STORAGE].read_upload(state.upload_id)
    except StorageError:
        data = b""  # the bytes are gone (a lost file): discarded below, the venue sends again
    if await asyncio.to_thread(_sha256_hex, data) != state.upload_id:
        # Another central process may have accepted this package meanwhile (and dropped
        # the chunks): then its receipt is the answer.
        state = await own_upload(request, request[VENUE])
        if state.receipt is not None:
            return web.json_response(state.receipt)
        await app[keys.STORAGE].discard_upload(state.upload_id)
        raise Problem(
            422, "hash-mismatch",
            "the bytes received do not hash to the upload id; they were discarded: upload again",
        )  # fmt: skip
    try:
        header = await _check(request, data)
    except response_package.ResponsePackageError as exc:
        raise Problem(422, REFUSALS.get(type(exc), "package-refused"), str(exc)) from None
    if header.venue_id != state.venue_id:
        raise Problem(422, "package-malformed", "the package names another venue than its upload")
    authority = app[keys.AUTHORITY].signing_key

    def sign(
        entry: PackageEntry, received_at: str, position: int, previous_root: str, root: str
    ) -> dict[str, Any]:
        return sign_receipt(authority, entry, received_at, position, previous_root, root)

    now = iso(app[keys.CLOCK].now())
    try:
        receipt = await app[keys.STORAGE].accept_package(
            package_entry(header, state.upload_id, len(data)), sign, now
        )
    except PackageReplayed as exc:
        raise Problem(409, "package-replayed", str(exc)) from None
    return web.json_response(receipt)
