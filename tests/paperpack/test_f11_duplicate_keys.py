"""Issue 16, F11: every signed or parsed JSON format refuses a key named twice in one object.

A reader that keeps the last of two keys and one that keeps the first would see two documents
behind one signature. Each test takes the real producer's output, splices an earlier copy of
one key into it (so the last copy is still the genuine one and a last-wins reader accepts it),
and shows the reader refusing with its format's own typed error naming the key.
"""

from __future__ import annotations

import base64
import json
import shutil
from datetime import timedelta
from pathlib import Path

import pytest

from paperpack.approval import ApprovalRejected, issue_delay_approval, read_delay_approval
from paperpack.canonical import DuplicateKey, canonical_json, strict_loads
from paperpack.crypto import sign
from paperpack.errors import ManifestInvalid, PaperInvalid, ReleaseRejected
from paperpack.manifest import signature_text
from paperpack.pack import SIGNING_KIND
from paperpack.package import open_package
from paperpack.paperfile import load_paper
from paperpack.release import issue_release, parse_record
from tests.paperpack.sealing_fixtures import IN_WINDOW, START, Packed, pack_for

SESSION = "S-2026-27"


@pytest.fixture(scope="module")
def packed(tmp_path_factory: pytest.TempPathFactory) -> Packed:
    return pack_for(tmp_path_factory.mktemp("f11"), ("V1",))


def splice(data: bytes, key: str, value: object) -> bytes:
    """`data` (a JSON object) with `"key": value` inserted before its first member."""
    assert data.startswith(b"{")
    return b"{" + json.dumps(key).encode() + b":" + canonical_json(value) + b"," + data[1:]


def test_f11_strict_loads_names_the_duplicate_key() -> None:
    with pytest.raises(DuplicateKey, match="'window' appears twice") as caught:
        strict_loads(b'{"a": {"window": 1, "window": 2}}')
    assert caught.value.key == "window"
    assert strict_loads('{"a": {"window": 1}, "b": [{"window": 2}]}') == {
        "a": {"window": 1},
        "b": [{"window": 2}],
    }


def test_f11_manifest_with_duplicate_key_is_refused(packed: Packed, tmp_path: Path) -> None:
    """A wider "window" spliced before the genuine one and signed by the authority itself (a
    last-wins reader would accept it) is refused as ManifestInvalid naming the key."""
    package = tmp_path / "package"
    shutil.copytree(packed.package(), package)
    data = (package / "manifest.json").read_bytes()
    wide = {
        "not_after": (START + timedelta(days=30)).isoformat(),
        "not_before": (START - timedelta(days=30)).isoformat(),
    }
    forged = splice(data, "window", wide)
    assert json.loads(forged) == json.loads(data)  # what the last key wins gave
    (package / "manifest.json").write_bytes(forged)
    signature = sign(packed.authority.signing_key, SIGNING_KIND, forged)
    (package / "manifest.sig").write_text(signature_text(signature))
    with pytest.raises(ManifestInvalid, match="'window' appears twice"):
        open_package(package, packed.authority.signing_public)
    open_package(packed.package(), packed.authority.signing_public)  # the genuine one opens


def test_f11_release_record_with_duplicate_key_is_refused(packed: Packed) -> None:
    """The signature covers the canonical form, so a spliced earlier "window" would verify
    under a last-wins reader: parse_record refuses it as ReleaseRejected."""
    record = issue_release(packed.authority, SESSION, "V1").record
    text = json.dumps(record).encode()
    assert parse_record(text) == record
    forged = splice(text, "window", {"not_after": "2099-01-01T00:00:00+00:00"})
    with pytest.raises(ReleaseRejected, match="'window' appears twice"):
        parse_record(forged)
    with pytest.raises(ReleaseRejected, match="'not_after' appears twice"):
        parse_record(text.replace(b'"window": {', b'"window": {"not_after": "x", ', 1))


def test_f11_delay_approval_with_duplicate_key_is_refused(packed: Packed) -> None:
    code = issue_delay_approval(packed.authority, SESSION, "V1", 45, now=IN_WINDOW)
    read_delay_approval(code, packed.authority.signing_public)  # genuine: reads
    raw = base64.b64decode(code)
    forged = base64.b64encode(splice(raw, "delay_minutes", 1440)).decode()
    with pytest.raises(ApprovalRejected, match="'delay_minutes' appears twice"):
        read_delay_approval(forged, packed.authority.signing_public)


def test_f11_paper_json_with_duplicate_key_is_refused(packed: Packed, tmp_path: Path) -> None:
    """A paper JSON file (as `paperpack` writes it) with a key twice is PaperInvalid."""
    from paperpack.model import paper_to_dict

    text = json.dumps(paper_to_dict(packed.paper)).encode()
    good = tmp_path / "paper.json"
    good.write_bytes(text)
    load_paper(good)
    bad = tmp_path / "bad.json"
    bad.write_bytes(splice(text, "title", "another title"))
    with pytest.raises(PaperInvalid, match="'title' appears twice"):
        load_paper(bad)
