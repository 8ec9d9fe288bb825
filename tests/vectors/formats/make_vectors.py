"""Make one frozen set of format vectors with the real producers (run once per format version).

    python tests/vectors/formats/make_vectors.py --version 1

writes `tests/vectors/formats/v<N>/` and refuses if it exists: a committed set is never
re-made, because the tests prove that today's code still opens yesterday's bytes. When a
format changes, add a new version (a new folder made by the code of that day) and keep the
old ones. Not collected by pytest (the name does not start with `test_`), never run by tests.

Every artifact is written by the code that writes it in production: `paperpack.pack`,
`paperpack.release`, `server.venue.journal`, `server.audit`, `server.venue.submission`,
`server.venue.export`, `server.central.sqlite_store` with `server.protocol.receipts`. The
generator adds only what those producers keep to themselves and a test needs in order to
re-derive the bytes: the secrets of the package (recovered with the consumers: unwrapped,
combined from the cards, decoded from the release code), the ephemeral X25519 key of each
version 1 wrap (recorded as `X25519PrivateKey.generate` returns it, not replaced; an HPKE
wrap keeps its ephemeral inside `cryptography`), and the intermediate streams (STREAM
plaintext and ciphertext, payload).

Each artifact has its own function (`make_sealed_package`, `make_release`,
`make_delay_approval`, `make_venue_sitting`, `make_response_package`, `make_centre_log`);
`PRODUCERS` lists them per set version, so a new format version adds its own entries and
the old ones stay as they are. All keys made here are test-only keys, committed on purpose.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import json
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

from paperpack import crypto, shamir, sharecards
from paperpack.approval import issue_delay_approval
from paperpack.authority import Authority, init_authority, load_authority
from paperpack.canonical import canonical_json
from paperpack.compress import decompress_stream
from paperpack.manifest import KEY_INFO, binding, derive_key
from paperpack.model import Paper, paper_from_dict, paper_to_dict
from paperpack.pack import central_context, device_context, pack_venue
from paperpack.package import open_package
from paperpack.release import issue_release, release_context
from paperpack.session import session_from_dict
from paperpack.unlock import Unlock
from server import audit
from server.central.sqlite_store import SqliteStorage
from server.central.storage import VenueRecord
from server.central.uploads import package_entry
from server.clock import iso
from server.protocol.receipts import sign_receipt
from server.protocol.release import (
    release_request_message,
    sign_release_request,
    wrap_release_response,
)
from server.protocol.response_package import check_response_package
from server.store import transaction
from server.venue import journal
from server.venue.export import export_session
from server.venue.submission import finalise_attempt
from server.venue.workspace import (
    Venue,
    init_venue,
    load_signing_key,
    load_wrapping_key,
    open_venue_db,
)

HERE = Path(__file__).resolve().parent

# The story every set tells: one session at one venue, packed three days before, released and
# unlocked in the window, four candidates (one absent), exported and accepted by the centre.
SESSION_ID = "S-VEC-1"
VENUE_ID = "V-VEC"
VENUE_NAME = "Vector venue"
START = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
CREATED_AT = START - timedelta(days=5)  # venue directory made
PACKED_AT = START - timedelta(days=3)
RELEASED_AT = START - timedelta(minutes=50)
UNLOCK_AT = START - timedelta(minutes=30)  # inside the window (opens 60 min before)
EXPORTED_AT = START + timedelta(hours=3)
RECEIVED_AT = EXPORTED_AT + timedelta(minutes=5)
CHUNK_SIZE = 1024  # the smallest the manifest allows, so a tiny paper still has 4 chunks
TICKETS = ("T0001", "T0002", "T0003", "T0004")
DELAY_MINUTES = 45  # over 30: needs the centre's approval (art. 31)
JOURNAL_COLUMNS = ("seq", "position", "saved_at", "responses", "prev_hash", "hash")


def _pseudo_random(size: int, label: bytes) -> bytes:
    """Reproducible incompressible bytes (SHA-256 in counter mode) for the paper's asset."""
    out = b"".join(
        hashlib.sha256(label + i.to_bytes(4, "big")).digest() for i in range(-(-size // 32))
    )
    return out[:size]


def vector_paper() -> dict[str, Any]:
    """The tiny paper (as plain data, keys included): three items, one 2.5 KB asset."""
    return {
        "paper_id": "P-VEC",
        "subject_code": "27",
        "subject_name": "Vector subject",
        "title": "Format vector paper / 格式向量试卷",
        "language": "zh-CN",
        "duration_minutes": 120,
        "kind": "standard",
        "pass_mark": 3.5,
        "sections": [
            {
                "id": "s1",
                "title": "Objective",
                "instructions": "<p>Choose.</p>",
                "shuffle": True,
                "items": [
                    {
                        "id": "q1",
                        "type": "single_choice",
                        "stem": "<p>Which one? 哪一个？</p>",
                        "points": 2,
                        "options": [
                            {"id": "a", "html": "A"},
                            {"id": "b", "html": "B"},
                            {"id": "c", "html": "C"},
                        ],
                        "key": ["b"],
                    },
                    {
                        "id": "q2",
                        "type": "fill_blank",
                        "stem": "<p>Name it: ___</p>",
                        "points": 2,
                        "blanks": [{"id": "b1", "accepted": ["quokka-key-7"]}],
                    },
                ],
            },
            {
                "id": "s2",
                "title": "Essay",
                "shuffle": False,
                "items": [
                    {
                        "id": "q3",
                        "type": "essay",
                        "stem": "<p>Discuss.</p>",
                        "points": 3,
                        "max_length": 500,
                    }
                ],
            },
        ],
        "assets": {
            "chart.bin": {
                "media_type": "application/octet-stream",
                "data": base64.b64encode(_pseudo_random(2500, b"cbt vector asset")).decode(),
            }
        },
    }


def _hex(data: bytes | bytearray) -> str:
    return bytes(data).hex()


def _raw_private(key: crypto.X25519PrivateKey) -> bytes:
    # The private_bytes_raw accessor avoids importing serialization outside paperpack.crypto.
    return key.private_bytes_raw()


@dataclass
class Context:
    """What the producers share: the folder being written, keys, and recorded ephemerals."""

    version: int
    out: Path
    work: Path
    authority: Authority | None = None
    venue: Venue | None = None
    ephemerals: dict[str, str] = field(default_factory=dict)  # base64 public -> hex private
    notes: dict[str, Any] = field(default_factory=dict)  # facts later producers need

    def write(self, relative: str, data: bytes) -> Path:
        path = self.out / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path

    def write_json(self, relative: str, value: Any) -> Path:
        """Canonical JSON (the bytes a test re-derives with canonical_json)."""
        return self.write(relative, canonical_json(value))

    @contextlib.contextmanager
    def recording_ephemerals(self) -> Iterator[None]:
        """Record every X25519 key `crypto.wrap` generates, leaving the key itself unchanged."""
        real = crypto.X25519PrivateKey.generate

        def generate() -> crypto.X25519PrivateKey:
            key = real()
            self.ephemerals[crypto.public_key_text(key.public_key())] = _raw_private(key).hex()
            return key

        with mock.patch.object(crypto.X25519PrivateKey, "generate", generate):
            yield

    def wrap_record(
        self, blob: bytes, recipient: crypto.X25519PrivateKey, context: bytes, what: str
    ) -> dict[str, Any]:
        """Everything a test needs to unwrap `blob`, and for a version 1 wrap to make it again
        byte for byte (its ephemeral key, shared secret and HKDF wrap key). An HPKE wrap
        (version 2) keeps its ephemeral inside `cryptography`: it is recorded for unwrapping."""
        plaintext = crypto.unwrap(recipient, blob, context=context, legacy=True)
        record: dict[str, Any] = {
            "what": what,
            "wrap_version": blob[4],
            "blob_sha256": hashlib.sha256(blob).hexdigest(),
            "context_hex": context.hex(),
            "plaintext_hex": _hex(plaintext),
        }
        if blob.startswith(crypto.LEGACY_WRAP_FORMAT):
            eph_pub = blob[5:37]
            private_hex = self.ephemerals[base64.b64encode(eph_pub).decode()]
            ephemeral = crypto.X25519PrivateKey.from_private_bytes(bytes.fromhex(private_hex))
            shared = ephemeral.exchange(recipient.public_key())
            recipient_pub = base64.b64decode(crypto.public_key_text(recipient.public_key()))
            wrap_key = crypto.hkdf(
                shared, salt=eph_pub + recipient_pub, info=crypto.LEGACY_WRAP_INFO + b"|" + context
            )
            record.update(
                ephemeral_private_hex=private_hex,
                shared_secret_hex=shared.hex(),
                wrap_key_hex=_hex(wrap_key),
            )
        return record


# --- keys ---------------------------------------------------------------------------------


def make_keys(ctx: Context) -> None:
    """Test-only keys: the authority (signing + upload) and the venue server (sign + wrap)."""
    init_authority(ctx.work / "authority")
    ctx.authority = load_authority(ctx.work / "authority")
    ctx.venue = init_venue(ctx.work / "venue", VENUE_ID, VENUE_NAME, now=CREATED_AT)
    for source, name in (
        (ctx.work / "authority" / "signing.key", "authority-signing.pem"),
        (ctx.work / "authority" / "signing.pub", "authority-signing.pub"),
        (ctx.work / "authority" / "upload.key", "authority-upload.pem"),
        (ctx.work / "authority" / "upload.pub", "authority-upload.pub"),
        (ctx.venue.keys_dir / "venue-sign.pem", "venue-sign.pem"),
        (ctx.venue.keys_dir / "venue-sign.pub", "venue-sign.pub"),
        (ctx.venue.keys_dir / "venue-wrap.pem", "venue-wrap.pem"),
        (ctx.venue.keys_dir / "venue-wrap.pub", "venue-wrap.pub"),
    ):
        ctx.write(f"keys/{name}", source.read_bytes())


# --- the sealed package, its cards and the release -----------------------------------------


def _session_data(ctx: Context) -> dict[str, Any]:
    assert ctx.venue is not None
    return {
        "session_id": SESSION_ID,
        "subject": {"code": "27", "name": "Vector subject"},
        "start": START.isoformat(),
        "duration_minutes": 120,
        "manifest_version": 1,
        "venues": [
            {
                "id": VENUE_ID,
                "name": VENUE_NAME,
                "public_key": ctx.venue.wrap_public,
                "supervisors": 3,
                "threshold": 2,
                "fragments": 3,
                "rebuild": 2,
            }
        ],
    }


def make_sealed_package(ctx: Context) -> None:
    """paperpack.pack: manifest, signature, fragments, share cards and the central material."""
    assert ctx.authority is not None and ctx.venue is not None
    paper_data = vector_paper()
    session_data = _session_data(ctx)
    ctx.write_json("package/input/paper.json", paper_data)
    ctx.write_json("package/input/session.json", session_data)
    paper = paper_from_dict(paper_data)
    session = session_from_dict(session_data)
    with ctx.recording_ephemerals():
        packed = pack_venue(
            paper,
            session,
            session.venues[0],
            ctx.authority,
            ctx.work / "out",
            chunk_size=CHUNK_SIZE,
            now=PACKED_AT,
        )
    for path in sorted(packed.package_dir.iterdir()):
        ctx.write(f"package/sealed/{path.name}", path.read_bytes())
    for path in sorted(packed.shares_dir.iterdir()):
        ctx.write(f"package/shares/{path.name}", path.read_bytes())
    for path in sorted(packed.central_dir.iterdir()):
        ctx.write(f"package/central/{path.name}", path.read_bytes())
    ctx.notes["paper"] = paper
    ctx.notes["package_dir"] = packed.package_dir
    ctx.notes["shares_dir"] = packed.shares_dir


def make_release(ctx: Context) -> None:
    """paperpack.release.issue_release: the phone code and the signed record."""
    assert ctx.authority is not None
    with ctx.recording_ephemerals():
        release = issue_release(ctx.authority, SESSION_ID, VENUE_ID, now=RELEASED_AT)
    ctx.write("package/release/release-code.txt", release.code.encode("ascii"))
    ctx.write_json("package/release/release-record.json", release.record)
    ctx.notes["release"] = release


def record_package_secrets(ctx: Context) -> None:
    """Recover the package's secrets with the consumers and write what a test re-derives.

    Also unlocks the package the way a venue does (shares, release record, the venue key), so
    a set is never written unless today's consumer opens it.
    """
    assert ctx.authority is not None and ctx.venue is not None
    paper: Paper = ctx.notes["paper"]
    release = ctx.notes["release"]
    venue_key = load_wrapping_key(ctx.venue)
    opened = open_package(ctx.notes["package_dir"], ctx.authority.signing_public)
    m = opened.manifest
    raw = m.raw
    package_id = m.package_id_bytes
    device_ctx = device_context(SESSION_ID, VENUE_ID, package_id)
    s_dev = crypto.unwrap(venue_key, m.wrapped_device_secret, context=device_ctx, legacy=True)
    central = ctx.out / "package" / "central"
    secrets_ctx = central_context("secrets", SESSION_ID, VENUE_ID)
    keys_ctx = central_context("answer-keys", SESSION_ID, VENUE_ID)
    secrets_blob = (central / "secrets.sealed").read_bytes()
    keys_blob = (central / "answer-keys.sealed").read_bytes()
    secrets_doc = json.loads(
        bytes(
            crypto.unwrap(
                ctx.authority.wrapping_key, secrets_blob, context=secrets_ctx, legacy=True
            )
        )
    )
    s_time = bytearray(base64.b64decode(secrets_doc["release_secret"]))
    variant_secret = base64.b64decode(secrets_doc["variant_secret"])
    cards = {
        int(p.stem.split("-")[1]): sharecards.parse_card(p.read_text(encoding="utf-8"))
        for p in sorted(ctx.notes["shares_dir"].glob("holder-*.txt"))
    }
    s_sup = bytearray(shamir.combine([cards[1].share, cards[2].share]))
    assert s_sup == bytearray(shamir.combine([cards[2].share, cards[3].share]))
    key, tag = derive_key(s_sup, s_time, s_dev, raw)
    assert tag == raw["key_commitment"]
    ikm = bytes(s_sup + s_time + s_dev)
    info = b"|".join([KEY_INFO, SESSION_ID.encode(), VENUE_ID.encode(), binding(raw)])
    okm = crypto.hkdf(ikm, salt=package_id, info=info, length=64)
    assert okm[:32] == key

    # The STREAM: ciphertext chunks rebuilt from the fragments, their plaintext, the payload.
    from paperpack.fragments import read_stripes

    lengths = m.stripe_lengths()
    stripes = list(
        read_stripes(
            opened.fragments,
            opened.header_lengths,
            lengths,
            m.fragments["needed"],
            m.fragments["total"],
        )
    )
    decryptor = crypto.StreamDecryptor(key)
    compressed = [decryptor.decrypt(s, last=i == len(stripes) - 1) for i, s in enumerate(stripes)]
    payload = b"".join(decompress_stream(iter(compressed), m.payload["plain_size"]))
    ctx.write("package/stream/ciphertext.bin", b"".join(stripes))
    ctx.write("package/stream/plaintext.zst", b"".join(compressed))
    ctx.write("package/stream/payload.bin", payload)

    # The venue's unlock, exactly as the ceremony runs it.
    unlock = Unlock(opened, venue_key, UNLOCK_AT)
    unlock.add_share((ctx.notes["shares_dir"] / "holder-1.txt").read_text(encoding="utf-8"), "a")
    unlock.add_share((ctx.notes["shares_dir"] / "holder-3.txt").read_text(encoding="utf-8"), "b")
    unlock.add_release(release.record, now=UNLOCK_AT)
    unlocked = unlock.open(UNLOCK_AT)
    assert paper_to_dict(unlocked.paper, with_keys=False) == paper_to_dict(paper, with_keys=False)
    assert unlocked.variant_secret == variant_secret
    ctx.write_json("package/unlocked/paper.json", paper_to_dict(unlocked.paper, with_keys=False))

    record_blob = base64.b64decode(release.record["wrapped_secret"])
    record_ctx = release_context(SESSION_ID, VENUE_ID, raw["package_id"])
    wraps = {
        "device": ctx.wrap_record(m.wrapped_device_secret, venue_key, device_ctx, "manifest"),
        "secrets": ctx.wrap_record(
            secrets_blob, ctx.authority.wrapping_key, secrets_ctx, "central/secrets.sealed"
        ),
        "answer_keys": ctx.wrap_record(
            keys_blob, ctx.authority.wrapping_key, keys_ctx, "central/answer-keys.sealed"
        ),
        "release": ctx.wrap_record(record_blob, venue_key, record_ctx, "release-record.json"),
    }
    ctx.write_json(
        "package/expected.json",
        {
            "set_version": ctx.version,
            "session_id": SESSION_ID,
            "venue_id": VENUE_ID,
            "unlock_at": UNLOCK_AT.isoformat(),
            "secrets": {
                "s_sup_hex": _hex(s_sup),
                "s_time_hex": _hex(s_time),
                "s_dev_hex": _hex(s_dev),
                "variant_secret_hex": variant_secret.hex(),
            },
            "shares": {str(x): card.data.hex() for x, card in sorted(cards.items())},
            "key": {
                "binding_hex": binding(raw).hex(),
                "hkdf_ikm_hex": ikm.hex(),
                "hkdf_salt_hex": package_id.hex(),
                "hkdf_info_hex": info.hex(),
                "okm_hex": _hex(okm),
                "content_key_hex": _hex(key),
                "key_commitment": tag,
            },
            "stream": {
                "chunk_lengths": [len(c) for c in compressed],
                "associated_data_hex": "",
            },
            "wraps": wraps,
        },
    )
    unlock.close()


# --- start-delay approval ----------------------------------------------------------------------


def delay_approval_message_v1(session_id: str, venue_id: str, delay_minutes: int) -> bytes:
    """Format 1's signed message (was server.venue.rules.delay_approval_message; format 2,
    paperpack.approval, replaced it and format 1 is no longer accepted by the venue)."""
    return canonical_json(
        {"purpose": "start-delay-approval", "session_id": session_id, "venue_id": venue_id,
         "delay_minutes": delay_minutes}
    )  # fmt: skip


def make_delay_approval(ctx: Context) -> None:
    """A centre-signed approval code for a 45-minute delay, format 1: base64 Ed25519 over
    `delay_approval_message_v1` (set 1 only; there was no other producer)."""
    assert ctx.authority is not None
    message = delay_approval_message_v1(SESSION_ID, VENUE_ID, DELAY_MINUTES)
    signature = ctx.authority.signing_key.sign(message)  # format 1: a bare signature
    code = base64.b64encode(signature).decode("ascii")
    ctx.write("delay-approval/message.bin", message)
    ctx.write_json(
        "delay-approval/approval.json",
        {
            "session_id": SESSION_ID,
            "venue_id": VENUE_ID,
            "delay_minutes": DELAY_MINUTES,
            "approval": code,
        },
    )


def make_delay_approval_v2(ctx: Context) -> None:
    """paperpack.approval.issue_delay_approval: format 2, bound to the package, expiring 12 h
    after issue; the code as pasted, and the signed document it is the base64 of."""
    assert ctx.authority is not None
    code = issue_delay_approval(ctx.authority, SESSION_ID, VENUE_ID, DELAY_MINUTES, now=RELEASED_AT)
    ctx.write("delay-approval/approval-code.txt", code.encode("ascii"))
    ctx.write("delay-approval/approval.json", base64.b64decode(code))


# --- the venue's sitting: journals, submissions, the venue audit chain --------------------------


def make_venue_sitting(ctx: Context) -> None:
    """Saves through the real journal, submissions through finalise_attempt, audit events
    through server.audit.record; then the journal and audit rows as stored."""
    assert ctx.venue is not None
    db = open_venue_db(ctx.venue.directory)
    try:
        with transaction(db):
            db.execute(
                "INSERT INTO sessions (session_id, subject, title, starts_at, duration_ms, status,"
                " unlocked_at) VALUES (?, '27', 'Vector subject', ?, ?, 'running', ?)",
                (SESSION_ID, iso(START), 120 * 60_000, iso(UNLOCK_AT)),
            )
            audit.record(
                db, "chief", "session.unlocked", f"session:{SESSION_ID}", {"holders": 2},
                now=UNLOCK_AT,
            )  # fmt: skip
            for n, ticket in enumerate(TICKETS, start=1):
                db.execute(
                    "INSERT INTO candidates (session_id, ticket, name, id_number, subject, row_no,"
                    " imported_at) VALUES (?, ?, ?, ?, '27', ?, ?)",
                    (SESSION_ID, ticket, f"Candidate {n}", f"ID{n:04d}", n + 1, iso(CREATED_AT)),
                )
        saves = {
            "A1": [{"q1": ["a"]}, {"q2": {"b1": "quokka"}}, {"q1": ["b"], "q3": "长答案 essay"}],
            "A2": [{"q1": ["c"]}, {"q3": ""}],
            "A3": [{"q2": {"b1": "wombat"}}],
        }
        for n, (attempt_id, batches) in enumerate(saves.items()):
            ticket = TICKETS[n]
            login = START + timedelta(minutes=1 + n)
            with transaction(db):
                db.execute(
                    "INSERT INTO attempts (attempt_id, session_id, ticket, logged_in_at)"
                    " VALUES (?, ?, ?, ?)",
                    (attempt_id, SESSION_ID, ticket, iso(login)),
                )
                audit.record(
                    db, f"candidate:{ticket}", "attempt.login",
                    f"session:{SESSION_ID}/ticket:{ticket}", {"attempt_id": attempt_id}, now=login,
                )  # fmt: skip
            for seq, responses in enumerate(batches, start=1):
                with transaction(db):
                    journal.append_save(
                        db, attempt_id, seq, responses, login + timedelta(minutes=10 * seq)
                    )
        with transaction(db):
            db.execute(
                "INSERT INTO absences (session_id, ticket, marked_by, marked_at)"
                " VALUES (?, ?, 'inv1', ?)",
                (SESSION_ID, TICKETS[-1], iso(START + timedelta(minutes=6))),
            )
            audit.record(
                db, "inv1", "absence.marked", f"session:{SESSION_ID}/ticket:{TICKETS[-1]}",
                now=START + timedelta(minutes=6),
            )  # fmt: skip
        with transaction(db):
            finalise_attempt(db, "A1", "candidate", START + timedelta(minutes=110))
            finalise_attempt(db, "A2", "time_up", START + timedelta(minutes=120))
            finalise_attempt(db, "A3", "time_up", START + timedelta(minutes=120))
            db.execute(
                "UPDATE sessions SET status = 'ended', ended_at = ? WHERE session_id = ?",
                (iso(START + timedelta(minutes=121)), SESSION_ID),
            )
        journals = {
            attempt_id: [
                dict(zip(JOURNAL_COLUMNS, row, strict=True))
                for row in db.execute(
                    "SELECT seq, position, saved_at, responses, prev_hash, hash FROM journal"
                    " WHERE attempt_id = ? ORDER BY position",
                    (attempt_id,),
                )
            ]
            for attempt_id in saves
        }
        for attempt_id in saves:
            journal.verify_chain(db, attempt_id)
    finally:
        db.close()
    ctx.write_json("journal/journal.json", journals)


def _venue_audit_rows(venue_dir: Path) -> list[dict[str, Any]]:
    db = open_venue_db(venue_dir)
    try:
        audit.verify_audit(db)
        keys = ["event_id", "at", "actor", "action", "object", "details", "prev_hash", "hash"]
        # Each row names its chain format where the table records it (sets 1 and 2 were made
        # before this line: set 1's table had no such column, set 2's rows are cbt-audit-v2).
        if "chain_format" in db["audit_events"].columns_dict:
            keys.append("chain_format")
        return [
            dict(zip(keys, row, strict=True))
            for row in db.execute(
                f"SELECT {', '.join(keys)} FROM audit_events ORDER BY event_id"  # noqa: S608 (fixed names)
            )
        ]
    finally:
        db.close()


# --- the response package, the centre's receipt and the centre's audit chain ------------------


def make_response_package(ctx: Context) -> None:
    """server.venue.export.export_session: the session's answers sealed for the centre."""
    assert ctx.venue is not None and ctx.authority is not None
    with ctx.recording_ephemerals():
        result = export_session(
            ctx.venue.directory,
            SESSION_ID,
            central_key=ctx.work / "authority" / "upload.pub",
            actor="cli:vectors",
            now=EXPORTED_AT,
        )
    data = result.path.read_bytes()
    ctx.write("response/package.cbtr", data)
    # The venue's audit chain now ends with the export: freeze it after that event.
    ctx.write_json("audit/venue-audit.json", _venue_audit_rows(ctx.venue.directory))
    ctx.notes["response"] = data


def make_centre_log(ctx: Context) -> None:
    """The centre's store accepts the package (the upload route's steps without HTTP): the
    signed receipt and the centre's audit chain (release served, package accepted)."""
    assert ctx.venue is not None and ctx.authority is not None
    data: bytes = ctx.notes["response"]
    venue_sign = load_signing_key(ctx.venue)
    authority = ctx.authority

    async def run() -> tuple[dict[str, Any], list[dict[str, Any]]]:
        (ctx.work / "central").mkdir()
        storage = SqliteStorage(ctx.work / "central" / "central.db")
        await storage.open()
        try:
            await storage.add_venue(
                VenueRecord(
                    VENUE_ID, VENUE_NAME, ctx.venue.sign_public, ctx.venue.wrap_public,  # type: ignore[union-attr]
                    iso(CREATED_AT),
                )
            )  # fmt: skip
            await storage.record_release(SESSION_ID, VENUE_ID, iso(RELEASED_AT), iso(RELEASED_AT))
            digest = hashlib.sha256(data).hexdigest()
            now = iso(RECEIVED_AT)
            await storage.create_upload(digest, VENUE_ID, len(data), now)
            await storage.append_chunk(digest, 0, data, now)
            stored = await storage.read_upload(digest)
            header = check_response_package(stored, venue_sign.public_key(), authority.wrapping_key)

            def sign(entry: Any, received_at: str, position: int, prev: str, root: str) -> Any:
                return sign_receipt(authority.signing_key, entry, received_at, position, prev, root)

            receipt = await storage.accept_package(
                package_entry(header, digest, len(stored)), sign, now
            )
            return receipt, await storage.audit_events()
        finally:
            await storage.close()

    receipt, events = asyncio.run(run())
    ctx.write_json("response/receipt.json", receipt)
    ctx.write_json("audit/central-audit.json", events)

    # What the tests re-derive for the response package: its content key and its streams.
    from server.protocol import response_package

    header = response_package.verify_response_package(data, venue_sign.public_key())
    opened = response_package.open_response_package(
        data, venue_sign.public_key(), authority.wrapping_key
    )
    context = canonical_json(
        {"purpose": "cbt-response-payload", "session_id": SESSION_ID, "venue_id": VENUE_ID,
         "export_seq": header.export_seq}
    )  # fmt: skip
    wrapped = base64.b64decode(header.wrapped_key)
    ctx.write_json("response/contents.json", opened.contents)
    ctx.write_json("response/evidence.json", opened.evidence())
    ctx.write_json(
        "response/expected.json",
        {
            "set_version": ctx.version,
            "package_sha256": hashlib.sha256(data).hexdigest(),
            "header": header.to_dict(),
            "payload_context_hex": context.hex(),
            "wrap": ctx.wrap_record(wrapped, authority.wrapping_key, context, "header.wrapped_key"),
        },
    )


# --- the online release exchange ---------------------------------------------------------------


def make_release_exchange(ctx: Context) -> None:
    """The venue's signed release request (server.protocol.release.sign_release_request) and
    the centre's answer (wrap_release_response) carrying this set's release record.

    Reads the keys and the record from the set's files, so it also runs with `--add` on a
    committed set: set 1 got it that way (see README), before the request's format 2."""
    keys = ctx.out / "keys"
    venue_sign = crypto.load_private_key(keys / "venue-sign.pem")
    venue_wrap = crypto.load_private_key(keys / "venue-wrap.pem")
    assert isinstance(venue_sign, crypto.Ed25519PrivateKey)
    assert isinstance(venue_wrap, crypto.X25519PrivateKey)
    record = json.loads((ctx.out / "package" / "release" / "release-record.json").read_bytes())
    requested_at = iso(RELEASED_AT)
    request = sign_release_request(venue_sign, SESSION_ID, VENUE_ID, requested_at)
    with ctx.recording_ephemerals():
        answer = wrap_release_response(
            venue_wrap.public_key(), record, SESSION_ID, VENUE_ID, requested_at
        )
    message = release_request_message(SESSION_ID, VENUE_ID, requested_at)
    ctx.write("release-exchange/message.bin", message)
    ctx.write_json("release-exchange/request.json", request)
    ctx.write_json("release-exchange/answer.json", answer)
    blob = base64.b64decode(answer["wrapped_release"])
    context = f"cbt-release|{SESSION_ID}|{VENUE_ID}".encode()
    ctx.write_json(
        "release-exchange/expected.json",
        {
            "set_version": ctx.version,
            "wrap": ctx.wrap_record(blob, venue_wrap, context, "answer.wrapped_release"),
        },
    )


# --- the set ------------------------------------------------------------------------------------

Producer = Callable[[Context], None]
PRODUCERS: dict[int, list[Producer]] = {
    # Set 1: the formats before domain-separated signatures and HPKE (package format 1,
    # release record 1, share card 1, response package 2, receipt 1, legacy audit chains).
    1: [
        make_keys,
        make_sealed_package,
        make_release,
        record_package_secrets,
        make_delay_approval,
        make_venue_sitting,
        make_response_package,
        make_centre_log,
        # Added to the committed set 1 with `--add make_release_exchange` (request format 1,
        # answer wrap version 1, set 1's record), before the request's format 2 landed.
        make_release_exchange,
    ],
    # Set 2: domain-tagged signatures and HPKE wraps (package format 2, release record 2,
    # start-delay approval 2, response package 3, receipt 1, audit chain cbt-audit-v2). The
    # producers of set 1 make today's formats under today's code; the approval has its own.
    2: [
        make_keys,
        make_sealed_package,
        make_release,
        record_package_secrets,
        make_delay_approval_v2,
        make_venue_sitting,
        make_response_package,
        make_centre_log,
        make_release_exchange,  # request format 2 (tagged), answer in an HPKE wrap
    ],
    # Set 3: package format 3 (format 2 plus the signed, sealed `practice`, `inspection` and
    # `seating`: the centre's seat seed, the paper's forms, its shuffled sections' item
    # counts). Only the package changed, so only the package's producers run.
    3: [
        make_keys,
        make_sealed_package,
        make_release,
        record_package_secrets,
    ],
}


def write_sums(out: Path) -> None:
    """SHA256SUMS over every file of the set, so any flipped byte fails a named test."""
    lines = [
        f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.relative_to(out).as_posix()}"
        for p in sorted(out.rglob("*"))
        if p.is_file() and p.name != "SHA256SUMS"
    ]
    (out / "SHA256SUMS").write_text("\n".join(lines) + "\n", encoding="ascii")


def build(version: int, out: Path) -> None:
    """Run the producers of set `version` into `out` (a new folder)."""
    if version not in PRODUCERS:
        raise SystemExit(f"no producers for set version {version}: add them to PRODUCERS")
    if out.exists():
        raise SystemExit(f"{out} exists: a committed set is never re-made; add a new version")
    staging = out.with_name(f".{out.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    with tempfile.TemporaryDirectory(prefix="cbt-vectors-") as work:
        ctx = Context(version, staging, Path(work))
        for produce in PRODUCERS[version]:
            produce(ctx)
        ctx.write_json("keys/ephemeral-x25519.json", ctx.ephemerals)
    write_sums(staging)
    staging.rename(out)


def add(version: int, out: Path, names: list[str]) -> None:
    """Run some producers of set `version` on the committed set in `out`: they may only
    write new files (none is overwritten), and SHA256SUMS gains their lines."""
    known = {produce.__name__: produce for produce in PRODUCERS.get(version, [])}
    unknown = [name for name in names if name not in known]
    if unknown or not out.is_dir():
        raise SystemExit(f"cannot add {unknown or names} to {out}: unknown producer or no set")
    before = {p for p in out.rglob("*") if p.is_file()}
    old_sums = (out / "SHA256SUMS").read_text(encoding="ascii").splitlines()
    with tempfile.TemporaryDirectory(prefix="cbt-vectors-") as work:
        ctx = Context(version, out, Path(work))
        original_write = ctx.write

        def write_new(relative: str, data: bytes) -> Path:
            if (out / relative).exists():
                raise SystemExit(f"{relative} exists in {out}: a committed file is never re-made")
            return original_write(relative, data)

        ctx.write = write_new  # type: ignore[method-assign]
        for name in names:
            known[name](ctx)
    write_sums(out)
    new_sums = (out / "SHA256SUMS").read_text(encoding="ascii").splitlines()
    assert set(old_sums) <= set(new_sums), "a committed file changed"
    added = sorted(
        p.relative_to(out).as_posix() for p in set(out.rglob("*")) - before if p.is_file()
    )
    print("added:", *added, sep="\n  ")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", type=int, required=True, help="the set version to make")
    parser.add_argument("--out", type=Path, help="default: tests/vectors/formats/v<VERSION>")
    parser.add_argument(
        "--add",
        nargs="+",
        metavar="PRODUCER",
        help="run only these producers on the existing set (new files only)",
    )
    args = parser.parse_args(argv)
    out = args.out or HERE / f"v{args.version}"
    if args.add:
        add(args.version, out, args.add)
    else:
        build(args.version, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
