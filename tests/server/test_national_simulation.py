"""loadtests/national.py end to end at toy size (a functional check, not a benchmark): two
venues' real signed packages generated and cached, uploaded through one and two real
`cbt central serve` processes on PostgreSQL, every receipt verified, the session scored
split across processes."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tests.conftest import require
from tests.server.conftest import PG_DSN, _pg_available

ROOT = Path(__file__).resolve().parents[2]


def test_national_simulation_runs_at_toy_size(tmp_path: Path) -> None:
    require(_pg_available(), f"PostgreSQL not reachable at {PG_DSN}: set CBT_TEST_PG_DSN")
    sys.path.insert(0, str(ROOT / "loadtests"))
    try:
        import national
    finally:
        sys.path.remove(str(ROOT / "loadtests"))
    out = tmp_path / "national.json"
    code = national.main([
        "--venues", "2", "--candidates", "3", "--items", "100", "--saves", "2",
        "--processes", "1", "2", "--cache", str(tmp_path / "cache"), "--gen-workers", "1",
        "--pg", PG_DSN, "--out", str(out),
    ])  # fmt: skip
    assert code == 0
    doc = json.loads(out.read_text())
    assert [(r["venues"], r["processes"]) for r in doc["runs"]] == [(2, 1), (2, 2)]
    for run in doc["runs"]:
        assert (run["held"], run["lost"], run["duplicated"]) == (2, 0, 0)
        assert run["receipts_verified"] == 2
        # Every candidate of both venues; the synthetic paper has essays, so pending their marks.
        assert run["score"]["statuses"] == {"pending": 6}
    assert sorted(p.name for p in (tmp_path / "cache").glob("*/packages/*.pkg")) == [
        "V00001.pkg", "V00002.pkg",
    ]  # fmt: skip
