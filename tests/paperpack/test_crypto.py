"""The crypto front door, bounded zstd and zfec fragments, each on its own."""

from __future__ import annotations

import os
import random
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paperpack import crypto
from paperpack.compress import CompressionError, compress_stream, decompress_stream
from paperpack.crypto import CryptoError, StreamDecryptor, StreamEncryptor
from paperpack.errors import DecompressionBomb, FragmentCorrupt
from paperpack.fragments import FragmentHeader, FragmentWriter, parse_header, read_stripes


def encrypt_all(key: bytearray, chunks: list[bytes]) -> list[bytes]:
    enc = StreamEncryptor(key)
    return [enc.encrypt(c, last=i == len(chunks) - 1) for i, c in enumerate(chunks)]


def decrypt_all(key: bytearray, sealed: list[bytes], lasts: list[bool]) -> list[bytes]:
    dec = StreamDecryptor(key)
    return [dec.decrypt(c, last=last) for c, last in zip(sealed, lasts, strict=True)]


CHUNKS = [b"alpha" * 10, b"beta" * 10, b"gamma" * 10]


def test_stream_round_trips() -> None:
    """STREAM chunks decrypt in order to the plaintext."""
    key = crypto.random_bytes(32)
    sealed = encrypt_all(key, CHUNKS)
    assert decrypt_all(key, sealed, [False, False, True]) == CHUNKS


def test_stream_refuses_reordered_chunks() -> None:
    """Swapping two chunks fails authentication (the counter is in the nonce)."""
    key = crypto.random_bytes(32)
    sealed = encrypt_all(key, CHUNKS)
    with pytest.raises(CryptoError, match="chunk 0 fails"):
        decrypt_all(key, [sealed[1], sealed[0], sealed[2]], [False, False, True])


def test_stream_refuses_truncation_at_a_chunk_boundary() -> None:
    """Dropping the final chunk and calling the previous one last fails (last flag in nonce)."""
    key = crypto.random_bytes(32)
    sealed = encrypt_all(key, CHUNKS)
    with pytest.raises(CryptoError, match="chunk 1 fails"):
        decrypt_all(key, sealed[:2], [False, True])
    with pytest.raises(CryptoError, match="truncated"):
        list(crypto.decrypt_chunks(key, iter([(sealed[0], False), (sealed[1], False)])))


def test_stream_refuses_data_after_the_last_chunk() -> None:
    """Nothing may follow the chunk flagged last."""
    key = crypto.random_bytes(32)
    sealed = encrypt_all(key, CHUNKS[:1])
    dec = StreamDecryptor(key)
    dec.decrypt(sealed[0], last=True)
    with pytest.raises(CryptoError, match="follows the final"):
        dec.decrypt(sealed[0], last=False)


def test_wrap_opens_only_for_its_recipient_and_context() -> None:
    """A wrapped secret opens with the right key and context, and with nothing else."""
    venue, other = crypto.generate_wrapping_key(), crypto.generate_wrapping_key()
    blob = crypto.wrap(venue.public_key(), b"s" * 32, context=b"S1|V1")
    assert crypto.unwrap(venue, blob, context=b"S1|V1") == bytearray(b"s" * 32)
    with pytest.raises(CryptoError, match="another key"):
        crypto.unwrap(other, blob, context=b"S1|V1")
    with pytest.raises(CryptoError, match="another key"):
        crypto.unwrap(venue, blob, context=b"S1|V2")
    with pytest.raises(CryptoError, match="bad magic"):
        crypto.unwrap(venue, b"XXXX" + blob[4:], context=b"S1|V1")


def test_signatures_verify_and_refuse_a_changed_message() -> None:
    """verify raises on any change to the signed bytes."""
    key = crypto.generate_signing_key()
    signature = crypto.sign(key, "manifest", b"body")
    crypto.verify(key.public_key(), "manifest", b"body", signature)
    with pytest.raises(CryptoError):
        crypto.verify(key.public_key(), "manifest", b"bodY", signature)


def test_a_signature_covers_its_domain_tag() -> None:
    """sign(kind, body) signs b"cbt-<kind>-v<N>|" + body: that exact message, and no other."""
    key = crypto.generate_signing_key()
    signature = crypto.sign(key, "receipt", b"body")
    key.public_key().verify(signature, b"cbt-receipt-v1|body")  # the raw Ed25519 check
    assert crypto.signing_tag("manifest") == b"cbt-manifest-v2|"
    assert crypto.signing_tag("manifest", 1) == b"cbt-manifest-v1|"


@pytest.mark.parametrize("other", sorted(set(crypto.SIGNING_KINDS) - {"manifest"}))
def test_a_signature_of_one_kind_never_passes_as_another(other: str) -> None:
    """The same body signed as a manifest does not verify as any other kind."""
    key = crypto.generate_signing_key()
    signature = crypto.sign(key, "manifest", b'{"a":1}')
    with pytest.raises(CryptoError, match="does not match"):
        crypto.verify(key.public_key(), other, b'{"a":1}', signature)


def test_an_undomained_signature_is_not_a_tagged_one() -> None:
    """A signature over the bare body (the old formats) fails the tagged check, and back."""
    key = crypto.generate_signing_key()
    bare = key.sign(b"body")
    crypto.verify_undomained(key.public_key(), b"body", bare)
    with pytest.raises(CryptoError):
        crypto.verify(key.public_key(), "manifest", b"body", bare)
    with pytest.raises(CryptoError):
        crypto.verify_undomained(key.public_key(), b"body", crypto.sign(key, "manifest", b"body"))


def test_an_older_tag_version_is_checked_only_when_asked_for() -> None:
    """version= reads an older tag; the current tag does not pass for it, nor back."""
    key = crypto.generate_signing_key()
    old = key.sign(b"cbt-manifest-v1|body")
    crypto.verify(key.public_key(), "manifest", b"body", old, version=1)
    with pytest.raises(CryptoError):
        crypto.verify(key.public_key(), "manifest", b"body", old)


@pytest.mark.parametrize(
    ("kind", "version", "message"),
    [("manifesto", None, "not a signing kind"), ("manifest", 3, "no version 3")],
)
def test_an_unknown_kind_or_version_is_refused(
    kind: str, version: int | None, message: str
) -> None:
    """A kind outside the list, or a version above the current one, is an error, not a tag."""
    key = crypto.generate_signing_key()
    with pytest.raises(CryptoError, match=message):
        crypto.verify(key.public_key(), kind, b"body", bytes(64), version=version)


def test_wrap_is_hpke_base_mode() -> None:
    """A wrap is CBTW 2 then RFC 9180 HPKE (X25519, HKDF-SHA256, AES-256-GCM), info bound
    to the context: the raw HPKE suite opens it."""
    from cryptography.hazmat.primitives import hpke

    venue = crypto.generate_wrapping_key()
    blob = crypto.wrap(venue.public_key(), b"s" * 32, context=b"S1|V1")
    assert blob.startswith(b"CBTW\x02") and len(blob) == 5 + 32 + 32 + 16
    suite = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)
    assert suite.decrypt(blob[5:], venue, info=b"cbt-wrap-hpke-v2|S1|V1") == b"s" * 32


def test_the_old_wrap_opens_only_where_old_formats_allow_it() -> None:
    """A version 1 wrap opens with legacy=True, and is refused where HPKE is required."""
    venue = crypto.generate_wrapping_key()
    blob = crypto.wrap(venue.public_key(), b"s" * 32, context=b"S1|V1", version=1)
    assert blob.startswith(b"CBTW\x01")
    assert crypto.unwrap(venue, blob, context=b"S1|V1", legacy=True) == bytearray(b"s" * 32)
    with pytest.raises(CryptoError, match="old X25519 wrap"):
        crypto.unwrap(venue, blob, context=b"S1|V1")
    with pytest.raises(CryptoError, match="another key"):
        crypto.unwrap(venue, blob, context=b"S1|V2", legacy=True)
    new = crypto.wrap(venue.public_key(), b"s" * 32, context=b"S1|V1")
    assert crypto.unwrap(venue, new, context=b"S1|V1", legacy=True) == bytearray(b"s" * 32)


def test_private_key_files_are_0600_and_passphrase_protected(tmp_path: Path) -> None:
    """Key files are created 0600; a protected one needs its passphrase."""
    key = crypto.generate_signing_key()
    crypto.write_private_key(tmp_path / "k", key, b"pw")
    assert stat.S_IMODE((tmp_path / "k").stat().st_mode) == 0o600
    loaded = crypto.load_private_key(tmp_path / "k", b"pw")
    assert crypto.public_key_text(loaded.public_key()) == crypto.public_key_text(key.public_key())
    with pytest.raises(CryptoError, match="passphrase-protected"):
        crypto.load_private_key(tmp_path / "k")
    with pytest.raises(CryptoError, match="wrong passphrase"):
        crypto.load_private_key(tmp_path / "k", b"nope")


def test_public_keys_parse_from_base64_and_refuse_junk() -> None:
    """Public keys are one base64 line; junk is refused with the reason."""
    key = crypto.generate_wrapping_key().public_key()
    text = crypto.public_key_text(key)
    assert crypto.public_key_text(crypto.read_wrapping_public(text)) == text
    with pytest.raises(CryptoError, match="32 bytes"):
        crypto.read_wrapping_public("AAAA")
    with pytest.raises(CryptoError, match="not base64"):
        crypto.read_signing_public("%%%")


def test_zeroise_overwrites_in_place() -> None:
    """zeroise leaves only zero bytes in the same buffer."""
    buf = crypto.random_bytes(32)
    view = buf
    crypto.zeroise(buf)
    assert view == bytearray(32)


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=5000), st.integers(1, 700))
def test_zstd_round_trips_any_bytes_in_any_pieces(data: bytes, piece: int) -> None:
    """Compressing in pieces and decompressing with the exact bound gives the input back."""
    pieces = [data[i : i + piece] for i in range(0, len(data), piece)]
    assert b"".join(decompress_stream(compress_stream(pieces), len(data))) == data


def test_decompression_bomb_stops_at_the_bound() -> None:
    """256 MiB of zeros declared as 1 KiB is refused without inflating it."""
    bomb = list(compress_stream(bytes(1 << 20) for _ in range(256)))
    assert sum(map(len, bomb)) < 100_000
    produced = 0
    with pytest.raises(DecompressionBomb, match="signed size of 1024"):
        for out in decompress_stream(bomb, 1024):
            produced += len(out)
    assert produced <= 1024


def test_short_or_garbled_zstd_is_refused() -> None:
    """A frame shorter than declared, or not zstd at all, raises CompressionError."""
    data = os.urandom(3000)
    frame = b"".join(compress_stream([data]))
    with pytest.raises(CompressionError, match="not its signed size"):
        list(decompress_stream([frame], len(data) + 1))
    with pytest.raises(CompressionError, match="not valid zstd"):
        list(decompress_stream([b"definitely not zstd"], 10))


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.binary(min_size=1, max_size=600), min_size=1, max_size=6),
    st.integers(1, 6),
    st.integers(0, 5),
    st.randoms(use_true_random=False),
)
def test_any_needed_fragments_rebuild_every_stripe(
    tmp_path_factory: pytest.TempPathFactory,
    stripes: list[bytes],
    needed: int,
    extra: int,
    rnd: random.Random,
) -> None:
    """Whatever k' of m fragments survive, the stripes come back byte for byte."""
    total = needed + extra
    folder = tmp_path_factory.mktemp("frag")
    header = FragmentHeader(b"p" * 16, "S1", "V1", 0, total, needed)
    writer = FragmentWriter(folder, header)
    for stripe in stripes:
        writer.write_stripe(stripe)
    writer.close()
    keep = sorted(rnd.sample(range(total), needed))
    sources = {i: folder / f"fragment-{i:03d}.cbtf" for i in keep}
    lengths = {i: parse_header(p.read_bytes())[1] for i, p in sources.items()}
    rebuilt = list(read_stripes(sources, lengths, [len(s) for s in stripes], needed, total))
    assert rebuilt == stripes


def test_fragment_header_round_trips_and_refuses_bad_magic() -> None:
    """A header parses back to itself; a wrong magic is FragmentCorrupt."""
    header = FragmentHeader(b"\x01" * 16, "S-1", "考点-1", 2, 5, 3)
    data = header.to_bytes()
    assert parse_header(data + b"body") == (header, len(data))
    with pytest.raises(FragmentCorrupt, match="bad magic"):
        parse_header(b"X" + data[1:])
