"""The venue load test: the real server on one core, an asyncio load generator on another.

    python loadtests/run_venue_load.py --roster 6500 --herd 3000 --big-herd 10000 \
        --steady 3000 --steady-seconds 30 --capacity 200,30 --port 18080
    python loadtests/run_venue_load.py ... --compare-tree /tmp/cbt_before   # before/after

Each run builds a venue (an authority, a packed synthetic 100-item paper, a roster of
`--roster` candidates), starts `cbt venue serve` pinned with `taskset` to `--server-core`,
unlocks it over HTTP, waits for it to finish rendering the papers, then starts ONE generator
process (`loadtests/venue_client.py`, aiohttp, no locust) pinned to `--generator-core`, which
runs the phases in order: a ping baseline; the herd (the candidates released at once: log in
+ paper, each on a new connection); steady (save every 5 s, heartbeat every 15 s); capacity
(saves back to back at each `--capacity` concurrency). A second run on a fresh venue of
`--big-herd` candidates runs that herd alone. With `--compare-tree`, every run is made
against each checkout's server in turn (a copy of the same locked venue), so before and after
come from one run of this command.

Every phase is preceded by a /ping calibration at its concurrency, and `judge` decides from
the numbers whether it may be reported as a server figure: the generator must drive /ping at
>= 3x the rate the phase asks for (paced phases: what the candidates ask for; a herd: its
requests within its target time; back to back: the rate reached), where what it can drive
is the calibration's /ping rate (200 concurrent) per CPU-second of the generator, times the
share of a CPU it got when it wanted one (/proc/self/task/*/schedstat: other work on a
shared machine takes the rest), and its own core must not be saturated (>= 90%) during the
phase. A phase that fails this
is printed as GENERATOR-BOUND and is never written as a server figure. Server CPU per
request comes from /proc/<pid>/stat (utime + stime) over exactly each measured window.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from loadtests.venue_client import proc_rss_mib  # noqa: E402
from loadtests.venue_setup import ROOT as _ROOT  # noqa: E402
from loadtests.venue_setup import (  # noqa: E402
    Setup,
    copy_venue,
    fsync_rate,
    running_server,
    set_up_venue,
    unlock,
    wait_idle,
)

CLIENT = ROOT / "loadtests" / "venue_client.py"
HEADROOM = 3.0  # the generator must reach this multiple of a phase's rate


def herd_target_s(candidates: int) -> float:
    """The herd targets: 3,000 within 3 s, 10,000 within 10 s."""
    return max(3.0, candidates / 1000)


def asked_rate(phase: dict[str, Any]) -> float:
    kind = phase["kind"]
    if kind == "steady":
        return float(phase["asked_rate"])
    if kind == "herd":
        return max(2 * phase["candidates"] / herd_target_s(phase["candidates"]), phase["rate"])
    return float(phase["rate"])  # back to back: what it reached


def judge(phase: dict[str, Any]) -> dict[str, Any]:
    """Whether a phase is a server figure: the generator could drive /ping at >= 3x its rate.

    The generator's ceiling is what it drove in the calibration (/ping, 200 concurrent) per
    CPU-second of its own: the rate it reaches with its core to itself, whether the server or
    other work on the machine held the calibration back. A generator whose core was >= 90%
    busy during the phase makes it generator-bound whatever its ceiling."""
    cal = phase.get("calibration")
    need = HEADROOM * asked_rate(phase)
    if cal is None:
        return {"server_figure": True, "need": need, "ceiling": None, "why": "calibration phase"}
    ping_rate, share = cal["rate"], cal["generator_core_share"]
    # Pings per CPU-second of the generator, times the share of a CPU it could get when it
    # wanted one (other work on a shared machine takes the rest): what it can drive here.
    got = cal.get("generator_cpu_availability", 1.0)
    ceiling = ping_rate / max(share, 1e-6) * got
    saturated = phase["generator_core_share"] >= 0.9
    ok = ceiling >= need and not saturated
    if saturated:
        why = f"the generator used {phase['generator_core_share']:.0%} of its core in the phase"
    else:
        why = (
            f"generator ceiling {ceiling:,.0f} /ping per s ({ping_rate:,.0f}/s driven on "
            f"{share:.0%} of its core, {got:.0%} of a CPU to be had) "
            f"{'>=' if ok else '<'} {HEADROOM:g}x {asked_rate(phase):,.0f}/s"
        )
    return {"server_figure": ok, "need": need, "ceiling": ceiling, "why": why}


def free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def build_plan(args: argparse.Namespace, big: bool) -> list[dict[str, Any]]:
    cal = {"calibrate_seconds": args.calibrate_seconds}
    if big:
        return [{"kind": "herd", "name": f"herd {args.big_herd}", "candidates": args.big_herd,
                 **cal}]  # fmt: skip
    plan: list[dict[str, Any]] = [
        {"kind": "ping", "name": "ping 64", "concurrency": 64, "seconds": args.calibrate_seconds}
    ]
    plan.append({"kind": "herd", "name": f"herd {args.herd}", "candidates": args.herd, **cal})
    if args.steady:
        plan.append({"kind": "steady", "name": f"steady {args.steady}", "candidates": args.steady,
                     "seconds": args.steady_seconds, "ramp_seconds": args.steady_ramp,
                     **cal})  # fmt: skip
    for concurrency in args.capacity:
        name = f"capacity {concurrency}"
        plan.append({"kind": "capacity", "name": name, "concurrency": concurrency,
                     "seconds": args.capacity_seconds, **cal})  # fmt: skip
    return plan


def one_run(
    args: argparse.Namespace, setup: Setup, tree: Path, label: str, big: bool, work: Path
) -> dict[str, Any]:
    """Serve `setup` from `tree`, unlock, run the plan with one pinned generator."""
    port = args.port or free_port(args.host)
    base = f"http://{args.host}:{port}"
    log = args.out / f"server-{label}.log"
    with running_server(setup.directory, args.host, port, log, tree=tree,
                        core=args.server_core) as proc:  # fmt: skip
        fsync = fsync_rate(setup.directory)
        unlock_s = unlock(base, setup)
        idle_after_s = wait_idle(proc.pid)
        rss_unlocked = proc_rss_mib(proc.pid)
        plan = build_plan(args, big)
        out = work / f"{label}.json"
        command = [sys.executable, str(CLIENT), "--base", base, "--tickets",
                   str(setup.tickets_file), "--plan", json.dumps(plan),
                   "--server-pid", str(proc.pid), "--out", str(out)]  # fmt: skip
        if args.generator_core is not None:
            command = ["taskset", "-c", args.generator_core, *command]
        load_before = os.getloadavg()
        subprocess.run(command, check=True, cwd=ROOT, timeout=args.timeout)
        phases = json.loads(out.read_text())
    for phase in phases:
        phase["verdict"] = judge(phase)
    return {
        "label": label, "tree": str(tree), "port": port, "fsync_per_s": fsync,
        "unlock_s": unlock_s, "render_wait_s": idle_after_s, "rss_unlocked_mib": rss_unlocked,
        "load_average_before": load_before, "phases": phases,
    }  # fmt: skip


def by_name(run: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((p for p in run["phases"] if p["name"] == name), None)


def figure(phase: dict[str, Any] | None, text: str) -> str:
    """`text`, or the phase's generator-bound verdict instead of a server figure."""
    if phase is None:
        return "not run"
    if not phase["verdict"]["server_figure"]:
        return f"GENERATOR-BOUND (measured: {text})"
    return text


def targets(run: dict[str, Any], big: dict[str, Any] | None, args: argparse.Namespace
            ) -> list[tuple[str, str, bool | None]]:  # fmt: skip
    """(target, figure, met) for every issue-18 venue target; met is None if not judgeable."""
    rows: list[tuple[str, str, bool | None]] = []
    for concurrency in args.capacity:
        cap = by_name(run, f"capacity {concurrency}")
        if cap is None:
            continue
        ping = cap["baseline"]  # /ping at the same concurrency, just before
        ratio = cap["server_cpu_per_request_ms"] / ping["server_cpu_per_request_ms"]
        ok = cap["verdict"]["server_figure"] and cap["failures"] == 0
        rows.append((f"CPU per save <= 1.5x CPU per /ping, {concurrency} concurrent, roster "
                     f"{args.roster:,}", figure(cap, f"{ratio:.2f}x ("
                     f"{cap['server_cpu_per_request_ms'] * 1000:.0f} vs "
                     f"{ping['server_cpu_per_request_ms'] * 1000:.0f} µs)"),
                     ratio <= 1.5 if ok else None))  # fmt: skip
        if concurrency == 200:
            ratio = cap["rate"] / ping["rate"]
            text = f"{ratio:.2f}x ({cap['rate']:,.0f} vs {ping['rate']:,.0f}/s)"
            rows.append(("saves/s >= 0.6x /ping per s, 200 concurrent", figure(cap, text),
                         ratio >= 0.6 if ok else None))  # fmt: skip
    for herd in (by_name(run, f"herd {args.herd}"), big and by_name(big, f"herd {args.big_herd}")):
        if not herd:
            continue
        n, limit = herd["candidates"], herd_target_s(herd["candidates"])
        ok = herd["verdict"]["server_figure"]
        met = herd["served"] == n and herd["failures"] == 0 and herd["last_paper_s"] <= limit
        rows.append((f"herd {n:,} within {limit:g} s, all served, 0 failures",
                     figure(herd, f"{herd['last_paper_s']:.2f} s, {herd['served']:,} served, "
                            f"{herd['failures']} failures"), met if ok else None))  # fmt: skip
    steady = by_name(run, f"steady {args.steady}")
    if steady:
        save = steady["requests_by_name"].get("save", {})
        p99 = save.get("p99_ms", float("nan"))
        rows.append((f"steady {args.steady:,}: save p99 <= 100 ms, 0 failures",
                     figure(steady, f"p99 {p99:.0f} ms, p50 {save.get('p50_ms', 0):.0f} ms, "
                            f"{steady['failures']} failures"),
                     p99 <= 100 and steady["failures"] == 0
                     if steady["verdict"]["server_figure"] else None))  # fmt: skip
    return rows


def phase_lines(run: dict[str, Any]) -> list[str]:
    lines = [
        "| Phase | Rate | Latency p50 / p99 | Failures | Server CPU per request | "
        "Calibration: /ping per s, 200 concurrent (server CPU per /ping) | Generator core | "
        "Load avg | Verdict |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for p in run["phases"]:
        cal = p["calibration"]
        names = p["requests_by_name"]
        latency = "; ".join(f"{n} {v['p50_ms']:.1f} / {v['p99_ms']:.1f} ms"
                            for n, v in names.items())  # fmt: skip
        extra = f", last paper {p['last_paper_s']:.2f} s" if p["kind"] == "herd" else ""
        cpu = p["server_cpu_per_request_ms"]
        lines.append(
            f"| {p['name']} | {p['rate']:,.0f} req/s{extra} | {latency} | {p['failures']} | "
            f"{cpu * 1000 if cpu else float('nan'):.0f} µs ({p['server_core_share']:.0%} of its "
            f"core{available(p)}) | "
            + (f"{cal['rate']:,.0f} ({cal['server_cpu_per_request_ms'] * 1000:.0f} µs; server "
               f"core {cal['server_core_share']:.0%}, generator {cal['generator_core_share']:.0%})"
               if cal else "(this is the baseline)")
            + (f"; at {base['concurrency']} concurrent: {base['rate']:,.0f} "
               f"({base['server_cpu_per_request_ms'] * 1000:.0f} µs)"
               if cal and (base := p["baseline"])["concurrency"] != cal["concurrency"] else "")
            + f" | {p['generator_core_share']:.0%} | {p['load_average']:.1f} | "
            + ("server figure" if p["verdict"]["server_figure"] else "**GENERATOR-BOUND**")
            + f": {p['verdict']['why']} |"
        )  # fmt: skip
    return lines


def available(phase: dict[str, Any]) -> str:
    got = phase.get("server_cpu_availability")
    return "" if got is None else f"; had a CPU {got:.0%} of the time it wanted one"


def summarise(runs: list[dict[str, Any]], args: argparse.Namespace, command: str) -> list[str]:
    """The markdown section: per checkout, the phases and the targets."""
    now = getattr(args, "measured", None) or datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "## Venue load", "",
        f"Command (measured {now}):", "", "```", command, "```", "",
        f"Server pinned to core {args.server_core}, generator (one asyncio aiohttp process) to "
        f"core {args.generator_core}; loopback {args.host}.", "",
    ]  # fmt: skip
    trees = list(dict.fromkeys(r["tree"] for r in runs))
    table: dict[str, list[tuple[str, str, bool | None]]] = {}
    for tree in trees:
        mine = [r for r in runs if r["tree"] == tree]
        main = next(r for r in mine if not r["label"].endswith("big"))
        big = next((r for r in mine if r["label"].endswith("big")), None)
        herd = by_name(main, f"herd {args.herd}")
        steady = by_name(main, f"steady {args.steady}")
        rss_steady = steady["server_rss_mib"] if steady else float("nan")
        lines += [
            f"### Server: {args.labels.get(tree, tree)}", "",
            f"Machine load average (1 min) before the run: {main['load_average_before'][0]:.2f}; "
            f"raw fsync (4 KiB + fdatasync) {main['fsync_per_s']:,.0f}/s; unlock (release to "
            f"paper decrypted + {args.roster:,} variants) {main['unlock_s']:.2f} s; RSS idle after "
            f"unlock {main['rss_unlocked_mib']:.0f} MiB, after the herd "
            f"{herd['server_rss_mib'] if herd else float('nan'):.0f} MiB, after steady "
            f"{rss_steady:.0f} MiB: "
            f"{(rss_steady - main['rss_unlocked_mib']) * 1024 / max(args.steady, 1):.1f} KiB per "
            "active candidate beyond the paper cache.", "",
            *phase_lines(main), "",
        ]  # fmt: skip
        if big:
            lines += [f"{args.big_herd:,}-candidate herd, its own venue and server (roster "
                      f"{args.big_herd:,}; load average before {big['load_average_before'][0]:.2f};"
                      f" RSS idle {big['rss_unlocked_mib']:.0f} MiB):", "",
                      *phase_lines(big)[2:], ""]  # fmt: skip
        table[tree] = targets(main, big, args)
    lines += ["Targets (issue 18):", ""]
    if len(trees) == 1:
        lines += ["| Target | Figure | Met |", "|---|---|---|"]
        for name, value, met in table[trees[0]]:
            lines.append(f"| {name} | {value} | {verdict(met)} |")
    else:
        names = [args.labels.get(t, t) for t in trees]
        lines += ["| Target | " + " | ".join(names) + " | Met (last) |",
                  "|---|" + "---|" * (len(trees) + 1)]  # fmt: skip
        for i, (name, _, met) in enumerate(table[trees[-1]]):
            cells = [table[t][i][1] if i < len(table[t]) else "" for t in trees]
            lines.append(f"| {name} | " + " | ".join(cells) + f" | {verdict(met)} |")
    return [*lines, ""]


def verdict(met: bool | None) -> str:
    return "not judged (generator-bound)" if met is None else ("yes" if met else "**no**")


def write_section(doc: Path, lines: list[str]) -> None:
    """Replace the "## Venue load" section of docs/performance.md (others are kept)."""
    text = doc.read_text() if doc.exists() else "# Performance\n\n"
    section = "\n".join(lines)
    start = text.find("## Venue load")
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = text.find("\n## ", start + 1)
        text = text[:start] + section + ("\n" + text[end + 1 :] if end >= 0 else "")
    doc.write_text(text.rstrip("\n") + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--roster", type=int, default=6500, help="candidates in the main venue")
    parser.add_argument("--herd", type=int, default=3000)
    parser.add_argument("--big-herd", type=int, default=10000, help="0: no second run")
    parser.add_argument("--steady", type=int, default=3000, help="0: no steady phase")
    parser.add_argument("--steady-seconds", type=float, default=30)
    parser.add_argument("--steady-ramp", type=float, default=5, help="seconds to spread starts")
    parser.add_argument("--capacity", type=lambda s: [int(x) for x in s.split(",") if x],
                        default=[200, 30], help="concurrencies, e.g. 200,30")  # fmt: skip
    parser.add_argument("--capacity-seconds", type=float, default=10)
    parser.add_argument("--calibrate-seconds", type=float, default=3)
    parser.add_argument("--items", type=int, default=100)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: a free port")
    parser.add_argument("--server-core", default="0", help="taskset list; '' for no pinning")
    parser.add_argument("--generator-core", default="1", help="taskset list; '' for no pinning")
    parser.add_argument("--compare-tree", action="append", default=[], metavar="[LABEL=]PATH",
                        help="another checkout whose server runs first")  # fmt: skip
    parser.add_argument("--label", default="this checkout", help="this checkout's name")
    parser.add_argument("--report", type=Path, help="no run: the tables from a venue_load.json")
    parser.add_argument("--timeout", type=float, default=900, help="per generator run, seconds")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "venue-load")
    parser.add_argument("--doc", type=Path, default=ROOT / "docs" / "performance.md")
    parser.add_argument("--no-doc", action="store_true", help="print, do not write the doc")
    args = parser.parse_args(argv)
    args.server_core = args.server_core or None
    args.generator_core = args.generator_core or None
    if args.herd > args.roster or max([args.steady, *args.capacity]) > args.herd:
        parser.error("--herd must fit in --roster; --steady and --capacity in --herd")
    command = "python loadtests/run_venue_load.py " + shlex.join(
        sys.argv[1:] if argv is None else argv
    )
    compare = [c.split("=", 1) if "=" in c else (c, c) for c in args.compare_tree]
    args.labels = {str(Path(path)): label for label, path in compare} | {str(_ROOT): args.label}
    if args.report:
        saved = json.loads(args.report.read_text())
        runs, command = saved["runs"], saved.get("command", command)
        finished = datetime.fromtimestamp(args.report.stat().st_mtime, UTC)
        args.measured = (
            saved.get("measured") or f"{finished:%Y-%m-%d}, finished {finished:%H:%M UTC}"
        )
        return report(runs, args, command)
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # inherited by both processes
    if hard < max(args.herd, args.big_herd) + 200:  # a connection each, in each process
        print(f"note: the open-file limit {hard} is low for a herd of {args.big_herd}")
    args.out.mkdir(parents=True, exist_ok=True)
    trees = [*(Path(path) for _, path in compare), _ROOT]
    began_at = datetime.now(UTC)
    args.measured = f"{began_at:%Y-%m-%d %H:%M} UTC"
    runs = []
    with tempfile.TemporaryDirectory(prefix="venue-load-") as tmp:
        work = Path(tmp)
        began = time.perf_counter()
        setups = {False: set_up_venue(work / "main", args.roster, args.items)}
        if args.big_herd:
            setups[True] = set_up_venue(work / "big", args.big_herd, args.items)
        print(f"venues built in {time.perf_counter() - began:.1f} s", flush=True)
        for big, setup in setups.items():
            for n, tree in enumerate(trees):
                label = f"{n}-{'big' if big else 'main'}"
                fresh = copy_venue(setup, work / f"copy-{label}" / "venue")
                runs.append(one_run(args, fresh, tree, label, big, work))
    runs.sort(key=lambda r: (r["label"].split("-")[0], r["label"]))
    saved = {"command": command, "measured": args.measured, "runs": runs}
    (args.out / "venue_load.json").write_text(json.dumps(saved, indent=1))
    return report(runs, args, command)


def report(runs: list[dict[str, Any]], args: argparse.Namespace, command: str) -> int:
    """Print (and write to the doc unless --no-doc) the tables; 1 if any phase was
    generator-bound."""
    lines = summarise(runs, args, command)
    print("\n".join(lines))
    if not args.no_doc:
        write_section(args.doc, lines)
    bound = [f"{r['label']}: {p['name']}" for r in runs for p in r["phases"]
             if not p["verdict"]["server_figure"]]  # fmt: skip
    if bound:
        print("GENERATOR-BOUND (not server figures): " + ", ".join(bound))
    return 1 if bound else 0


if __name__ == "__main__":
    sys.exit(main())
