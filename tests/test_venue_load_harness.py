"""The venue load harness (issue 18, item 1): a quick functional run with tiny numbers, and
its refusal to call a generator-bound phase a server figure. Not a benchmark: nothing here is
timed against a target."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from loadtests import run_venue_load
from loadtests.venue_client import proc_cpu_s


def phase(rate: float, cal_rate: float, cal_share: float, own_share: float) -> dict[str, Any]:
    window = {"server_cpu_per_request_ms": 0.05, "server_core_share": 0.5, "failures": 0}
    return {
        **window, "kind": "capacity", "name": "capacity 200", "concurrency": 200,
        "rate": rate, "generator_core_share": own_share, "requests_by_name": {},
        "calibration": {**window, "rate": cal_rate, "generator_core_share": cal_share,
                        "concurrency": 200},
    }  # fmt: skip


def test_generator_bound_phase_is_never_a_server_figure() -> None:
    # The generator drove 3,000 /ping per s on its whole core: a 2,000/s phase needs 6,000.
    bound = phase(2000, cal_rate=3000, cal_share=1.0, own_share=0.5)
    bound["baseline"] = bound["calibration"]
    bound["verdict"] = run_venue_load.judge(bound)
    assert not bound["verdict"]["server_figure"]
    assert run_venue_load.figure(bound, "x").startswith("GENERATOR-BOUND")
    # The same phase measured with a generator that had CPU to spare is a server figure...
    free = phase(2000, cal_rate=3000, cal_share=0.25, own_share=0.5)
    assert run_venue_load.judge(free)["server_figure"]
    # ...but not if it could get a CPU only a fifth of the time it wanted one (a busy machine)
    starved = phase(2000, cal_rate=3000, cal_share=0.25, own_share=0.5)
    starved["calibration"]["generator_cpu_availability"] = 0.2
    assert not run_venue_load.judge(starved)["server_figure"]
    # ...nor if the generator's own core was saturated during the phase.
    assert not run_venue_load.judge(phase(2000, 3000, 0.25, own_share=0.95))["server_figure"]


def test_a_tiny_run_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "out"
    code = run_venue_load.main(
        ["--roster", "12", "--herd", "10", "--big-herd", "0", "--steady", "4",
         "--steady-seconds", "0.5", "--steady-ramp", "0.2", "--capacity", "4",
         "--capacity-seconds", "0.5", "--calibrate-seconds", "0.3", "--server-core", "",
         "--generator-core", "", "--no-doc", "--out", str(out)]
    )  # fmt: skip
    assert code in (0, 1)  # 1: some phase was generator-bound on this busy machine
    (run,) = json.loads((out / "venue_load.json").read_text())["runs"]
    phases = {p["name"]: p for p in run["phases"]}
    assert set(phases) == {"ping 64", "herd 10", "steady 4", "capacity 4"}
    herd = phases["herd 10"]
    assert herd["served"] == 10 and herd["failures"] == 0
    assert herd["requests_by_name"]["login"]["count"] == 10
    for p in phases.values():
        assert p["server_cpu_s"] >= 0 and "server_figure" in p["verdict"]
    assert phases["capacity 4"]["requests_by_name"]["save"]["count"] > 0
    assert phases["capacity 4"]["failures"] == 0
    assert proc_cpu_s(None) == 0.0
