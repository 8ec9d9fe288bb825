"""Receiving a package as an uploaded archive (`POST /api/v1/staff/packages` with a tar or zip
body): the body streamed to a file with bounded memory, then unpacked safely (no absolute
paths, no '..', no links) to the one package directory it must hold."""

from __future__ import annotations

import asyncio
import tarfile
import zipfile
from pathlib import Path

from aiohttp import web

from server.errors import CbtError
from server.problems import Problem


class ArchiveRefused(CbtError):
    """The uploaded archive is not one package; the message says why."""


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
            raise ArchiveRefused(f"the upload is neither a zip nor a tar archive ({exc})") from None
    manifests = list(into.rglob("manifest.json"))
    if len(manifests) != 1:
        raise ArchiveRefused("the archive must hold exactly one package (one manifest.json)")
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
        raise ArchiveRefused(f"the archive member {name!r} points outside the package")
