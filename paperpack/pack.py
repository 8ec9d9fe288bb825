"""Packing: a paper and a session become, per venue, a sealed package plus share cards, and
central-only material kept in the authority directory.

The pipeline streams: payload (canonical JSON head, then raw asset bytes) -> zstd -> STREAM
AEAD chunks of `chunk_size` -> zfec stripes appended to m fragment files. At most two stripes
(one being coded, one being written) are in memory, whatever the size of the paper's media.

Per venue the output is

    OUT/<venue>/package/manifest.json, manifest.sig, fragment-NNN.cbtf   (goes to the venue)
    OUT/<venue>/shares/holder-N.txt      (printed, one per supervisor)
    AUTH/sessions/<session>/<venue>/secrets.sealed      release + variant secret (sealed)
    AUTH/sessions/<session>/<venue>/answer-keys.sealed  the keyed paper (no assets), ditto
    AUTH/sessions/<session>/<venue>/pack-record.json    what was packed (non-secret)
"""

from __future__ import annotations

import base64
import json
import os
import shutil
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from paperpack import shamir, sharecards
from paperpack.authority import Authority
from paperpack.canonical import canonical_hash, canonical_json
from paperpack.compress import compress_chunks
from paperpack.crypto import (
    StreamEncryptor,
    public_key_text,
    random_bytes,
    sign,
    wrap,
    zeroise,
)
from paperpack.errors import PaperpackError
from paperpack.fragments import FragmentHeader, FragmentWriter
from paperpack.manifest import (
    CIPHER,
    COMPRESSION,
    FORMAT,
    FORMAT_VERSION,
    SEAT_SEED_BYTES,
    SIGNING_KIND,
    Manifest,
    binding,
    derive_key,
    parse_manifest,
    release_commitment,
    signature_text,
)
from paperpack.model import Paper, paper_to_dict
from paperpack.session import Session, Venue
from paperpack.variants import VariantError, VariantPlan

CHUNK_SIZE = 1 << 20  # plaintext bytes per AEAD chunk = per zfec stripe
SECRET_SIZE = 32  # S_sup, S_dev, variant secret
TIME_SECRET_SIZE = 16  # S_time: short enough to read over the phone (26 symbols), 128 bits
PAYLOAD_FORMAT = "cbt-payload"
PAYLOAD_MAGIC = b"CBTPAYL1"
_PIECE = 3 * (1 << 18)  # assets are fed to zstd 768 KiB at a time

Progress = Callable[[int], None]


class PackError(PaperpackError):
    """The paper and session cannot be packed as asked; the message says what to change."""


@dataclass(frozen=True)
class VenuePack:
    """What `pack_venue` wrote for one venue."""

    venue_id: str
    package_dir: Path
    shares_dir: Path
    central_dir: Path
    manifest: Manifest


# --- the payload: a canonical JSON head, then the assets' raw bytes -----------------------
#
# payload = b"CBTPAYL1" | u64 length of head | head | asset bytes, in the head's order.
# The head is canonical JSON: format, package/session/venue ids, rules, variant secret, the
# paper without keys and without asset data, and each asset's name, media type and size.
# Assets travel as raw bytes rather than base64 inside the JSON: a third less to compress,
# encrypt and code, and the venue never holds a 270 MB JSON string to parse.


def payload_head(
    paper: Paper, manifest_raw: dict[str, Any], variant_secret: bytes | bytearray
) -> dict[str, Any]:
    return {
        "format": PAYLOAD_FORMAT,
        "format_version": manifest_raw["format_version"],  # the package's format version
        "package_id": manifest_raw["package_id"],
        "session_id": manifest_raw["session_id"],
        "venue_id": manifest_raw["venue_id"],
        "rules": manifest_raw["rules"],
        "variant_secret": base64.b64encode(bytes(variant_secret)).decode("ascii"),
        "paper": paper_to_dict(paper, with_keys=False, with_assets=False),
        "assets": [
            {"name": a.name, "media_type": a.media_type, "size": len(a.data)} for a in paper.assets
        ],
    }


def iter_payload(
    paper: Paper, manifest_raw: dict[str, Any], variant_secret: bytes | bytearray
) -> Iterator[bytes | memoryview]:
    """The payload in pieces: the head, then each asset in 768 KiB views (no copies)."""
    head = canonical_json(payload_head(paper, manifest_raw, variant_secret))
    yield PAYLOAD_MAGIC + len(head).to_bytes(8, "big") + head
    for asset in paper.assets:
        view = memoryview(asset.data)
        for start in range(0, len(view), _PIECE):
            yield view[start : start + _PIECE]


# --- sealing ----------------------------------------------------------------------------


@dataclass
class _Sizes:
    plain: int = 0
    compressed: int = 0
    chunks: int = 0


def seal_stream(
    pieces: Iterable[bytes | memoryview],
    key: bytearray,
    header: FragmentHeader,
    directory: Path,
    chunk_size: int,
    progress: Progress | None = None,
) -> tuple[_Sizes, list[str], list[int]]:
    """Compress, encrypt and fragment `pieces` into `directory`; returns sizes and hashes."""
    sizes = _Sizes()

    def counted() -> Iterator[bytes | memoryview]:
        for piece in pieces:
            sizes.plain += len(piece)
            if progress is not None:
                progress(len(piece))
            yield piece

    encryptor = StreamEncryptor(key)
    writer = FragmentWriter(directory, header)
    try:
        for chunk, last in compress_chunks(counted(), chunk_size):
            sizes.compressed += len(chunk)
            sizes.chunks += 1
            writer.write_stripe(encryptor.encrypt(chunk, last=last))
    finally:
        hashes = writer.close()
    return sizes, hashes, writer.sizes


def estimate_plain_size(paper: Paper) -> int:
    """Roughly how many payload bytes a paper makes (for a progress bar)."""
    text = len(canonical_json(paper_to_dict(paper, with_keys=False, with_assets=False)))
    return text + 200 + sum(len(a.data) + 100 for a in paper.assets)


def _check_paper_fits(paper: Paper, session: Session) -> tuple[int, str]:
    """Art. 24: the paper must be the session's subject; duration and kind must agree."""
    if paper.subject_code != session.subject_code:
        raise PackError(
            f"the paper is for subject {paper.subject_code}, the session {session.session_id} for"
            f" {session.subject_code}: pack the right paper or fix subject.code"
        )
    duration = session.duration_minutes or paper.duration_minutes
    if duration != paper.duration_minutes:
        raise PackError(
            f"the session says {duration} minutes, the paper {paper.duration_minutes}:"
            " make duration_minutes agree"
        )
    kind = session.kind or paper.kind
    if kind != paper.kind:
        raise PackError(f"the session says kind {kind}, the paper {paper.kind}: make them agree")
    return duration, kind


def _manifest_skeleton(
    paper: Paper,
    session: Session,
    venue: Venue,
    authority: Authority,
    package_id: bytes,
    wrapped_device: bytes,
    practice: bool = False,
) -> dict[str, Any]:
    duration, kind = _check_paper_fits(paper, session)
    raw: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "manifest_version": session.manifest_version,
        "package_id": package_id.hex(),
        "session_id": session.session_id,
        "subject_code": session.subject_code,
        "subject_name": session.subject_name,
        "paper_id": paper.paper_id,
        "kind": kind,
        "venue_id": venue.venue_id,
        "venue_name": venue.name,
        "start": session.start.isoformat(),
        "duration_minutes": duration,
        "window": {
            "not_before": session.not_before.isoformat(),
            "not_after": session.not_after.isoformat(),
        },
        "rules": dict(session.rules),
        "practice": practice,
        "inspection": list(session.inspection),
        "payload": {"chunk_size": 0, "cipher": CIPHER, "compression": COMPRESSION},
        "fragments": {"total": venue.fragments, "needed": venue.rebuild},
        "shares": {
            "threshold": venue.threshold,
            "holders": venue.supervisors,
            "salt": bytes(random_bytes(16)).hex(),
        },
        "release": {"commitment": ""},
        "device": {
            "wrapped": base64.b64encode(wrapped_device).decode("ascii"),
            "venue_public_key": venue.public_key_text,
        },
        "authority": {
            "signing_key": public_key_text(authority.signing_public),
            # The key the venue seals its answers to: signed here, so the venue learns it with
            # the package, before the exam, and its outbox can send answers home by itself.
            "upload_key": public_key_text(authority.wrapping_public),
        },
    }
    if FORMAT_VERSION >= 3:
        raw["seating"] = seating_fields(paper)
    return raw


def seating_fields(paper: Paper) -> dict[str, Any]:
    """The manifest's `seating` (format 3): a fresh seat seed the centre fixes before any
    venue knows its roster (art. 21(1)), the paper's forms and the item counts of its
    shuffled sections (what the venue's seat plan needs before the unlock, art. 20)."""
    try:
        plan = VariantPlan(paper)  # refuses forms that would come out the same
    except VariantError as exc:
        raise PaperpackError(f"cannot pack: {exc}") from None
    return {
        "seed": bytes(random_bytes(SEAT_SEED_BYTES)).hex(),
        "forms": list(paper.forms),
        "shuffled": list(plan.shuffled),
    }


def device_context(session_id: str, venue_id: str, package_id: bytes) -> bytes:
    return b"|".join([b"cbt-device-secret", session_id.encode(), venue_id.encode(), package_id])


def central_context(what: str, session_id: str, venue_id: str) -> bytes:
    return b"|".join([b"cbt-central", what.encode(), session_id.encode(), venue_id.encode()])


def sign_manifest(raw: dict[str, Any], authority: Authority) -> tuple[bytes, str]:
    """Canonical manifest bytes and the signature file text (tagged `cbt-manifest-v2`)."""
    data = canonical_json(raw)
    return data, signature_text(sign(authority.signing_key, SIGNING_KIND, data))


def _prepare_dirs(out: Path, venue_id: str) -> tuple[Path, Path]:
    final = out / venue_id
    if final.exists():
        raise PackError(f"{final} already exists: pack into a new --out directory")
    staging = out / f".{venue_id}.partial"
    if staging.exists():
        shutil.rmtree(staging)
    (staging / "package").mkdir(parents=True)
    (staging / "shares").mkdir()
    os.chmod(staging / "shares", 0o700)
    return final, staging


def _check_version(central: Path, version: int) -> None:
    record = central / "pack-record.json"
    if record.is_file():
        seen = json.loads(record.read_text(encoding="utf-8")).get("manifest_version", 0)
        if version <= seen:
            raise PackError(
                f"{central.parent.name}/{central.name} was already packed with manifest_version"
                f" {seen}: raise manifest_version in the session file above {seen} to re-pack"
            )


def _write_secret(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def pack_venue(
    paper: Paper,
    session: Session,
    venue: Venue,
    authority: Authority,
    out: Path,
    *,
    chunk_size: int = CHUNK_SIZE,
    progress: Progress | None = None,
    now: datetime | None = None,
    payload: Iterable[bytes | memoryview] | None = None,
    practice: bool = False,
) -> VenuePack:
    """Seal `paper` for one venue. `payload` replaces the paper's payload bytes (for tools
    and the bad-package kit, which needs a payload the packer would never make). `practice`
    signs the package as the dry run's (art. 21(3)): the venue reads it from the manifest."""
    central = authority.central_dir(session.session_id, venue.venue_id)
    _check_version(central, session.manifest_version)
    final, staging = _prepare_dirs(out, venue.venue_id)
    package_id = bytes(random_bytes(16))
    s_sup, s_time, s_dev = (
        random_bytes(SECRET_SIZE),
        random_bytes(TIME_SECRET_SIZE),
        random_bytes(SECRET_SIZE),
    )
    variant_secret = random_bytes(SECRET_SIZE)
    key = bytearray()
    try:
        wrapped = wrap(
            venue.public_key,
            s_dev,
            context=device_context(session.session_id, venue.venue_id, package_id),
        )
        raw = _manifest_skeleton(
            paper, session, venue, authority, package_id, wrapped, practice=practice
        )
        raw["payload"]["chunk_size"] = chunk_size
        raw["release"]["commitment"] = release_commitment(raw, s_time)
        key, raw["key_commitment"] = derive_key(s_sup, s_time, s_dev, raw)
        header = FragmentHeader(
            package_id, session.session_id, venue.venue_id, 0, venue.fragments, venue.rebuild
        )
        pieces = payload if payload is not None else iter_payload(paper, raw, variant_secret)
        sizes, hashes, fragment_sizes = seal_stream(
            pieces, key, header, staging / "package", chunk_size, progress
        )
        raw["payload"].update(
            plain_size=sizes.plain,
            compressed_size=sizes.compressed,
            chunks=sizes.chunks,
            ciphertext_size=sizes.compressed + 16 * sizes.chunks,
        )
        raw["fragments"].update(hashes=hashes, sizes=fragment_sizes)
        _write_share_cards(raw, venue, s_sup, staging / "shares")
        raw["packed_at"] = (now or datetime.now(UTC)).isoformat()
        data, signature = sign_manifest(raw, authority)
        parse_manifest(data)  # the packer never writes a manifest the venue would refuse
        (staging / "package" / "manifest.json").write_bytes(data)
        (staging / "package" / "manifest.sig").write_text(signature, encoding="ascii")
        _write_central(paper, raw, authority, central, s_time, variant_secret)
    finally:
        zeroise(s_sup, s_time, s_dev, variant_secret, key)
    staging.rename(final)
    return VenuePack(venue.venue_id, final / "package", final / "shares", central, Manifest(raw))


def _write_share_cards(raw: dict[str, Any], venue: Venue, s_sup: bytearray, folder: Path) -> None:
    set_id = sharecards.set_identifier(raw["session_id"], raw["venue_id"], binding(raw))
    shares = shamir.split(bytes(s_sup), venue.threshold, venue.supervisors)
    salt = bytes.fromhex(raw["shares"]["salt"])
    commitments: dict[str, str] = {}
    for share in shares:
        commitments[str(share.x)] = sharecards.share_commitment(set_id, share.x, share.data, salt)
        card = sharecards.format_card(
            set_id=set_id,
            holder=share.x,
            holders_total=venue.supervisors,
            threshold=venue.threshold,
            share=share,
            session_id=raw["session_id"],
            venue_id=raw["venue_id"],
            venue_name=raw["venue_name"],
            starts_at=raw["start"],
        )
        _write_secret(folder / f"holder-{share.x}.txt", card.encode("utf-8"))
    raw["shares"].update(set_id=set_id, commitments=commitments)


def _write_central(
    paper: Paper,
    raw: dict[str, Any],
    authority: Authority,
    central: Path,
    s_time: bytearray,
    variant_secret: bytearray,
) -> None:
    central.mkdir(parents=True, exist_ok=True)
    session_id, venue_id = raw["session_id"], raw["venue_id"]
    secrets_doc = {
        "package_id": raw["package_id"],
        "release_secret": base64.b64encode(bytes(s_time)).decode("ascii"),
        "variant_secret": base64.b64encode(bytes(variant_secret)).decode("ascii"),
    }
    _write_secret(
        central / "secrets.sealed",
        wrap(
            authority.wrapping_public,
            canonical_json(secrets_doc),
            context=central_context("secrets", session_id, venue_id),
        ),
    )
    keyed = paper_to_dict(paper, with_keys=True, with_assets=False)
    keys_doc = {
        "package_id": raw["package_id"],
        "paper_sha256": canonical_hash(keyed),
        "paper": keyed,
    }
    _write_secret(
        central / "answer-keys.sealed",
        wrap(
            authority.wrapping_public,
            canonical_json(keys_doc),
            context=central_context("answer-keys", session_id, venue_id),
        ),
    )
    record = {
        "session_id": session_id,
        "venue_id": venue_id,
        "venue_name": raw["venue_name"],
        "venue_public_key": raw["device"]["venue_public_key"],
        "package_id": raw["package_id"],
        "manifest_version": raw["manifest_version"],
        "manifest_sha256": canonical_hash(raw),
        "paper_id": raw["paper_id"],
        "window": raw["window"],
        "payload": raw["payload"],
        "fragments": raw["fragments"],
        "packed_at": raw["packed_at"],
    }
    (central / "pack-record.json").write_text(
        json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )


def pack_session(
    paper: Paper,
    session: Session,
    authority: Authority,
    out: Path,
    *,
    chunk_size: int = CHUNK_SIZE,
    progress: Progress | None = None,
    now: datetime | None = None,
    practice: bool = False,
) -> list[VenuePack]:
    """Seal `paper` for every venue of `session` into `out` (`practice`: the dry run's)."""
    _check_paper_fits(paper, session)
    out.mkdir(parents=True, exist_ok=True)
    return [
        pack_venue(
            paper,
            session,
            venue,
            authority,
            out,
            chunk_size=chunk_size,
            progress=progress,
            now=now,
            practice=practice,
        )
        for venue in session.venues
    ]
