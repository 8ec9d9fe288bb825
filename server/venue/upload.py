"""The venue side of the resumable upload, the outbox, and `cbt venue upload`.

`upload_package` sends one response package to the central server (see
`server.central.uploads` for the protocol), every call signed with the venue's own key
(`server.protocol.upload_auth`; the centre refuses unsigned calls): create with the
package's signed head (idempotent by the package's SHA-256),
PATCH chunks at offsets with a SHA-256 per chunk, after any cut HEAD for the offset the
centre holds and resume there, finish, and verify the signed receipt against the centre's
pinned public key. Network errors and 5xx answers are retried with exponential backoff; a
refusal (4xx: tampered, replayed, unknown venue) is final and raised as `UploadRefused`
with the centre's reason.

The outbox is the directory `DIR/outbox/`: `<sha256>.cbtresp` is a package waiting to go,
`<sha256>.receipt.json` beside it the verified receipt. `drain_outbox` sends everything not
yet receipted; `outbox_worker` does so in a loop with backoff (and
`server.venue.export.outbox_context` also exports each session once it has ended). Files
are never deleted here: the venue keeps its copy at least until the retention date
(art. 23(7)), which only the centre knows once results are published.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import os
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from paperpack import crypto
from server.clock import Clock, SystemClock, iso
from server.errors import CbtError
from server.protocol.receipts import parse_receipt_answer, verify_receipt
from server.protocol.response_package import head_length, read_header
from server.protocol.upload_auth import EMPTY_SHA256, sign_upload_request

log = logging.getLogger(__name__)

OUTBOX = "outbox"
PACKAGE_SUFFIX = ".cbtresp"
RECEIPT_SUFFIX = ".receipt.json"
CHUNK_SIZE = 1 << 20  # bytes per PATCH
RETRYABLE = (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError)

Progress = Callable[[int, int], None]  # (bytes confirmed, total)


class UploadError(CbtError):
    """An upload could not be completed (after every retry)."""


class UploadRefused(UploadError):
    """The centre refused the package; retrying the same bytes will not help."""


class _Transient(Exception):
    """A failure worth retrying (server error, cut connection)."""


@dataclass(frozen=True)
class UploadResult:
    package_sha256: str
    receipt: dict[str, Any]  # the signed receipt document
    fields: dict[str, Any]  # its verified fields (log position, root, received_at, ...)
    attempts: int  # rounds it took (1 = no retry)


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full jitter."""

    first_s: float = 0.2
    max_s: float = 10.0
    attempts: int = 30

    def delay(self, attempt: int) -> float:
        return random.uniform(0, min(self.max_s, self.first_s * 2**attempt))


async def _problem(resp: aiohttp.ClientResponse) -> str:
    try:
        body = await resp.json(content_type=None)
        return (
            f"{body.get('title', resp.status)}: {body.get('detail', '')} ({body.get('type', '')})"
        )
    except (ValueError, aiohttp.ClientError):
        return f"HTTP {resp.status}"


async def _check(resp: aiohttp.ClientResponse) -> None:
    # 404: the upload is gone (swept after a long pause), create it again; 429: the venue's
    # quota of unfinished uploads is full for now.
    if resp.status >= 500 or resp.status in (404, 429):
        raise _Transient(f"the centre answered {resp.status}")
    if resp.status >= 400:
        raise UploadRefused(f"the centre refused the package: {await _problem(resp)}")


class _Round:
    """One attempt: create or find the upload, send what is missing, finish."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        base: str,
        data: bytes,
        venue_key: crypto.Ed25519PrivateKey,
        clock: Clock,
    ) -> None:
        self.http, self.base, self.data = http, base, data
        self.digest = hashlib.sha256(data).hexdigest()
        self.venue_id = read_header(data).venue_id
        self.head = data[: head_length(data)]
        self.venue_key, self.clock = venue_key, clock
        self.path = f"/api/v1/uploads/{self.digest}"

    def _signed(
        self, method: str, path: str, content: str = EMPTY_SHA256, offset: str = ""
    ) -> dict[str, str]:
        signed_at = iso(self.clock.now())
        value = sign_upload_request(
            self.venue_key, self.venue_id, method, path, signed_at, content, offset
        )
        return {"Authorization": value}

    async def create(self) -> dict[str, Any]:
        body = json.dumps(
            {"package_sha256": self.digest, "size": len(self.data), "venue_id": self.venue_id,
             "head": base64.b64encode(self.head).decode("ascii")}
        ).encode()  # fmt: skip
        headers = {
            **self._signed("POST", "/api/v1/uploads", hashlib.sha256(body).hexdigest()),
            "Content-Type": "application/json",
        }
        async with self.http.post(
            f"{self.base}/api/v1/uploads", data=body, headers=headers
        ) as resp:
            await _check(resp)
            return dict(await resp.json(loads=parse_receipt_answer))

    async def resume_offset(self) -> int | None:
        """After a cut: HEAD for the offset the centre holds (None: start with create)."""
        headers = self._signed("HEAD", self.path)
        async with self.http.head(self.base + self.path, headers=headers) as resp:
            if resp.status == 404:
                return None
            await _check(resp)
            if resp.headers.get("Upload-Complete") == "1":
                return None  # create answers with the receipt
            return int(resp.headers["Upload-Offset"])

    async def send(self, offset: int, chunk_size: int, progress: Progress | None) -> int:
        while offset < len(self.data):
            chunk = self.data[offset : offset + chunk_size]
            digest = hashlib.sha256(chunk).digest()
            headers = {
                **self._signed("PATCH", self.path, digest.hex(), str(offset)),
                "Upload-Offset": str(offset),
                "Upload-Checksum": "sha256 " + base64.b64encode(digest).decode(),
                "Content-Type": "application/offset+octet-stream",
            }
            async with self.http.patch(self.base + self.path, data=chunk, headers=headers) as resp:
                if resp.status == 409:  # the centre holds more (or less) than we thought: follow it
                    offset = int((await resp.json(content_type=None)).get("offset", offset))
                    continue
                await _check(resp)
                offset = int(resp.headers["Upload-Offset"])
            if progress:
                progress(offset, len(self.data))
        return offset

    async def finish(self) -> dict[str, Any]:
        path = self.path + "/finish"
        async with self.http.post(self.base + path, headers=self._signed("POST", path)) as resp:
            await _check(resp)
            return dict(await resp.json(loads=parse_receipt_answer))


async def upload_package(
    http: aiohttp.ClientSession,
    central_url: str,
    data: bytes,
    central_public: crypto.Ed25519PublicKey,
    *,
    venue_key: crypto.Ed25519PrivateKey,
    clock: Clock | None = None,
    chunk_size: int = CHUNK_SIZE,
    backoff: Backoff | None = None,
    progress: Progress | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> UploadResult:
    """Upload `data` until the centre returns a receipt that verifies; resume after any cut.
    Every call is signed with `venue_key` (the venue's registered key) at `clock`'s time."""
    backoff = backoff or Backoff()
    one = _Round(http, central_url.rstrip("/"), data, venue_key, clock or SystemClock())
    digest = one.digest
    last_error = ""
    for attempt in range(backoff.attempts):
        try:
            offset = await one.resume_offset() if attempt else None
            receipt = None
            if offset is None:
                state = await one.create()
                receipt = state["receipt"] if state.get("complete") else None
                offset = int(state["offset"])
            if receipt is None:
                await one.send(offset, chunk_size, progress)
                receipt = await one.finish()
            fields = verify_receipt(receipt, central_public, digest)
            return UploadResult(digest, receipt, fields, attempt + 1)
        except (*RETRYABLE, _Transient, KeyError, ValueError) as exc:
            last_error = f"{type(exc).__name__}: {exc}"
            log.info(
                "upload.retry package=%s attempt=%d error=%s", digest[:16], attempt + 1, last_error
            )
            await sleep(backoff.delay(attempt))
    raise UploadError(
        f"package {digest[:16]} not delivered after {backoff.attempts} attempts "
        f"(last: {last_error}); "
        "it stays in the outbox: check the network and --central, then run `cbt venue upload` again"
    )


# --- the outbox ---------------------------------------------------------------------------


def outbox_dir(venue_dir: Path) -> Path:
    return venue_dir / OUTBOX


def put_in_outbox(venue_dir: Path, data: bytes) -> Path:
    """Queue a package (written durably: temp file, fsync, rename). Returns its path."""
    folder = outbox_dir(venue_dir)
    folder.mkdir(exist_ok=True)
    path = folder / (hashlib.sha256(data).hexdigest() + PACKAGE_SUFFIX)
    if not path.exists():
        _write_durably(path, data)
    return path


def _write_durably(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def pending(venue_dir: Path) -> list[Path]:
    """Packages in the outbox without a verified receipt, oldest first."""
    folder = outbox_dir(venue_dir)
    if not folder.is_dir():
        return []
    waiting = [p for p in folder.glob("*" + PACKAGE_SUFFIX) if not receipt_path(p).exists()]
    return sorted(waiting, key=lambda p: p.stat().st_mtime)


def receipt_path(package: Path) -> Path:
    return package.with_name(package.name.removesuffix(PACKAGE_SUFFIX) + RECEIPT_SUFFIX)


def record_receipt(venue_dir: Path, package: Path, result: UploadResult) -> None:
    """Keep the verified receipt beside the package (and in the exports table when present)."""
    _write_durably(receipt_path(package), json.dumps(result.receipt, indent=2).encode())
    db_path = venue_dir / "venue.db"
    if db_path.exists():
        from server.store import connect

        db = connect(db_path)
        try:
            db.execute(
                "UPDATE exports SET receipt = ?, receipt_verified_at = ? WHERE package_hash = ?",
                (json.dumps(result.receipt), iso(SystemClock().now()), result.package_sha256),
            )
            db.conn.commit()
        finally:
            db.close()


async def drain_outbox(
    venue_dir: Path,
    central_url: str,
    central_public: crypto.Ed25519PublicKey,
    *,
    progress: Progress | None = None,
    backoff: Backoff | None = None,
    clock: Clock | None = None,
) -> list[UploadResult]:
    """Upload every package in the outbox that has no verified receipt yet, signed with the
    venue's key (DIR/keys/)."""
    results: list[UploadResult] = []
    waiting = pending(venue_dir)
    if not waiting:
        return results
    from server.venue.workspace import load_signing_key, load_venue

    venue_key = load_signing_key(load_venue(venue_dir))
    async with aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=600, sock_read=60)
    ) as http:
        for package in waiting:
            data = package.read_bytes()
            result = await upload_package(
                http, central_url, data, central_public, venue_key=venue_key, clock=clock,
                progress=progress, backoff=backoff,
            )  # fmt: skip
            record_receipt(venue_dir, package, result)
            log.info(
                "upload.delivered package=%s log_position=%s",
                result.package_sha256[:16],
                result.fields["log_position"],
            )
            results.append(result)
    return results


async def outbox_worker(
    venue_dir: Path,
    central_url: str,
    central_public: crypto.Ed25519PublicKey,
    *,
    idle_s: float = 5.0,
    backoff: Backoff | None = None,
) -> None:
    """Send the outbox forever: on failure wait with backoff and try again (cancel to stop)."""
    failures = 0
    policy = backoff or Backoff()
    while True:
        try:
            await drain_outbox(
                venue_dir,
                central_url,
                central_public,
                backoff=Backoff(policy.first_s, policy.max_s, 3),
            )
            failures = 0
            await asyncio.sleep(idle_s)
        except UploadError as exc:
            failures += 1
            log.warning("upload.outbox_failed error=%s", exc)
            await asyncio.sleep(policy.delay(min(failures, 10)))
