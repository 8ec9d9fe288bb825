"""Every release accounted for (issue 14, point 5): `paperpack release` keeps to the signed
window unless forced with a reason, and every issuance is in the authority's signed,
hash-chained release log, which `paperpack release-log` verifies."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from paperpack.cli import main
from paperpack.release import ReleaseMaterialUnreadable, accountable_release
from paperpack.release_log import log_path, read_log, verify_log
from tests.paperpack.sealing_fixtures import Packed, pack_for


@pytest.fixture
def now_window(tmp_path: Path) -> Packed:
    """A session whose unlock window is open now (it starts in 30 minutes)."""
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=30)
    return pack_for(tmp_path, ("V1",), start=start.isoformat())


@pytest.fixture
def past_window(tmp_path: Path) -> Packed:
    """The test session of sealing_fixtures: its window closed in November 2026."""
    return pack_for(tmp_path, ("V1",))


def release(packed: Packed, *extra: str) -> int:
    auth = str(packed.authority.directory)
    return main(["release", packed.session.session_id, "V1", "--authority", auth, *extra])


def test_release_inside_the_window_is_issued_and_logged(
    now_window: Packed, capsys: pytest.CaptureFixture[str]
) -> None:
    assert release(now_window) == 0
    out = capsys.readouterr().out
    assert "logged as issuance 1" in out
    [entry] = read_log(now_window.authority.directory)
    assert entry["channel"] == "phone" and entry["forced"] is False and entry["reason"] is None
    assert (entry["session_id"], entry["venue_id"]) == (now_window.session.session_id, "V1")
    assert "(paperpack release)" in entry["who"]


def test_release_outside_the_window_is_refused_and_not_logged(
    past_window: Packed, capsys: pytest.CaptureFixture[str]
) -> None:
    assert release(past_window) == 1
    err = capsys.readouterr().err
    assert "only inside its unlock window" in err and "--force --reason" in err
    assert "Traceback" not in err
    assert not log_path(past_window.authority.directory).exists()


def test_force_needs_a_reason_and_is_logged_as_forced(
    past_window: Packed, capsys: pytest.CaptureFixture[str]
) -> None:
    assert release(past_window, "--force") == 1
    assert '--force needs --reason "why"' in capsys.readouterr().err
    assert release(past_window, "--reason", "power cut") == 1
    assert "--reason goes with --force" in capsys.readouterr().err
    assert release(past_window, "--force", "--reason", "re-sit ordered by the board") == 0
    [entry] = read_log(past_window.authority.directory)
    assert entry["forced"] is True and entry["reason"] == "re-sit ordered by the board"
    assert main(["release-log", "--authority", str(past_window.authority.directory)]) == 0
    out = capsys.readouterr().out
    assert "FORCED: re-sit ordered by the board" in out
    assert "OK: 1 issuances, chain and signatures intact" in out


def issue_three(packed: Packed) -> Path:
    now = datetime.now(UTC)
    for n in range(3):
        accountable_release(
            packed.authority,
            packed.session.session_id,
            "V1",
            now=now,
            channel="online",
            who=f"caller {n}",
            forced_reason=f"test {n}",
        )
    return log_path(packed.authority.directory)


def rewrite(path: Path, change: object) -> None:
    entries = [json.loads(line) for line in path.read_text().splitlines()]
    entries = change(entries)  # type: ignore[operator]
    path.write_text("".join(json.dumps(e) + "\n" for e in entries))


def test_a_rewritten_entry_with_its_hash_recomputed_fails_on_the_signature(
    past_window: Packed, capsys: pytest.CaptureFixture[str]
) -> None:
    """Whoever edits the file without the authority key cannot make the chain verify."""
    from paperpack.release_log import entry_hash

    path = issue_three(past_window)

    def edit(entries: list[dict[str, object]]) -> list[dict[str, object]]:
        entries[1]["who"] = "someone else"
        entries[1]["hash"] = entry_hash(entries[1])
        entries[2]["prev"] = entries[1]["hash"]
        entries[2]["hash"] = entry_hash(entries[2])
        return entries

    rewrite(path, edit)
    check = verify_log(
        read_log(past_window.authority.directory), past_window.authority.signing_public
    )
    assert (check.first_bad, check.entries) == (2, 1)
    assert "not signed by the authority key" in str(check.problem)
    assert main(["release-log", "--authority", str(past_window.authority.directory)]) == 1
    assert "BROKEN: entry 2" in capsys.readouterr().err


def test_a_removed_entry_breaks_the_chain(past_window: Packed) -> None:
    path = issue_three(past_window)
    rewrite(path, lambda entries: [entries[0], entries[2]])
    check = verify_log(
        read_log(past_window.authority.directory), past_window.authority.signing_public
    )
    assert check.first_bad == 2 and "removed or inserted" in str(check.problem)


def test_the_window_is_checked_before_the_central_secrets_are_opened(past_window: Packed) -> None:
    """Outside the window nothing is unwrapped: a damaged secrets file is not even read.
    Inside it (forced here), a damaged file is an error saying what to check, not 'no release'."""
    central = past_window.authority.central_dir(past_window.session.session_id, "V1")
    (central / "secrets.sealed").write_bytes(b"\x00" * 64)
    now = datetime.now(UTC)
    from paperpack.release import ReleaseOutsideWindow

    with pytest.raises(ReleaseOutsideWindow):
        accountable_release(
            past_window.authority, "S-2026-27", "V1", now=now, channel="phone", who="t"
        )
    with pytest.raises(ReleaseMaterialUnreadable, match="do not open with this authority"):
        accountable_release(
            past_window.authority,
            "S-2026-27",
            "V1",
            now=now,
            channel="phone",
            who="t",
            forced_reason="check",
        )
    assert read_log(past_window.authority.directory) == []
