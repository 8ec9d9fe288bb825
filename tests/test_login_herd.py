"""The login herd (issue 16, F3) in miniature, so the harness keeps working: 60 candidates
behind one address, a tenth of them mistyping first, and a guesser on one ticket, against a
real `cbt venue serve`. Not a benchmark: the only bound is the harness's own 60 s deadline;
the 3,000-candidate figure is `python loadtests/login_herd.py` (docs/performance.md)."""

from __future__ import annotations

import re

import pytest

from loadtests import login_herd


def test_f3_a_small_room_behind_one_address_all_logs_in(capsys: pytest.CaptureFixture[str]) -> None:
    code = login_herd.main(["--candidates", "60", "--spread", "3", "--typos", "0.1"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "60 (60 within 60 s)" in out
    assert re.search(r"429s without Retry-After\s+0\n", out), out
    assert re.search(r"room's 429s\s+0\n", out), out
    assert out.rstrip().endswith("PASS")
