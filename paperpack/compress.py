"""Streaming zstd, the only importer of `zstandard`.

Compression streams: memory is bounded by the zstd window, not by the input. Decompression
takes a hard output bound (the signed plaintext size) and stops as soon as the output would
pass it, raising `DecompressionBomb`, so a small payload that expands to gigabytes never does.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import zstandard

from paperpack.errors import DecompressionBomb, PayloadCorrupt

__all__ = [
    "CompressionError",
    "DecompressionBomb",
    "compress_chunks",
    "compress_stream",
    "decompress_stream",
]

LEVEL = 3  # zstd's default: fast, and media assets do not compress much further anyway
# Larger than the read size so one call never holds more than this much output.
_OUTPUT_STEP = 1 << 20


class CompressionError(PayloadCorrupt):
    """The compressed stream is not valid zstd, or not the signed size."""


def compress_stream(chunks: Iterable[bytes], level: int = LEVEL) -> Iterator[bytes]:
    """zstd-compress `chunks` (one frame), yielding compressed pieces as they come."""
    compressor = zstandard.ZstdCompressor(level=level).compressobj()
    for chunk in chunks:
        out = compressor.compress(chunk)
        if out:
            yield out
    tail = compressor.flush()
    if tail:
        yield tail


def compress_chunks(
    pieces: Iterable[bytes | memoryview], chunk_size: int, level: int = LEVEL
) -> Iterator[tuple[bytes, bool]]:
    """zstd-compress `pieces` into chunks of exactly `chunk_size` bytes (the final one
    shorter), each with a flag saying whether it is the final one (for STREAM)."""
    chunker = zstandard.ZstdCompressor(level=level).chunker(chunk_size=chunk_size)
    held: bytes | None = None
    for piece in pieces:
        for chunk in chunker.compress(piece):
            if held is not None:
                yield held, False
            held = chunk
    for chunk in chunker.finish():  # type: ignore[no-untyped-call]  # zstandard's stub lacks it
        if held is not None:
            yield held, False
        held = chunk
    yield (held if held is not None else b""), True


class _IterReader:
    """A read()-able view of an iterator of byte strings (zstd's stream_reader wants one).
    Reads slice the current piece at an offset: the rest of a 1 MiB piece is not copied
    again for every 64 KiB read."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._pending = memoryview(b"")
        self._offset = 0
        self.exhausted = False

    def read(self, size: int = -1) -> bytes:
        while self._offset >= len(self._pending):
            try:
                self._pending, self._offset = memoryview(next(self._chunks)), 0
            except StopIteration:
                self.exhausted = True
                return b""
        end = len(self._pending) if size < 0 else min(len(self._pending), self._offset + size)
        out = bytes(self._pending[self._offset : end])
        self._offset = end
        return out


def decompress_stream(chunks: Iterable[bytes], exact_output: int) -> Iterator[bytes]:
    """Decompress one zstd frame that must expand to exactly `exact_output` bytes.

    Output is pulled in 1 MiB reads, so memory stays bounded whatever the input claims.
    Raises DecompressionBomb as soon as the output passes `exact_output`, and
    CompressionError when it is not valid zstd, ends early or has trailing data.
    """
    source = _IterReader(chunks)
    reader = zstandard.ZstdDecompressor().stream_reader(source, read_size=1 << 16)  # type: ignore[arg-type]  # any .read() works
    produced = 0
    try:
        while True:
            out = reader.read(_OUTPUT_STEP)
            if not out:
                break
            produced += len(out)
            if produced > exact_output:
                raise DecompressionBomb(
                    f"the payload expands beyond its signed size of {exact_output} bytes:"
                    " refused (decompression bomb or forged size)"
                )
            yield out
    except zstandard.ZstdError as exc:
        raise CompressionError(f"the payload is not valid zstd: {exc}") from None
    if produced != exact_output:
        raise CompressionError(
            f"the payload expands to {produced} bytes, not its signed size of {exact_output}"
        )
    if source.read(1):
        raise CompressionError("data follows the end of the zstd frame")
