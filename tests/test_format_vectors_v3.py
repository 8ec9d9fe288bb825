"""Frozen format vectors, set 3 (tests/vectors/formats/v3/): package format 3, format 2 plus
the signed, sealed `practice`, `inspection` and `seating` (the centre's seat seed, art. 21(1);
the paper's forms and its shuffled sections' item counts, art. 20). Only the package changed
from set 2, so set 3 holds the package, its release and the secrets a test re-derives from.

The manifest verifies and its signature is remade byte for byte; the three new fields are in
the key's binding (changing any of them changes the key); the package unlocks with today's
consumer; a seed changed after signing is refused. Sets 1 and 2 keep proving the older
formats (tests/test_format_vectors.py, tests/test_format_vectors_v2.py).
"""

from __future__ import annotations

import copy
import hashlib
import json
from datetime import datetime
from typing import Any

import pytest

from paperpack import crypto
from paperpack.canonical import canonical_json
from paperpack.errors import SignatureInvalid
from paperpack.manifest import (
    binding,
    derive_key,
    parse_manifest,
    sealed_fields,
    signature_text,
    verify_manifest,
)
from paperpack.model import paper_to_dict
from paperpack.package import open_package
from paperpack.unlock import Unlock
from tests.conftest import REPO_ROOT

V3 = REPO_ROOT / "tests" / "vectors" / "formats" / "v3"
SEALED = V3 / "package" / "sealed"


def read(relative: str) -> bytes:
    return (V3 / relative).read_bytes()


def load(relative: str) -> Any:
    return json.loads(read(relative))


def private_key(name: str) -> Any:
    return crypto.load_private_key(V3 / "keys" / name)


def public(name: str) -> crypto.Ed25519PublicKey:
    return crypto.read_signing_public(read(f"keys/{name}").decode())


def test_every_file_is_the_one_committed() -> None:
    """SHA256SUMS lists every file of the set with its hash; nothing is missing or extra."""
    listed = {}
    for line in read("SHA256SUMS").decode().splitlines():
        digest, name = line.split("  ", 1)
        listed[name] = digest
    files = [p for p in V3.rglob("*") if p.is_file() and p.name != "SHA256SUMS"]
    present = {p.relative_to(V3).as_posix() for p in files}
    assert set(listed) == present
    for name, digest in listed.items():
        assert hashlib.sha256(read(name)).hexdigest() == digest, name


def test_the_manifest_is_format_3_with_seating_and_signed_under_its_tag() -> None:
    """The manifest says format 3, carries the seat seed (32 bytes), the paper's forms and its
    shuffled sections, and the practice flag; manifest.sig is remade byte for byte."""
    data, sig = read("package/sealed/manifest.json"), read("package/sealed/manifest.sig")
    verify_manifest(data, sig, public("authority-signing.pub"))
    manifest = parse_manifest(data)
    assert manifest.format_version == 3 and manifest.practice is False
    seating = manifest.seating
    assert seating is not None and len(bytes.fromhex(seating["seed"])) == 32
    paper = load("package/input/paper.json")
    assert seating["forms"] == paper.get("forms", [])
    shuffled = [len(s["items"]) for s in paper["sections"] if s.get("shuffle", True)]
    assert seating["shuffled"] == [n for n in shuffled if n >= 2]
    remade = crypto.sign(private_key("authority-signing.pem"), "manifest", data)
    assert signature_text(remade).encode("ascii") == sig


@pytest.mark.parametrize("field", ["seating", "practice", "inspection"])
def test_the_new_fields_are_bound_to_the_key(field: str) -> None:
    """The committed secrets re-derive the key; each new field is a sealed field, so another
    value of it gives another binding (and so another key)."""
    exp = load("package/expected.json")
    raw = json.loads(read("package/sealed/manifest.json"))
    assert field in sealed_fields(raw)
    assert binding(raw).hex() == exp["key"]["binding_hex"]
    secrets = {k: bytearray.fromhex(v) for k, v in exp["secrets"].items()}
    key, tag = derive_key(secrets["s_sup_hex"], secrets["s_time_hex"], secrets["s_dev_hex"], raw)
    assert key.hex() == exp["key"]["content_key_hex"] and tag == raw["key_commitment"]
    other = copy.deepcopy(raw)
    other[field] = {
        "seating": {**raw["seating"], "seed": "00" * 32},
        "practice": True,
        "inspection": ["another line"],
    }[field]
    assert binding(other) != binding(raw)


def test_the_package_unlocks_with_todays_consumer() -> None:
    """Two cards and the release record open the committed paper."""
    exp = load("package/expected.json")
    now = datetime.fromisoformat(exp["unlock_at"])
    opened = open_package(SEALED, public("authority-signing.pub"), venue_id="V-VEC")
    unlock = Unlock(opened, private_key("venue-wrap.pem"), now)
    unlock.add_share(read("package/shares/holder-1.txt").decode(), "a")
    unlock.add_share(read("package/shares/holder-3.txt").decode(), "b")
    unlock.add_release(read("package/release/release-record.json").decode(), now=now)
    paper = unlock.open(now).paper
    assert canonical_json(paper_to_dict(paper, with_keys=False)) == read(
        "package/unlocked/paper.json"
    )


def test_a_seat_seed_changed_after_signing_is_refused() -> None:
    """A venue cannot put its own seed in the package: the signature no longer verifies."""
    raw = json.loads(read("package/sealed/manifest.json"))
    raw["seating"]["seed"] = "ab" * 32
    with pytest.raises(SignatureInvalid):
        verify_manifest(
            canonical_json(raw),
            read("package/sealed/manifest.sig"),
            public("authority-signing.pub"),
        )
