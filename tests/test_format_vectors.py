"""Frozen format vectors, set 1 (tests/vectors/formats/v1): today's consumers open yesterday's
bytes, and today's code re-derives them from the committed inputs.

The set was made once by `tests/vectors/formats/make_vectors.py --version 1` with the real
producers and is never re-made (see tests/vectors/formats/README.md). A change to canonical
JSON, key derivation, key wrapping, STREAM chunking, fragments, share cards, release codes
and records, the online release request and answer, the response package, receipts, delay
approvals or either chain fails here.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from sqlite_utils import Database

from paperpack import crypto, shamir, sharecards, typable
from paperpack.approval import ApprovalRejected, check_delay_approval
from paperpack.authority import load_authority
from paperpack.canonical import canonical_hash, canonical_json
from paperpack.compress import decompress_stream
from paperpack.errors import FragmentCorrupt, SignatureInvalid
from paperpack.fragments import FragmentHeader, FragmentWriter, fragment_name
from paperpack.manifest import (
    Manifest,
    binding,
    derive_key,
    parse_manifest,
    release_commitment,
    signature_text,
    verify_manifest,
)
from paperpack.model import paper_from_dict, paper_to_dict
from paperpack.pack import iter_payload
from paperpack.package import open_package
from paperpack.release import parse_record, secret_from_code, secret_from_record
from paperpack.unlock import Unlock, decode_payload
from server.audit import verify_audit
from server.central import keys as server_keys
from server.central.app import create_app
from server.central.settings import CentralSettings
from server.central.storage import PackageEntry, VenueRecord
from server.clock import SettableClock
from server.protocol import journal_chain, response_package
from server.protocol.audit_chain import (
    LEGACY_CENTRAL_FORMAT,
    AuditBroken,
    legacy_central_event_hash,
    legacy_venue_event_hash,
    verify_audit_records,
)
from server.protocol.receipts import ReceiptInvalid, next_log_root, sign_receipt, verify_receipt
from server.protocol.release import (
    ReleaseRequestInvalid,
    check_release_request,
    open_release_response,
    release_request_message,
)
from server.store import transaction
from server.venue import journal
from server.venue.workspace import init_venue, open_venue_db

V1 = Path(__file__).parent / "vectors" / "formats" / "v1"
SEALED = V1 / "package" / "sealed"


def read(relative: str) -> bytes:
    return (V1 / relative).read_bytes()


def load(relative: str) -> Any:
    return json.loads(read(relative))


def private_key(name: str) -> Any:
    return crypto.load_private_key(V1 / "keys" / name)


# Set 1's primitives, named once: the X25519 key wrap version 1 (magic CBTW\x01) and bare
# Ed25519 signatures (set 1 predates the cbt-<kind>-v<N> tags of crypto.sign). When the
# crypto API moves on, only these lines follow it; what they must produce does not change.
WRAP_INFO_V1 = crypto.LEGACY_WRAP_INFO


def unwrap_v1(key: crypto.X25519PrivateKey, blob: bytes, context: bytes) -> bytearray:
    return crypto.unwrap(key, blob, context=context, legacy=True)


def wrap_v1(recipient: crypto.X25519PublicKey, plaintext: bytes, context: bytes) -> bytes:
    return crypto.wrap(recipient, plaintext, context=context, version=1)


def ed25519(key: crypto.Ed25519PrivateKey, message: bytes) -> bytes:
    return key.sign(message)


def delay_approval_message_v1(session_id: str, venue_id: str, delay_minutes: int) -> bytes:
    """What a format 1 delay approval signed (the venue no longer accepts format 1)."""
    return canonical_json(
        {"purpose": "start-delay-approval", "session_id": session_id, "venue_id": venue_id,
         "delay_minutes": delay_minutes}
    )  # fmt: skip


def flip(data: bytes, offset: int) -> bytes:
    """One byte changed: the first letter or digit at or after `offset` becomes its neighbour
    (XOR 1), so text stays text, hex stays hex and base64 stays base64."""
    for at in range(offset, len(data)):
        flipped = data[at] ^ 1
        if chr(data[at]).isalnum() and chr(flipped).isalnum():
            return data[:at] + bytes([flipped]) + data[at + 1 :]
    raise AssertionError("no byte to flip after the offset")


def after(data: bytes, marker: bytes) -> int:
    """The offset just after `marker` in `data` (where a flip lands inside that value)."""
    return data.index(marker) + len(marker)


@pytest.fixture(scope="module")
def expected() -> dict[str, Any]:
    return dict(load("package/expected.json"))


@pytest.fixture(scope="module")
def manifest() -> Manifest:
    return parse_manifest(read("package/sealed/manifest.json"))


def authority_public() -> crypto.Ed25519PublicKey:
    return crypto.read_signing_public(read("keys/authority-signing.pub").decode())


def secret(expected: dict[str, Any], name: str) -> bytearray:
    return bytearray.fromhex(expected["secrets"][f"{name}_hex"])


# --- the set as a whole ----------------------------------------------------------------------


def _sums() -> dict[str, str]:
    lines = (V1 / "SHA256SUMS").read_text(encoding="ascii").splitlines()
    return {name: digest for digest, name in (line.split("  ", 1) for line in lines)}


def test_the_set_lists_every_file_it_holds() -> None:
    """SHA256SUMS names exactly the files of the set: none added, none lost."""
    present = {
        p.relative_to(V1).as_posix()
        for p in V1.rglob("*")
        if p.is_file() and p.name != "SHA256SUMS"
    }
    assert present == set(_sums())


@pytest.mark.parametrize("name", sorted(_sums()))
def test_every_vector_file_is_byte_for_byte_as_committed(name: str) -> None:
    """Each file hashes to its line in SHA256SUMS (a flipped byte anywhere fails here)."""
    assert hashlib.sha256(read(name)).hexdigest() == _sums()[name]


@pytest.mark.parametrize(
    "name",
    [
        "package/input/paper.json",
        "package/input/session.json",
        "package/sealed/manifest.json",
        "package/release/release-record.json",
        "package/unlocked/paper.json",
        "response/contents.json",
        "response/evidence.json",
        "response/receipt.json",
        "delay-approval/approval.json",
        "journal/journal.json",
        "audit/venue-audit.json",
        "audit/central-audit.json",
    ],
)
def test_canonical_json_of_each_committed_object_is_its_committed_bytes(name: str) -> None:
    """canonical_json(parse(bytes)) == bytes: sorted keys, no spaces, UTF-8, as written."""
    assert canonical_json(load(name)) == read(name)


# --- the sealed package -----------------------------------------------------------------------


def test_the_manifest_signature_is_the_authoritys_and_deterministic(manifest: Manifest) -> None:
    """manifest.sig verifies with the pinned key and is exactly Ed25519(manifest bytes)."""
    data, sig = read("package/sealed/manifest.json"), read("package/sealed/manifest.sig")
    verify_manifest(data, sig, authority_public())
    remade = ed25519(private_key("authority-signing.pem"), data)
    assert signature_text(remade).encode("ascii") == sig
    assert manifest.to_bytes() == data


def test_the_package_opens_for_its_venue_and_session(manifest: Manifest) -> None:
    """open_package checks signature, binding and every fragment of the committed package."""
    opened = open_package(SEALED, authority_public(), venue_id="V-VEC", session_id="S-VEC-1")
    assert opened.manifest.raw == manifest.raw
    assert sorted(opened.fragments) == [0, 1, 2]


def _unlock(expected: dict[str, Any]) -> Unlock:
    opened = open_package(SEALED, authority_public())
    return Unlock(
        opened, private_key("venue-wrap.pem"), datetime.fromisoformat(expected["unlock_at"])
    )


@pytest.mark.parametrize("release", ["record", "code"])
def test_the_package_unlocks_to_the_committed_paper(expected: dict[str, Any], release: str) -> None:
    """Two committed cards and the committed release (record or code) open the committed paper."""
    now = datetime.fromisoformat(expected["unlock_at"])
    unlock = _unlock(expected)
    unlock.add_share(read("package/shares/holder-1.txt").decode(), "alice")
    unlock.add_share(read("package/shares/holder-2.txt").decode(), "bob")
    if release == "record":
        unlock.add_release(read("package/release/release-record.json").decode(), now=now)
    else:
        unlock.add_release(read("package/release/release-code.txt").decode(), now=now)
    unlocked = unlock.open(now)
    assert canonical_json(paper_to_dict(unlocked.paper, with_keys=False)) == read(
        "package/unlocked/paper.json"
    )
    committed = paper_from_dict(load("package/input/paper.json"))
    assert unlocked.paper.assets == committed.assets
    assert unlocked.variant_secret == bytes(secret(expected, "variant_secret"))


def test_the_share_cards_are_remade_byte_for_byte(
    expected: dict[str, Any], manifest: Manifest
) -> None:
    """Set id, commitments and each printed card follow from the committed shares."""
    raw = manifest.raw
    set_id = sharecards.set_identifier("S-VEC-1", "V-VEC", binding(raw))
    assert set_id == raw["shares"]["set_id"]
    salt = bytes.fromhex(raw["shares"]["salt"])
    for holder, data_hex in expected["shares"].items():
        share = shamir.Share(int(holder), bytes.fromhex(data_hex))
        commitment = sharecards.share_commitment(set_id, share.x, share.data, salt)
        assert commitment == raw["shares"]["commitments"][holder]
        card = sharecards.format_card(
            set_id=set_id,
            holder=share.x,
            holders_total=3,
            threshold=2,
            share=share,
            session_id="S-VEC-1",
            venue_id="V-VEC",
            venue_name=raw["venue_name"],
            starts_at=raw["start"],
        )
        assert card.encode("utf-8") == read(f"package/shares/holder-{holder}.txt")


def test_any_two_committed_shares_combine_to_the_supervisors_secret(
    expected: dict[str, Any],
) -> None:
    """Shamir over GF(256): every pair of the three shares gives the committed S_sup."""
    shares = [shamir.Share(int(x), bytes.fromhex(d)) for x, d in expected["shares"].items()]
    for pair in ((0, 1), (0, 2), (1, 2)):
        combined = shamir.combine([shares[i] for i in pair])
        assert combined == bytes(secret(expected, "s_sup"))


def test_hkdf_gives_the_committed_output_for_the_committed_inputs(
    expected: dict[str, Any],
) -> None:
    """HKDF-SHA256 known answer: the package key's ikm, salt and info give the committed okm."""
    key = expected["key"]
    okm = crypto.hkdf(
        bytes.fromhex(key["hkdf_ikm_hex"]),
        salt=bytes.fromhex(key["hkdf_salt_hex"]),
        info=bytes.fromhex(key["hkdf_info_hex"]),
        length=64,
    )
    assert okm.hex() == key["okm_hex"]


def test_the_package_key_is_rederived_from_the_committed_secrets(
    expected: dict[str, Any], manifest: Manifest
) -> None:
    """derive_key(S_sup, S_time, S_dev, manifest) gives the committed key and commitment tag."""
    assert binding(manifest.raw).hex() == expected["key"]["binding_hex"]
    key, tag = derive_key(
        secret(expected, "s_sup"), secret(expected, "s_time"), secret(expected, "s_dev"),
        manifest.raw,
    )  # fmt: skip
    assert key.hex() == expected["key"]["content_key_hex"]
    assert tag == expected["key"]["key_commitment"] == manifest.raw["key_commitment"]


def test_the_release_commitment_is_rederived(expected: dict[str, Any], manifest: Manifest) -> None:
    """The manifest's release commitment follows from S_time, package, session and venue."""
    commitment = release_commitment(manifest.raw, secret(expected, "s_time"))
    assert commitment == manifest.raw["release"]["commitment"]


def test_the_release_code_is_the_typable_form_of_the_time_secret(
    expected: dict[str, Any], manifest: Manifest
) -> None:
    """encode_groups(S_time) is the committed code, and the code gives S_time back."""
    code = read("package/release/release-code.txt").decode("ascii")
    assert typable.encode_groups(bytes(secret(expected, "s_time"))) == code
    assert secret_from_code(manifest, code) == secret(expected, "s_time")


def test_the_release_record_verifies_and_its_signature_is_remade(
    expected: dict[str, Any], manifest: Manifest
) -> None:
    """The record verifies, unwraps to S_time at the venue, and is Ed25519(canonical body)."""
    record = parse_record(read("package/release/release-record.json"))
    s_time = secret_from_record(manifest, record, private_key("venue-wrap.pem"), authority_public())
    assert s_time == secret(expected, "s_time")
    body = {k: v for k, v in record.items() if k != "signature"}
    remade = ed25519(private_key("authority-signing.pem"), canonical_json(body))
    assert base64.b64encode(remade).decode() == record["signature"]


def test_the_centres_sealed_secrets_hold_the_committed_secrets(expected: dict[str, Any]) -> None:
    """secrets.sealed and answer-keys.sealed open to the release secret, variant secret and
    the keyed paper of the committed input."""
    wraps = expected["wraps"]
    secrets_doc = json.loads(bytes.fromhex(wraps["secrets"]["plaintext_hex"]))
    assert base64.b64decode(secrets_doc["release_secret"]) == bytes(secret(expected, "s_time"))
    assert base64.b64decode(secrets_doc["variant_secret"]) == bytes(
        secret(expected, "variant_secret")
    )
    keys_doc = json.loads(bytes.fromhex(wraps["answer_keys"]["plaintext_hex"]))
    keyed = paper_to_dict(
        paper_from_dict(load("package/input/paper.json")), with_keys=True, with_assets=False
    )
    assert keys_doc["paper"] == keyed
    assert keys_doc["paper_sha256"] == canonical_hash(keyed)
    assert bytes.fromhex(wraps["device"]["plaintext_hex"]) == bytes(secret(expected, "s_dev"))
    assert bytes.fromhex(wraps["release"]["plaintext_hex"]) == bytes(secret(expected, "s_time"))


# --- key wrapping: every wrapped blob of the set ----------------------------------------------


@dataclass(frozen=True)
class Wrapped:
    blob: Callable[[], bytes]
    recipient: str  # key file of the recipient's private key
    record: Callable[[], dict[str, Any]]


def _package_wrap(name: str) -> Callable[[], dict[str, Any]]:
    return lambda: load("package/expected.json")["wraps"][name]


WRAPS = {
    "device-secret": Wrapped(
        lambda: base64.b64decode(load("package/sealed/manifest.json")["device"]["wrapped"]),
        "venue-wrap.pem",
        _package_wrap("device"),
    ),
    "central-secrets": Wrapped(
        lambda: read("package/central/secrets.sealed"),
        "authority-upload.pem",
        _package_wrap("secrets"),
    ),
    "answer-keys": Wrapped(
        lambda: read("package/central/answer-keys.sealed"),
        "authority-upload.pem",
        _package_wrap("answer_keys"),
    ),
    "release-record": Wrapped(
        lambda: base64.b64decode(load("package/release/release-record.json")["wrapped_secret"]),
        "venue-wrap.pem",
        _package_wrap("release"),
    ),
    "release-answer": Wrapped(
        lambda: base64.b64decode(load("release-exchange/answer.json")["wrapped_release"]),
        "venue-wrap.pem",
        lambda: load("release-exchange/expected.json")["wrap"],
    ),
    "response-content-key": Wrapped(
        lambda: base64.b64decode(load("response/expected.json")["header"]["wrapped_key"]),
        "authority-upload.pem",
        lambda: load("response/expected.json")["wrap"],
    ),
}


@pytest.mark.parametrize("name", sorted(WRAPS))
def test_each_wrapped_key_unwraps_with_the_committed_private_key(name: str) -> None:
    """unwrap(recipient key, blob, context) gives the committed plaintext; the X25519 shared
    secret and the HKDF wrap key are the committed ones."""
    case = WRAPS[name]
    blob, record, recipient = case.blob(), case.record(), private_key(case.recipient)
    assert hashlib.sha256(blob).hexdigest() == record["blob_sha256"]
    context = bytes.fromhex(record["context_hex"])
    assert unwrap_v1(recipient, blob, context).hex() == record["plaintext_hex"]
    eph_pub = blob[5:37]
    shared = recipient.exchange(crypto.X25519PublicKey.from_public_bytes(eph_pub))
    assert shared.hex() == record["shared_secret_hex"]
    recipient_pub = base64.b64decode(crypto.public_key_text(recipient.public_key()))
    wrap_key = crypto.hkdf(shared, salt=eph_pub + recipient_pub, info=WRAP_INFO_V1 + b"|" + context)
    assert wrap_key.hex() == record["wrap_key_hex"]


@pytest.mark.parametrize("name", sorted(WRAPS))
def test_each_wrapped_key_is_remade_byte_for_byte_from_its_ephemeral_key(name: str) -> None:
    """wrap() with the recorded ephemeral key gives the committed blob (magic, layout, nonce,
    associated data, HKDF info all pinned)."""
    case = WRAPS[name]
    record, recipient = case.record(), private_key(case.recipient)
    ephemeral = crypto.X25519PrivateKey.from_private_bytes(
        bytes.fromhex(record["ephemeral_private_hex"])
    )
    with mock.patch.object(crypto.X25519PrivateKey, "generate", lambda: ephemeral):
        blob = wrap_v1(
            recipient.public_key(),
            bytes.fromhex(record["plaintext_hex"]),
            bytes.fromhex(record["context_hex"]),
        )
    assert blob == case.blob()


# --- the payload: STREAM chunks, fragments, the payload format ----------------------------------


def _plain_chunks(expected: dict[str, Any]) -> list[bytes]:
    data, chunks, at = read("package/stream/plaintext.zst"), [], 0
    for length in expected["stream"]["chunk_lengths"]:
        chunks.append(data[at : at + length])
        at += length
    assert at == len(data)
    return chunks


def _cipher_chunks(expected: dict[str, Any]) -> list[bytes]:
    data, chunks, at = read("package/stream/ciphertext.bin"), [], 0
    for length in expected["stream"]["chunk_lengths"]:
        chunks.append(data[at : at + length + crypto.TAG_SIZE])
        at += length + crypto.TAG_SIZE
    assert at == len(data)
    return chunks


def test_stream_encryption_of_the_committed_plaintext_is_the_committed_ciphertext(
    expected: dict[str, Any],
) -> None:
    """STREAM (AES-256-GCM, counter nonce + last flag) under the committed key, chunk by chunk."""
    key = bytearray.fromhex(expected["key"]["content_key_hex"])
    plain = _plain_chunks(expected)
    encryptor = crypto.StreamEncryptor(key)
    sealed = [encryptor.encrypt(c, last=i == len(plain) - 1) for i, c in enumerate(plain)]
    assert b"".join(sealed) == read("package/stream/ciphertext.bin")
    pairs = ((c, i == len(sealed) - 1) for i, c in enumerate(sealed))
    assert list(crypto.decrypt_chunks(key, pairs)) == plain


def test_the_fragments_are_remade_byte_for_byte_from_the_ciphertext(
    expected: dict[str, Any], manifest: Manifest, tmp_path: Path
) -> None:
    """zfec striping of the committed ciphertext gives the committed fragment files."""
    header = FragmentHeader(manifest.package_id_bytes, "S-VEC-1", "V-VEC", 0, 3, 2)
    writer = FragmentWriter(tmp_path, header)
    for chunk in _cipher_chunks(expected):
        writer.write_stripe(chunk)
    assert writer.close() == manifest.raw["fragments"]["hashes"]
    for index in range(3):
        assert (tmp_path / fragment_name(index)).read_bytes() == read(
            f"package/sealed/{fragment_name(index)}"
        )


def test_the_payload_is_remade_from_the_committed_paper(
    expected: dict[str, Any], manifest: Manifest
) -> None:
    """The payload (magic, head length, canonical head, asset bytes) follows from the paper,
    the manifest and the variant secret; the committed zstd frame decompresses to it."""
    paper = paper_from_dict(load("package/input/paper.json"))
    payload = b"".join(iter_payload(paper, manifest.raw, secret(expected, "variant_secret")))
    assert payload == read("package/stream/payload.bin")
    frame = decompress_stream(iter(_plain_chunks(expected)), manifest.raw["payload"]["plain_size"])
    assert b"".join(frame) == payload
    unlocked = decode_payload(iter([payload]), manifest)
    assert canonical_json(paper_to_dict(unlocked.paper, with_keys=False)) == read(
        "package/unlocked/paper.json"
    )


# --- the response package and its receipt ------------------------------------------------------


def venue_public() -> crypto.Ed25519PublicKey:
    return crypto.read_signing_public(read("keys/venue-sign.pub").decode())


def test_the_response_package_opens_to_the_committed_contents() -> None:
    """Verify, unwrap, decrypt, decompress: the committed contents and evidence, exactly."""
    data, exp = read("response/package.cbtr"), load("response/expected.json")
    opened = response_package.open_response_package(
        data, venue_public(), private_key("authority-upload.pem")
    )
    assert opened.header.to_dict() == exp["header"]
    assert opened.package_sha256 == exp["package_sha256"] == hashlib.sha256(data).hexdigest()
    assert canonical_json(opened.contents) == read("response/contents.json")
    assert canonical_json(opened.evidence()) == read("response/evidence.json")


def _response_parts(data: bytes) -> tuple[bytes, bytes, bytes]:
    """magic (8) | header length (4) | header | signature (64) | payload."""
    assert data[:8] == b"CBTRESP\x01"
    length = int.from_bytes(data[8:12], "big")
    header = data[12 : 12 + length]
    return header, data[12 + length : 12 + length + 64], data[12 + length + 64 :]


def test_the_response_header_and_its_signature_are_remade() -> None:
    """The header is canonical JSON of the committed header; the signature is Ed25519 over
    the domain prefix and the header."""
    header, signature, _ = _response_parts(read("response/package.cbtr"))
    assert header == canonical_json(load("response/expected.json")["header"])
    remade = ed25519(private_key("venue-sign.pem"), b"cbt-response-v1|" + header)
    assert remade == signature


def test_the_response_payload_is_the_stream_encryption_of_the_contents() -> None:
    """Under the committed content key and context: zstd(contents) + zstd(evidence), STREAM-
    encrypted, is the payload byte for byte."""
    exp = load("response/expected.json")
    _, _, payload = _response_parts(read("response/package.cbtr"))
    key = bytearray.fromhex(exp["wrap"]["plaintext_hex"])
    context = bytes.fromhex(exp["payload_context_hex"])
    compressed = crypto.StreamDecryptor(key, context).decrypt(payload, last=True)
    assert crypto.StreamEncryptor(key, context).encrypt(compressed, last=True) == payload
    cut = len(compressed) - exp["header"]["evidence_compressed_size"]
    header = exp["header"]
    contents = b"".join(decompress_stream(iter([compressed[:cut]]), header["plaintext_size"]))
    evidence = b"".join(decompress_stream(iter([compressed[cut:]]), header["evidence_size"]))
    assert contents == read("response/contents.json")
    assert evidence == read("response/evidence.json")


def test_the_receipt_verifies_and_is_remade() -> None:
    """The centre's receipt verifies for the committed package, its log root follows, and
    sign_receipt over the same entry gives the same document."""
    receipt, exp = load("response/receipt.json"), load("response/expected.json")
    body = verify_receipt(receipt, authority_public(), exp["package_sha256"])
    assert body["log_root"] == next_log_root(
        body["log_previous_root"], body["log_position"], body["package_sha256"], body["received_at"]
    )
    entry = PackageEntry(
        package_sha256=body["package_sha256"],
        session_id=body["session_id"],
        venue_id=body["venue_id"],
        export_seq=body["export_seq"],
        size=body["size"],
        serious_violation=False,
        summary={},
    )
    remade = sign_receipt(
        private_key("authority-signing.pem"), entry, body["received_at"],
        body["log_position"], body["log_previous_root"], body["log_root"],
    )  # fmt: skip
    assert remade == receipt


# --- the start-delay approval ------------------------------------------------------------------


def _check_approval(approval: dict[str, Any]) -> None:
    """Format 1's check (the venue no longer runs it: format 1 approvals are refused)."""
    signature = base64.b64decode(approval["approval"], validate=True)
    message = delay_approval_message_v1(
        approval["session_id"], approval["venue_id"], approval["delay_minutes"]
    )
    crypto.verify_undomained(authority_public(), message, signature)


def test_the_delay_approval_verifies_and_is_remade() -> None:
    """The message is format 1's; the code is Ed25519 over it and checks."""
    approval = load("delay-approval/approval.json")
    message = delay_approval_message_v1(
        approval["session_id"], approval["venue_id"], approval["delay_minutes"]
    )
    assert message == read("delay-approval/message.bin")
    _check_approval(approval)
    remade = ed25519(private_key("authority-signing.pem"), message)
    assert base64.b64encode(remade).decode() == approval["approval"]


def test_the_venue_refuses_a_format_1_delay_approval_and_says_why() -> None:
    """Format 1 has no expiry and no package binding, so today's venue refuses it outright,
    naming the old format and asking for a new code (paperpack.approval, format 2)."""
    approval = load("delay-approval/approval.json")
    with pytest.raises(ApprovalRejected, match="old format") as refused:
        check_delay_approval(
            approval["approval"],
            authority_public(),
            session_id=approval["session_id"],
            venue_id=approval["venue_id"],
            package_id=load("package/central/pack-record.json")["package_id"],
            delay_minutes=approval["delay_minutes"],
            now=datetime.fromisoformat("2026-01-01T00:00:00+00:00"),
        )
    assert refused.value.slug == "delay-approval-invalid"


# --- the online release exchange (request format 1, answer wrap version 1) ---------------------


def test_the_release_request_is_remade_and_verifies() -> None:
    """The request's message is format 1's canonical JSON; its signature is bare Ed25519 by
    the venue key over it, and the centre's check accepts it."""
    request = load("release-exchange/request.json")
    message = release_request_message(
        request["session_id"], request["venue_id"], request["requested_at"], version=1
    )
    assert message == read("release-exchange/message.bin")
    signature = ed25519(private_key("venue-sign.pem"), message)
    assert base64.b64encode(signature).decode() == request["signature"]
    _check_request(request)


def _check_request(request: dict[str, Any]) -> None:
    check_release_request(
        venue_public(),
        request["session_id"],
        request["venue_id"],
        request["requested_at"],
        base64.b64decode(request["signature"], validate=True),
        version=1,  # set 1's request carries no format_version: version 1
    )


def test_the_release_answer_opens_to_the_set_1_record() -> None:
    """The venue opens the centre's answer with its key: the committed release record."""
    record = open_release_response(
        load("release-exchange/answer.json"), private_key("venue-wrap.pem")
    )
    assert canonical_json(record) == read("package/release/release-record.json")


def _authority_from_set_1(folder: Path) -> Any:
    """The centre's authority directory as set 1's centre had it (keys and sealed material)."""
    central = folder / "sessions" / "S-VEC-1" / "V-VEC"
    central.mkdir(parents=True)
    for name, source in (
        ("signing.key", "keys/authority-signing.pem"),
        ("signing.pub", "keys/authority-signing.pub"),
        ("upload.key", "keys/authority-upload.pem"),
        ("upload.pub", "keys/authority-upload.pub"),
    ):
        (folder / name).write_bytes(read(source))
    for name in ("pack-record.json", "secrets.sealed", "answer-keys.sealed"):
        (central / name).write_bytes(read(f"package/central/{name}"))
    return load_authority(folder)


async def test_todays_centre_answers_the_set_1_request_and_the_record_unlocks_the_package(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    """An old venue's committed request, POSTed to today's centre holding set 1's material, is
    answered; the record in the answer opens set 1's package with set 1's cards."""
    request = load("release-exchange/request.json")
    settings = CentralSettings(directory=tmp_path, log_requests=False)
    clock = SettableClock(datetime.fromisoformat(request["requested_at"].replace("Z", "+00:00")))
    app = create_app(settings, clock=clock, authority=_authority_from_set_1(tmp_path / "auth"))
    client = await aiohttp_client(app)
    await app[server_keys.STORAGE].add_venue(
        VenueRecord(
            "V-VEC",
            "Vector venue",
            read("keys/venue-sign.pub").decode().strip(),
            read("keys/venue-wrap.pub").decode().strip(),
            request["requested_at"],
        )
    )
    resp = await client.post("/api/v1/release", data=read("release-exchange/request.json"))
    assert resp.status == 200, await resp.text()
    record = open_release_response(await resp.json(), private_key("venue-wrap.pem"))
    exp = load("package/expected.json")
    now = datetime.fromisoformat(exp["unlock_at"])
    unlock = _unlock(exp)
    unlock.add_share(read("package/shares/holder-2.txt").decode(), "alice")
    unlock.add_share(read("package/shares/holder-3.txt").decode(), "bob")
    unlock.add_release(record, now=now)
    unlocked = unlock.open(now)
    assert canonical_json(paper_to_dict(unlocked.paper, with_keys=False)) == read(
        "package/unlocked/paper.json"
    )


# --- the chains --------------------------------------------------------------------------------


def test_each_journal_link_hash_is_recomputed() -> None:
    """link_hash over each committed save gives its hash; prev_hash links to the one before."""
    for attempt_id, rows in load("journal/journal.json").items():
        prev = journal_chain.GENESIS
        for row in rows:
            assert row["prev_hash"] == prev
            digest = journal_chain.link_hash(
                attempt_id, row["seq"], row["position"], row["saved_at"], row["responses"], prev
            )
            assert digest == row["hash"]
            prev = digest


def test_the_journals_in_the_response_package_are_the_committed_chain() -> None:
    """The evidence carries each attempt's journal as the venue stored it (each save's
    responses decoded from their canonical JSON)."""
    evidence = load("response/evidence.json")
    chains = {j["attempt_id"]: j["journal"] for j in evidence["journals"]}
    committed = load("journal/journal.json")
    for rows in committed.values():
        for row in rows:
            row["responses"] = json.loads(row["responses"])
    assert chains == committed


def test_each_venue_audit_event_hash_is_recomputed() -> None:
    """The venue's (legacy) event hash over each committed event gives its hash, chained
    from 64 zeros."""
    prev = "0" * 64
    for row in load("audit/venue-audit.json"):
        assert row["prev_hash"] == prev
        details = json.loads(row["details"])
        digest = legacy_venue_event_hash(
            row["event_id"], row["at"], row["actor"], row["action"], row["object"], details, prev
        )
        assert digest == row["hash"]
        prev = digest


def test_each_central_audit_event_hash_is_recomputed() -> None:
    """The centre's (legacy) event hash over each committed event gives its hash; the chain
    verifies."""
    events = load("audit/central-audit.json")
    prev = "0" * 64
    for event in events:
        assert event["prev_hash"] == prev
        assert legacy_central_event_hash(prev, event) == event["hash"]
        prev = event["hash"]
    assert verify_audit_records(events, "seq", LEGACY_CENTRAL_FORMAT) == len(events)


@pytest.fixture
def venue_db(tmp_path: Path) -> Iterator[Database]:
    """A migrated venue database with the set's session and attempts (for the chain checks)."""
    init_venue(tmp_path / "venue", "V-VEC")
    db = open_venue_db(tmp_path / "venue")
    with transaction(db):
        db.execute("DELETE FROM audit_events")
        db.execute(
            "INSERT INTO sessions (session_id, subject) VALUES ('S-VEC-1', '27')",
        )
        for attempt_id in load("journal/journal.json"):
            db.execute(
                "INSERT INTO attempts (attempt_id, session_id, ticket, logged_in_at)"
                " VALUES (?, 'S-VEC-1', ?, '2026-06-01T09:00:00.000Z')",
                (attempt_id, attempt_id),
            )
    yield db
    db.close()


def _store_chains(db: Database, journals: dict[str, Any], events: list[dict[str, Any]]) -> None:
    with transaction(db):
        for attempt_id, rows in journals.items():
            for row in rows:
                db.execute(
                    "INSERT INTO journal (attempt_id, seq, position, saved_at, responses,"
                    " size_bytes, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (attempt_id, row["seq"], row["position"], row["saved_at"], row["responses"],
                     len(row["responses"].encode()), row["prev_hash"], row["hash"]),
                )  # fmt: skip
        for event in events:
            db.execute(
                "INSERT INTO audit_events (event_id, at, actor, action, object, details,"
                " prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                tuple(event[k] for k in ("event_id", "at", "actor", "action", "object",
                                         "details", "prev_hash", "hash")),
            )  # fmt: skip


def test_the_venue_verifies_the_committed_chains(venue_db: Database) -> None:
    """Stored in a venue database, the journals and the audit log verify with the venue's code."""
    journals = load("journal/journal.json")
    _store_chains(venue_db, journals, load("audit/venue-audit.json"))
    for attempt_id, rows in journals.items():
        assert journal.verify_chain(venue_db, attempt_id) == len(rows)
    assert verify_audit(venue_db) == len(load("audit/venue-audit.json"))


# --- one flipped byte: the consumer refuses it with its own error ------------------------------


def _open_package_copy(tmp_path: Path, name: str, data: bytes) -> None:
    folder = tmp_path / "sealed"
    folder.mkdir(parents=True)
    for path in SEALED.iterdir():
        (folder / path.name).write_bytes(data if path.name == name else path.read_bytes())
    open_package(folder, authority_public())


def _unlock_with(card: str | None = None, release: str | None = None) -> None:
    exp = load("package/expected.json")
    now = datetime.fromisoformat(exp["unlock_at"])
    unlock = _unlock(exp)
    unlock.add_share(card or read("package/shares/holder-1.txt").decode(), "alice")
    unlock.add_release(release or read("package/release/release-code.txt").decode(), now=now)


def _unwrap_central(name: str, data: bytes) -> None:
    record = WRAPS[name].record()
    unwrap_v1(private_key("authority-upload.pem"), data, bytes.fromhex(record["context_hex"]))


def _decrypt_ciphertext(data: bytes) -> None:
    exp = load("package/expected.json")
    key = bytearray.fromhex(exp["key"]["content_key_hex"])
    chunks, at = [], 0
    for length in exp["stream"]["chunk_lengths"]:
        chunks.append(data[at : at + length + crypto.TAG_SIZE])
        at += length + crypto.TAG_SIZE
    list(crypto.decrypt_chunks(key, ((c, i == len(chunks) - 1) for i, c in enumerate(chunks))))


def _open_response(data: bytes) -> None:
    key = private_key("authority-upload.pem")
    response_package.open_response_package(data, venue_public(), key)


def _journal(tmp_path: Path, data: bytes) -> None:
    init_venue(tmp_path / "venue", "V-VEC")
    db = open_venue_db(tmp_path / "venue")
    try:
        journals = json.loads(data)
        with transaction(db):
            db.execute("INSERT INTO sessions (session_id, subject) VALUES ('S-VEC-1', '27')")
            for attempt_id in journals:
                db.execute(
                    "INSERT INTO attempts (attempt_id, session_id, ticket, logged_in_at)"
                    " VALUES (?, 'S-VEC-1', ?, '2026-06-01T09:00:00.000Z')",
                    (attempt_id, attempt_id),
                )
        _store_chains(db, journals, [])
        for attempt_id in journals:
            journal.verify_chain(db, attempt_id)
    finally:
        db.close()


def _venue_audit(tmp_path: Path, data: bytes) -> None:
    init_venue(tmp_path / "venue", "V-VEC")
    db = open_venue_db(tmp_path / "venue")
    try:
        with transaction(db):
            db.execute("DELETE FROM audit_events")
        _store_chains(db, {}, json.loads(data))
        verify_audit(db)
    finally:
        db.close()


@dataclass(frozen=True)
class Flip:
    """One byte of one vector file changed at `where`, and the consumer that must refuse it."""

    file: str
    where: Callable[[bytes], int]
    consume: Callable[[Path, bytes], object]
    error: type[Exception]
    message: str  # a fragment of the refusal's message (re.search)


def _mid(data: bytes) -> int:
    return len(data) // 2


FLIPS = {
    "manifest-field": Flip(
        "package/sealed/manifest.json", lambda d: after(d, b'"venue_name":"'),
        lambda t, d: _open_package_copy(t, "manifest.json", d),
        SignatureInvalid, "altered after signing",
    ),
    "manifest-signature": Flip(
        "package/sealed/manifest.sig", lambda d: 10,
        lambda t, d: _open_package_copy(t, "manifest.sig", d),
        SignatureInvalid, "does not verify|altered",
    ),
    "fragment-header-package-id": Flip(
        "package/sealed/fragment-001.cbtf", lambda d: 8,
        lambda t, d: _open_package_copy(t, "fragment-001.cbtf", d),
        FragmentCorrupt, "another package",
    ),
    "fragment-body": Flip(
        "package/sealed/fragment-001.cbtf", _mid,
        lambda t, d: _open_package_copy(t, "fragment-001.cbtf", d),
        FragmentCorrupt, "SHA-256",
    ),
    "share-card-code": Flip(
        "package/shares/holder-1.txt", lambda d: after(d, b"    5:  "),
        lambda t, d: _unlock_with(card=d.decode()),
        typable.Mistyped, "group",
    ),
    "release-code": Flip(
        "package/release/release-code.txt", _mid,
        lambda t, d: _unlock_with(release=d.decode()),
        typable.Mistyped, "group",
    ),
    "release-record": Flip(
        "package/release/release-record.json", lambda d: after(d, b'"issued_at":"'),
        lambda t, d: _unlock_with(release=d.decode()),
        SignatureInvalid, "not signed by the pinned authority key",
    ),
    "central-secrets": Flip(
        "package/central/secrets.sealed", _mid,
        lambda t, d: _unwrap_central("central-secrets", d),
        crypto.CryptoError, "does not open",
    ),
    "answer-keys": Flip(
        "package/central/answer-keys.sealed", _mid,
        lambda t, d: _unwrap_central("answer-keys", d),
        crypto.CryptoError, "does not open",
    ),
    "stream-ciphertext": Flip(
        "package/stream/ciphertext.bin", _mid, lambda t, d: _decrypt_ciphertext(d),
        crypto.CryptoError, "fails authentication",
    ),
    "response-magic": Flip(
        "response/package.cbtr", lambda d: 0, lambda t, d: _open_response(d),
        response_package.PackageMalformed, "bad magic",
    ),
    "response-header": Flip(
        "response/package.cbtr", lambda d: after(d, b'"created_at":"'),
        lambda t, d: _open_response(d),
        response_package.PackageTampered, "signature",
    ),
    "response-signature": Flip(
        "response/package.cbtr", lambda d: 12 + int.from_bytes(d[8:12], "big") + 5,
        lambda t, d: _open_response(d),
        response_package.PackageTampered, "signature",
    ),
    "response-payload": Flip(
        "response/package.cbtr", lambda d: len(d) - 40, lambda t, d: _open_response(d),
        response_package.PackageTampered, "payload does not match",
    ),
    "release-request": Flip(
        "release-exchange/request.json", lambda d: after(d, b'"requested_at":"'),
        lambda t, d: _check_request(json.loads(d)),
        ReleaseRequestInvalid, "not signed by venue",
    ),
    "release-answer": Flip(
        "release-exchange/answer.json", lambda d: after(d, b'"wrapped_release":"') + 60,
        lambda t, d: open_release_response(json.loads(d), private_key("venue-wrap.pem")),
        crypto.CryptoError, "does not open",
    ),
    "receipt": Flip(
        "response/receipt.json", lambda d: after(d, b'"received_at":"'),
        lambda t, d: verify_receipt(json.loads(d), authority_public()),
        ReceiptInvalid, "signature",
    ),
    "delay-approval": Flip(
        "delay-approval/approval.json", lambda d: after(d, b'"approval":"') + 10,
        lambda t, d: _check_approval(json.loads(d)),
        crypto.CryptoError, "does not match",
    ),
    "journal": Flip(
        "journal/journal.json", lambda d: after(d, b'"saved_at":"'),
        _journal, journal.ChainBroken, "does not match its hash",
    ),
    "venue-audit": Flip(
        "audit/venue-audit.json", lambda d: after(d, b'"actor":"'),
        _venue_audit, AuditBroken, "does not match its hash",
    ),
    "central-audit": Flip(
        "audit/central-audit.json", lambda d: after(d, b'"object":"'),
        lambda t, d: verify_audit_records(json.loads(d), "seq", LEGACY_CENTRAL_FORMAT),
        AuditBroken, "edited after it was written",
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(FLIPS))
def test_one_flipped_byte_is_refused_by_the_consumer(name: str, tmp_path: Path) -> None:
    """The unchanged file is accepted; with one byte flipped the consumer raises its own error."""
    case = FLIPS[name]
    data = read(case.file)
    for folder in ("before", "after"):
        (tmp_path / folder).mkdir()
    case.consume(tmp_path / "before", data)
    flipped = flip(data, case.where(data))
    assert flipped != data and len(flipped) == len(data)
    with pytest.raises(case.error, match=case.message):
        case.consume(tmp_path / "after", flipped)
