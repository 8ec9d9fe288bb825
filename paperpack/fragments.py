"""Fragments: the erasure-coded pieces of a package's ciphertext (zfec, any k' of m rebuild).

The ciphertext is a sequence of STREAM chunks. Each chunk is one *stripe*: zfec splits it
into k' blocks of ceil(len/k') bytes and adds m - k' check blocks; block i of every stripe is
appended to fragment i. So writing and reading are streaming, one stripe in memory at a time.

A fragment file is `header | block(stripe 0) | block(stripe 1) | ...`. The header says what the
fragment is (magic, format version, package id, session, venue, index, m, k'); the SHA-256 of
the whole file is in the signed manifest, so each fragment is checked on its own, as it
arrives, before anything is decoded.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import zfec
from zfec import easyfec

from paperpack.errors import FragmentCorrupt

MAGIC = b"CBTFRAG"
VERSION = 1
_FIXED = struct.Struct(">7sB16sBBB")  # magic, version, package id, index, total m, needed k'
MAX_ID_BYTES = 255
WRITERS = 2  # threads hashing and writing fragments (each owns half of the files per stripe)


def fragment_name(index: int) -> str:
    return f"fragment-{index:03d}.cbtf"


@dataclass(frozen=True)
class FragmentHeader:
    """What a fragment says about itself; checked against the signed manifest."""

    package_id: bytes  # 16 random bytes chosen at pack time
    session_id: str
    venue_id: str
    index: int  # 0 .. total-1
    total: int  # m fragments in all
    needed: int  # k' of them rebuild the payload

    def to_bytes(self) -> bytes:
        session = self.session_id.encode("utf-8")
        venue = self.venue_id.encode("utf-8")
        if len(session) > MAX_ID_BYTES or len(venue) > MAX_ID_BYTES:
            raise FragmentCorrupt("session and venue ids must be at most 255 bytes")
        fixed = _FIXED.pack(MAGIC, VERSION, self.package_id, self.index, self.total, self.needed)
        return fixed + bytes([len(session)]) + session + bytes([len(venue)]) + venue


def parse_header(data: bytes, name: str = "fragment") -> tuple[FragmentHeader, int]:
    """Parse the header at the start of `data`; returns it and its length in bytes."""
    if len(data) < _FIXED.size + 2:
        raise FragmentCorrupt(f"{name}: too short to hold a fragment header ({len(data)} bytes)")
    magic, version, package_id, index, total, needed = _FIXED.unpack_from(data)
    if magic != MAGIC:
        raise FragmentCorrupt(f"{name}: not a cbt fragment (bad magic bytes)")
    if version != VERSION:
        raise FragmentCorrupt(
            f"{name}: fragment format version {version} is not supported (want {VERSION})"
        )
    if not 1 <= needed <= total or index >= total:
        raise FragmentCorrupt(
            f"{name}: header says index {index} of {total}, {needed} needed: impossible"
        )
    pos = _FIXED.size
    ids: list[str] = []
    for _ in range(2):
        if pos >= len(data) or pos + 1 + data[pos] > len(data):
            raise FragmentCorrupt(f"{name}: header is truncated")
        length = data[pos]
        try:
            ids.append(data[pos + 1 : pos + 1 + length].decode("utf-8"))
        except UnicodeDecodeError:
            raise FragmentCorrupt(f"{name}: header ids are not UTF-8 (corrupt header)") from None
        pos += 1 + length
    return FragmentHeader(package_id, ids[0], ids[1], index, total, needed), pos


def block_size(stripe_length: int, needed: int) -> int:
    return -(-stripe_length // needed)


def primary_blocks(stripe: bytes, needed: int) -> list[bytes | memoryview]:
    """Cut a stripe into `needed` equal blocks, zero-padding the last (as easyfec does, but
    as views of the stripe rather than copies: zfec's encoder reads them in place)."""
    size = block_size(len(stripe), needed)
    view = memoryview(stripe)
    blocks: list[bytes | memoryview] = []
    for index in range(needed):
        block = view[index * size : (index + 1) * size]
        blocks.append(block if len(block) == size else bytes(block) + bytes(size - len(block)))
    return blocks


class FragmentWriter:
    """Write m fragment files stripe by stripe, hashing each as it is written.

    Hashing and writing run on two background threads, each owning half of the files (both
    release the GIL), overlapping with the caller's compression, encryption and coding of the
    next stripe. At most one stripe's blocks wait there, so memory stays bounded by two
    stripes, and each file still receives its blocks in stripe order.
    """

    def __init__(self, directory: Path, header: FragmentHeader) -> None:
        self._encoder = zfec.Encoder(header.needed, header.total)
        self._needed = header.needed
        self._files: list[BinaryIO] = []
        self._hashes: list[hashlib._Hash] = []
        self._pool = ThreadPoolExecutor(max_workers=WRITERS, thread_name_prefix="fragment-writer")
        self._pending: list[Future[None]] = []
        self.sizes = [0] * header.total
        for index in range(header.total):
            head = FragmentHeader(
                header.package_id,
                header.session_id,
                header.venue_id,
                index,
                header.total,
                header.needed,
            ).to_bytes()
            handle = (directory / fragment_name(index)).open("wb")
            handle.write(head)
            self._files.append(handle)
            self._hashes.append(hashlib.sha256(head))
            self.sizes[index] = len(head)

    def _write(self, blocks: Sequence[bytes | memoryview], indexes: range) -> None:
        for index in indexes:
            block = blocks[index]
            self._files[index].write(block)
            self._hashes[index].update(block)
            self.sizes[index] += len(block)

    def _wait(self) -> None:
        pending, self._pending = self._pending, []
        for future in pending:
            future.result()  # re-raises a write error here, in the caller

    def write_stripe(self, stripe: bytes) -> None:
        blocks = self._encoder.encode(primary_blocks(stripe, self._needed))
        self._wait()
        total = len(blocks)
        half = (total + 1) // 2
        self._pending = [
            self._pool.submit(self._write, blocks, part)
            for part in (range(half), range(half, total))
            if len(part)
        ]

    def close(self) -> list[str]:
        """Finish writing, close every file; returns the hex SHA-256 of each fragment."""
        try:
            self._wait()
        finally:
            self._pool.shutdown(wait=True)
            for handle in self._files:
                handle.close()
        return [h.hexdigest() for h in self._hashes]


def read_stripes(
    sources: dict[int, Path],
    header_lengths: dict[int, int],
    stripe_lengths: Sequence[int],
    needed: int,
    total: int,
) -> Iterator[bytes]:
    """Rebuild the stripes from any `needed` fragments (index -> path), one at a time."""
    chosen = sorted(sources)[:needed]
    decoder = easyfec.Decoder(needed, total)
    handles = []
    try:
        for index in chosen:
            handle = sources[index].open("rb")
            handle.seek(header_lengths[index])
            handles.append(handle)
        for stripe, length in enumerate(stripe_lengths):
            size = block_size(length, needed)
            blocks = [handle.read(size) for handle in handles]
            if any(len(block) != size for block in blocks):
                raise FragmentCorrupt(f"a fragment ends early at stripe {stripe}: it is truncated")
            yield decoder.decode(blocks, chosen, size * needed - length)
        if any(handle.read(1) for handle in handles):
            raise FragmentCorrupt("a fragment is longer than the manifest says: trailing bytes")
    finally:
        for handle in handles:
            handle.close()
