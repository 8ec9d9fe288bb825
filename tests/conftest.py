"""Fixtures and helpers every test folder shares.

Tests that need something outside Python (Debian's Chromium, a PostgreSQL server, the
shared QTI fixtures) call `require(...)`: on a user's machine they skip with a reason that
says how to get the missing part; in CI (`CBT_REQUIRE_ALL=1`, set by `.ci/run`) the same
condition is a failure, so CI always runs them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_FIXTURES = REPO_ROOT.parent / "shared" / "fixtures"
EXAMPLES = REPO_ROOT / "examples"


def require(condition: bool, how_to_get_it: str) -> None:
    """Skip (or, in CI, fail) the calling test when `condition` is false."""
    if condition:
        return
    if os.environ.get("CBT_REQUIRE_ALL") == "1":
        pytest.fail(f"required in CI but missing: {how_to_get_it}")
    pytest.skip(how_to_get_it)


@pytest.fixture
def qti_fixtures() -> Path:
    """The shared real-world QTI files (../shared/fixtures/qti)."""
    folder = SHARED_FIXTURES / "qti"
    require(
        folder.is_dir(), f"QTI fixtures not found at {folder}: check out ../shared beside the repo"
    )
    return folder


@pytest.fixture
def sample_paper_path() -> Path:
    return EXAMPLES / "paper.yaml"
