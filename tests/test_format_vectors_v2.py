"""Frozen format vectors, set 2 (tests/vectors/formats/v2/): the formats with domain-tagged
signatures and HPKE key wraps (package format 2, release record 2, start-delay approval 2,
response package 3; receipt 1 and the cbt-audit-v2 chain as they are today).

Each file opens with today's consumer, each signature is remade byte for byte under its tag
(Ed25519 is deterministic), each HPKE wrap unwraps (HPKE draws its ephemeral key inside
`cryptography`, so a version 2 wrap is opened and checked, not remade), the package key is
re-derived from the committed secrets, and one flipped byte of each signed artifact is refused
with its own error. Set 1 (tests/test_format_vectors.py) keeps proving the older formats.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from paperpack import crypto
from paperpack.approval import ApprovalRejected, check_delay_approval
from paperpack.canonical import canonical_json
from paperpack.errors import PaperpackError, SignatureInvalid
from paperpack.manifest import binding, derive_key, parse_manifest, signature_text, verify_manifest
from paperpack.package import open_package
from paperpack.release import parse_record, secret_from_record
from paperpack.unlock import Unlock
from server.protocol.release import (
    ReleaseRequestInvalid,
    check_release_request,
    open_release_response,
    release_request_message,
)
from server.protocol.response_package import (
    PackageTampered,
    ResponsePackageError,
    open_response_package,
)
from tests.conftest import REPO_ROOT

V2 = REPO_ROOT / "tests" / "vectors" / "formats" / "v2"
SEALED = V2 / "package" / "sealed"


def read(relative: str) -> bytes:
    return (V2 / relative).read_bytes()


def load(relative: str) -> Any:
    return json.loads(read(relative))


def private_key(name: str) -> Any:
    return crypto.load_private_key(V2 / "keys" / name)


def public(name: str) -> crypto.Ed25519PublicKey:
    return crypto.read_signing_public(read(f"keys/{name}").decode())


def test_every_file_is_the_one_committed() -> None:
    """SHA256SUMS lists every file of the set with its hash; nothing is missing or extra."""
    listed = {}
    for line in read("SHA256SUMS").decode().splitlines():
        digest, name = line.split("  ", 1)
        listed[name] = digest
    present = {
        p.relative_to(V2).as_posix()
        for p in V2.rglob("*")
        if p.is_file() and p.name != "SHA256SUMS"
    }
    assert set(listed) == present
    for name, digest in listed.items():
        assert hashlib.sha256(read(name)).hexdigest() == digest, name


# --- the sealed package --------------------------------------------------------------------


def test_the_manifest_is_format_2_and_signed_under_its_tag() -> None:
    """manifest.sig is Ed25519 over cbt-manifest-v2| + the bytes, remade byte for byte."""
    data, sig = read("package/sealed/manifest.json"), read("package/sealed/manifest.sig")
    verify_manifest(data, sig, public("authority-signing.pub"))
    assert parse_manifest(data).format_version == 2
    remade = crypto.sign(private_key("authority-signing.pem"), "manifest", data)
    assert signature_text(remade).encode("ascii") == sig
    assert base64.b64decode(json.loads(data)["device"]["wrapped"])[:5] == b"CBTW\x02"


def test_the_package_key_is_re_derived_from_the_committed_secrets() -> None:
    """HKDF over the committed S_sup | S_time | S_dev gives the key and its commitment."""
    exp = load("package/expected.json")
    raw = json.loads(read("package/sealed/manifest.json"))
    assert binding(raw).hex() == exp["key"]["binding_hex"]
    secrets = {k: bytearray.fromhex(v) for k, v in exp["secrets"].items()}
    key, tag = derive_key(secrets["s_sup_hex"], secrets["s_time_hex"], secrets["s_dev_hex"], raw)
    assert key.hex() == exp["key"]["content_key_hex"]
    assert tag == raw["key_commitment"] == exp["key"]["key_commitment"]


@pytest.mark.parametrize("name", ["device", "secrets", "answer_keys", "release"])
def test_each_package_wrap_is_hpke_and_unwraps(name: str) -> None:
    """Every wrap of set 2 is version 2 (HPKE) and opens to the committed plaintext with the
    recipient key and context, without the legacy reader."""
    record = load("package/expected.json")["wraps"][name]
    blob = {
        "device": lambda: base64.b64decode(
            load("package/sealed/manifest.json")["device"]["wrapped"]
        ),
        "secrets": lambda: read("package/central/secrets.sealed"),
        "answer_keys": lambda: read("package/central/answer-keys.sealed"),
        "release": lambda: base64.b64decode(
            load("package/release/release-record.json")["wrapped_secret"]
        ),
    }[name]()
    recipient = private_key(
        "venue-wrap.pem" if name in ("device", "release") else "authority-upload.pem"
    )
    assert record["wrap_version"] == 2 and blob.startswith(b"CBTW\x02")
    assert hashlib.sha256(blob).hexdigest() == record["blob_sha256"]
    plain = crypto.unwrap(recipient, blob, context=bytes.fromhex(record["context_hex"]))
    assert plain.hex() == record["plaintext_hex"]


def _unlock(release: str | dict[str, Any]) -> Any:
    exp = load("package/expected.json")
    now = datetime.fromisoformat(exp["unlock_at"])
    opened = open_package(SEALED, public("authority-signing.pub"), venue_id="V-VEC")
    unlock = Unlock(opened, private_key("venue-wrap.pem"), now)
    unlock.add_share(read("package/shares/holder-1.txt").decode(), "a")
    unlock.add_share(read("package/shares/holder-3.txt").decode(), "b")
    unlock.add_release(release, now=now)
    return unlock.open(now)


def test_the_package_unlocks_with_the_record_and_with_the_code() -> None:
    """Two cards and the release (signed record, or phone code) open the committed paper."""
    paper = read("package/unlocked/paper.json")
    from paperpack.model import paper_to_dict

    for release in (read("package/release/release-record.json").decode(),
                    read("package/release/release-code.txt").decode()):  # fmt: skip
        unlocked = _unlock(release)
        assert canonical_json(paper_to_dict(unlocked.paper, with_keys=False)) == paper


def test_the_release_record_is_format_2_and_signed_under_its_tag() -> None:
    """The record verifies and is Ed25519 over cbt-release-record-v2| + its canonical body."""
    record = parse_record(read("package/release/release-record.json"))
    assert record["format_version"] == 2
    manifest = parse_manifest(read("package/sealed/manifest.json"))
    s_time = secret_from_record(
        manifest, record, private_key("venue-wrap.pem"), public("authority-signing.pub")
    )
    assert s_time.hex() == load("package/expected.json")["secrets"]["s_time_hex"]
    body = canonical_json({k: v for k, v in record.items() if k != "signature"})
    remade = crypto.sign(private_key("authority-signing.pem"), "release-record", body)
    assert base64.b64encode(remade).decode() == record["signature"]


# --- the start-delay approval --------------------------------------------------------------


def _check_approval(code: str, now: datetime) -> dict[str, Any]:
    return check_delay_approval(
        code,
        public("authority-signing.pub"),
        session_id="S-VEC-1",
        venue_id="V-VEC",
        package_id=load("package/sealed/manifest.json")["package_id"],
        delay_minutes=45,
        now=now,
    )


def test_the_delay_approval_checks_until_it_expires_and_is_remade() -> None:
    """The code is base64 of the signed document; it checks before expires_at, not at it, and
    its signature is Ed25519 over cbt-delay-approval-v2| + the body."""
    code = read("delay-approval/approval-code.txt").decode()
    document = load("delay-approval/approval.json")
    assert base64.b64decode(code) == read("delay-approval/approval.json")
    expires = datetime.fromisoformat(document["expires_at"])
    assert _check_approval(code, expires - timedelta(seconds=1)) == document
    with pytest.raises(ApprovalRejected, match="expired"):
        _check_approval(code, expires)
    body = canonical_json({k: v for k, v in document.items() if k != "signature"})
    remade = crypto.sign(private_key("authority-signing.pem"), "delay-approval", body)
    assert base64.b64encode(remade).decode() == document["signature"]


# --- the response package and its receipt --------------------------------------------------


def _open_response(data: bytes) -> Any:
    return open_response_package(
        data, public("venue-sign.pub"), private_key("authority-upload.pem")
    )


def test_the_response_package_is_format_3_and_opens_to_the_committed_contents() -> None:
    """Verify (tag cbt-response-v3), unwrap (HPKE), decrypt, decompress: exactly the contents."""
    data, exp = read("response/package.cbtr"), load("response/expected.json")
    opened = _open_response(data)
    assert opened.header.format_version == 3
    assert opened.header.to_dict() == exp["header"]
    assert canonical_json(opened.contents) == read("response/contents.json")
    assert canonical_json(opened.evidence()) == read("response/evidence.json")
    assert exp["wrap"]["wrap_version"] == 2
    length = int.from_bytes(data[8:12], "big")
    header, signature = data[12 : 12 + length], data[12 + length : 12 + length + 64]
    assert crypto.sign(private_key("venue-sign.pem"), "response", header) == signature


def test_the_receipt_verifies_for_the_package() -> None:
    """The centre's receipt (cbt-receipt-v1) verifies for the committed package's hash."""
    from server.protocol.receipts import verify_receipt

    exp = load("response/expected.json")
    body = verify_receipt(load("response/receipt.json"), public("authority-signing.pub"),
                          exp["package_sha256"])  # fmt: skip
    assert body["package_sha256"] == hashlib.sha256(read("response/package.cbtr")).hexdigest()


# --- the online release exchange (request format 2, answer in an HPKE wrap) ---------------


def _check_request(request: dict[str, Any]) -> None:
    check_release_request(
        public("venue-sign.pub"),
        request["session_id"],
        request["venue_id"],
        request["requested_at"],
        base64.b64decode(request["signature"], validate=True),
        request["format_version"],
    )


def test_the_release_request_is_format_2_signed_under_its_tag() -> None:
    """The request says format 2; its signature is Ed25519 over cbt-release-request-v2| + the
    message, remade byte for byte, and the centre's check accepts it."""
    request = load("release-exchange/request.json")
    assert request["format_version"] == 2
    message = release_request_message(
        request["session_id"], request["venue_id"], request["requested_at"]
    )
    assert message == read("release-exchange/message.bin")
    remade = crypto.sign(private_key("venue-sign.pem"), "release-request", message)
    assert base64.b64encode(remade).decode() == request["signature"]
    _check_request(request)


def test_the_release_answer_is_an_hpke_wrap_of_the_set_2_record() -> None:
    """The centre's answer opens with the venue key to set 2's release record."""
    answer = load("release-exchange/answer.json")
    assert base64.b64decode(answer["wrapped_release"]).startswith(b"CBTW\x02")
    assert load("release-exchange/expected.json")["wrap"]["wrap_version"] == 2
    record = open_release_response(answer, private_key("venue-wrap.pem"))
    assert canonical_json(record) == read("package/release/release-record.json")


# --- one flipped byte of each signed artifact ----------------------------------------------


def flip(data: bytes, offset: int) -> bytes:
    """The first letter or digit at or after `offset` XOR 1 (text stays text)."""
    for at in range(offset, len(data)):
        flipped = data[at] ^ 1
        if chr(data[at]).isalnum() and chr(flipped).isalnum():
            return data[:at] + bytes([flipped]) + data[at + 1 :]
    raise AssertionError("no byte to flip")


def after(data: bytes, marker: bytes) -> int:
    return data.index(marker) + len(marker)


def _manifest_with(tmp: Path, data: bytes) -> None:
    package = tmp / "package"
    package.mkdir(parents=True)
    for path in SEALED.iterdir():
        (package / path.name).write_bytes(path.read_bytes())
    (package / "manifest.json").write_bytes(data)
    open_package(package, public("authority-signing.pub"))


@dataclass(frozen=True)
class Flip:
    file: str
    offset: Callable[[bytes], int]
    consume: Callable[[Path, bytes], object]
    error: type[Exception]
    message: str


FLIPS = {
    "manifest": Flip(
        "package/sealed/manifest.json", lambda d: after(d, b'"venue_name":"'),
        _manifest_with, SignatureInvalid, "altered after signing",
    ),
    "release-record": Flip(
        "package/release/release-record.json", lambda d: after(d, b'"issued_at":"'),
        lambda t, d: _unlock(d.decode()), SignatureInvalid, "not signed by the pinned",
    ),
    "delay-approval": Flip(
        "delay-approval/approval.json", lambda d: after(d, b'"expires_at":"'),
        lambda t, d: _check_approval(base64.b64encode(d).decode(), datetime.fromisoformat(
            load("delay-approval/approval.json")["issued_at"])),
        ApprovalRejected, "does not carry the centre's signature",
    ),
    "release-request": Flip(
        "release-exchange/request.json", lambda d: after(d, b'"requested_at":"'),
        lambda t, d: _check_request(json.loads(d)), ReleaseRequestInvalid, "not signed by venue",
    ),
    "response-header": Flip(
        "response/package.cbtr", lambda d: after(d, b'"created_at":"'),
        lambda t, d: _open_response(d), PackageTampered, "altered after signing",
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(FLIPS))
def test_one_flipped_byte_is_refused_by_the_consumer(name: str, tmp_path: Path) -> None:
    """The unflipped artifact passes its consumer; one flipped byte raises its named error."""
    case = FLIPS[name]
    data = read(case.file)
    case.consume(tmp_path / "ok", data)
    with pytest.raises(case.error, match=case.message):
        case.consume(tmp_path / "flip", flip(data, case.offset(data)))
    assert issubclass(case.error, PaperpackError | ResponsePackageError | ReleaseRequestInvalid)
