"""Start-delay approvals (format 2): signed under cbt-delay-approval-v2, bound to the
package, expiring; the venue refuses an expired one, one for another package, and the old
format (a bare signature with neither)."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from paperpack import cli
from paperpack.approval import (
    ApprovalError,
    ApprovalRejected,
    check_delay_approval,
    issue_delay_approval,
)
from paperpack.canonical import canonical_json
from paperpack.crypto import sign
from tests.paperpack.sealing_fixtures import IN_WINDOW, Packed, pack_for

SESSION = "S-2026-27"


@pytest.fixture(scope="module")
def packed(tmp_path_factory: pytest.TempPathFactory) -> Packed:
    return pack_for(tmp_path_factory.mktemp("approval"))


def package_id(packed: Packed, venue_id: str = "V1") -> str:
    return str(packed.packs[venue_id].manifest.package_id)


def check(packed: Packed, code: str, **overrides: Any) -> dict[str, Any]:
    expected: dict[str, Any] = {
        "session_id": SESSION,
        "venue_id": "V1",
        "package_id": package_id(packed),
        "delay_minutes": 45,
        "now": IN_WINDOW,
    }
    expected.update(overrides)
    return check_delay_approval(code, packed.authority.signing_public, **expected)


def document(code: str) -> dict[str, Any]:
    return dict(json.loads(base64.b64decode(code)))


def encode(doc: dict[str, Any]) -> str:
    return base64.b64encode(canonical_json(doc)).decode()


def test_an_approval_checks_for_its_session_venue_package_and_delay(packed: Packed) -> None:
    """The code decodes to the signed document; the venue accepts it for exactly that delay."""
    code = issue_delay_approval(packed.authority, SESSION, "V1", 45, now=IN_WINDOW)
    approval = check(packed, code)
    assert approval["package_id"] == package_id(packed)
    assert approval["expires_at"] == (IN_WINDOW + timedelta(hours=12)).isoformat()
    body = {k: v for k, v in document(code).items() if k != "signature"}
    signature = base64.b64decode(document(code)["signature"])
    packed.authority.signing_public.verify(
        signature, b"cbt-delay-approval-v2|" + canonical_json(body)
    )


def test_an_expired_approval_is_refused(packed: Packed) -> None:
    """At or after expires_at the approval is refused, naming the time it expired."""
    code = issue_delay_approval(
        packed.authority, SESSION, "V1", 45, valid_for=timedelta(hours=1), now=IN_WINDOW
    )
    check(packed, code, now=IN_WINDOW + timedelta(minutes=59))
    with pytest.raises(ApprovalRejected, match="expired at") as refused:
        check(packed, code, now=IN_WINDOW + timedelta(hours=1))
    assert refused.value.slug == "delay-approval-expired"


def test_an_approval_for_another_package_is_refused(packed: Packed) -> None:
    """An approval of an earlier (or other venue's) package does not carry over."""
    code = issue_delay_approval(packed.authority, SESSION, "V1", 45, now=IN_WINDOW)
    with pytest.raises(ApprovalRejected, match=r"for package .* but session S-2026-27 runs") as e:
        check(packed, code, package_id=package_id(packed, "V2"))
    assert e.value.slug == "delay-approval-mismatch"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"venue_id": "V2"}, "for venue V1, not V2"),
        ({"session_id": "S-OTHER"}, "for session S-2026-27, not S-OTHER"),
        ({"delay_minutes": 60}, "for a 45 min delay, not 60 min"),
    ],
)
def test_an_approval_for_anything_else_is_refused(
    packed: Packed, override: dict[str, Any], message: str
) -> None:
    """Session, venue and minutes must be the approved ones."""
    code = issue_delay_approval(packed.authority, SESSION, "V1", 45, now=IN_WINDOW)
    with pytest.raises(ApprovalRejected, match=message):
        check(packed, code, **override)


def test_a_changed_field_breaks_the_signature(packed: Packed) -> None:
    """Extending the expiry (or any field) after signing is refused as unsigned."""
    doc = document(issue_delay_approval(packed.authority, SESSION, "V1", 45, now=IN_WINDOW))
    doc["expires_at"] = (IN_WINDOW + timedelta(days=30)).isoformat()
    with pytest.raises(ApprovalRejected, match="does not carry the centre's signature") as e:
        check(packed, encode(doc))
    assert e.value.slug == "delay-approval-invalid"


def test_a_signature_of_another_kind_does_not_pass_as_an_approval(packed: Packed) -> None:
    """The same body signed as a release record (another domain tag) is refused."""
    doc = document(issue_delay_approval(packed.authority, SESSION, "V1", 45, now=IN_WINDOW))
    body = {k: v for k, v in doc.items() if k != "signature"}
    other = sign(packed.authority.signing_key, "release-record", canonical_json(body))
    doc["signature"] = base64.b64encode(other).decode()
    with pytest.raises(ApprovalRejected, match="does not carry the centre's signature"):
        check(packed, encode(doc))


def test_the_old_bare_signature_format_is_refused_with_what_to_do(packed: Packed) -> None:
    """Format 1 (a base64 signature of the purpose JSON, no expiry, no package) is refused."""
    message = canonical_json(
        {"purpose": "start-delay-approval", "session_id": SESSION, "venue_id": "V1",
         "delay_minutes": 45}
    )  # fmt: skip
    old = base64.b64encode(packed.authority.signing_key.sign(message)).decode()
    with pytest.raises(ApprovalRejected, match=r"old format .* ask the centre for a new"):
        check(packed, old)


@pytest.mark.parametrize(
    "code", ["", "not base64!", base64.b64encode(b"[1]").decode(), "QUFB" * 2000]
)
def test_garbage_is_refused_as_invalid(packed: Packed, code: str) -> None:
    """Anything that is not an approval code raises ApprovalRejected, never a crash."""
    with pytest.raises(ApprovalRejected) as refused:
        check(packed, code)
    assert refused.value.slug == "delay-approval-invalid"


def test_the_centre_refuses_to_approve_an_unpacked_venue_or_a_bad_validity(
    packed: Packed,
) -> None:
    with pytest.raises(ApprovalError, match="never packed"):
        issue_delay_approval(packed.authority, SESSION, "V9", 45)
    with pytest.raises(ApprovalError, match="at most 7 days"):
        issue_delay_approval(packed.authority, SESSION, "V1", 45, valid_for=timedelta(days=8))


def test_cli_approve_delay_prints_a_code_the_venue_accepts(
    packed: Packed, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """paperpack approve-delay prints one code line; a bad --valid-hours is one error line."""
    authority = str(packed.authority.directory)
    assert (
        cli.main(["approve-delay", SESSION, "V1", "--minutes", "45", "--authority", authority]) == 0
    )
    code = capsys.readouterr().out.splitlines()[-1]
    assert document(code)["delay_minutes"] == 45
    args = ["approve-delay", SESSION, "V1", "--minutes", "45", "--valid-hours", "nan"]
    assert cli.main([*args, "--authority", authority]) == 1
    assert "--valid-hours must be" in capsys.readouterr().err
