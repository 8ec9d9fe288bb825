"""Benchmark: objective scoring of 100-item papers on one core (target >= 200,000 per minute).

    python loadtests/bench_scoring_core.py [--items 100] [--sheets 5000] [--seconds 2]
        [--out FILE.json]

Measures, in one process, over the same realistic answer sheets (a synthetic paper from
`paperpack.synthetic`; per item about 8% unanswered, two thirds right, the rest wrong,
partly right or typed in full-width / other case):

- `KeyTable.total`   the scorer's hot path (precompiled keys), candidate-papers per minute;
- `KeyTable.score`   the same with the per-item score sheet;
- `score_paper`      the readable reference rules, for the ratio;
- full central path  rebuild the candidate's variant from the secret and ticket
                     (`VariantPlan.build`), map the browser's tokens back (`to_canonical`),
                     score with `KeyTable.total`;
- digest check path  recompute only the variant's digest (`VariantPlan.digest`) to check the
                     venue's record, and score canonical answers with `KeyTable.total`.

Rates are given against wall time and against this process's CPU time: on a shared, busy
machine the CPU figure is the one that says what one core does. Sheet generation is not timed.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from paperpack.model import CHOICE_TYPES, Item, Paper
from paperpack.scoring import Answer, compile_key, score_paper
from paperpack.synthetic import synthetic_paper
from paperpack.variants import VariantPlan, paused_gc, to_canonical, to_display

TARGET_PER_MINUTE = 200_000
SECRET = bytes(range(32))
SESSION = "bench-scoring"
WRONG_FILL = ("31", "二十", "HRB335", "", "C25", "ｈｒｂ４００ ")


def _answer(rng: random.Random, item: Item) -> Answer | None:
    if rng.random() < 0.08:
        return None
    if item.type in CHOICE_TYPES:
        ids = [o.option_id for o in item.options]
        if rng.random() < 0.66:
            return item.key
        chosen = set(rng.sample(ids, rng.randint(1, min(3, len(ids)))))
        return tuple(i for i in ids if i in chosen)
    if item.type == "fill_blank":
        out = []
        for blank in item.blanks:
            roll = rng.random()
            if roll < 0.6:
                out.append(blank.accepted[0])
            elif roll < 0.75:
                out.append(" " + blank.accepted[0].upper() + "　")
            else:
                out.append(rng.choice(WRONG_FILL))
        return tuple(out)
    return "答：" + "项目管理的主要内容包括进度、质量、成本控制。" * rng.randint(1, 5)


def make_sheets(paper: Paper, count: int, seed: int = 1) -> list[dict[str, Answer]]:
    rng = random.Random(seed)
    sheets = []
    for _ in range(count):
        sheet = {}
        for item in paper.items():
            answer = _answer(rng, item)
            if answer is not None:
                sheet[item.item_id] = answer
        sheets.append(sheet)
    return sheets


def rate(run: Callable[[], Any], per_run: int, seconds: float) -> dict[str, float]:
    """Repeat `run` for about `seconds`; papers per minute against wall and CPU time."""
    runs = 0
    wall = cpu = 0.0
    with paused_gc():
        while wall < seconds or runs == 0:
            w0, c0 = time.perf_counter(), time.process_time()
            run()
            wall += time.perf_counter() - w0
            cpu += time.process_time() - c0
            runs += 1
    papers = runs * per_run
    return {
        "papers": papers,
        "per_minute_wall": round(papers / wall * 60),
        "per_minute_cpu": round(papers / max(cpu, 1e-9) * 60),
        "us_per_paper_cpu": round(cpu / papers * 1e6, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--items", type=int, default=100, help="items per paper")
    parser.add_argument("--sheets", type=int, default=5000, help="distinct answer sheets")
    parser.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    parser.add_argument(
        "--out", type=Path, default=Path("loadtests/results/bench_scoring_core.json")
    )
    args = parser.parse_args(argv)

    paper = synthetic_paper(args.items, seed=1)
    table = compile_key(paper)
    sheets = make_sheets(paper, args.sheets)
    plan = VariantPlan(paper)
    tickets = [f"{n:08d}" for n in range(len(sheets))]
    shown = [
        to_display(plan.build(SECRET, SESSION, t, None), sheet)
        for t, sheet in zip(tickets, sheets, strict=True)
    ]
    sample = sheets[: max(1, len(sheets) // 5)]

    def full_path() -> None:
        for ticket, answers in zip(tickets, shown, strict=True):
            table.total(to_canonical(plan.build(SECRET, SESSION, ticket, None), answers))

    def digest_path() -> None:
        for ticket, answers in zip(tickets, sheets, strict=True):
            plan.digest(SECRET, SESSION, ticket, None)
            table.total(answers)

    figures = {
        "key_table_total": rate(
            lambda: [table.total(s) for s in sheets], len(sheets), args.seconds
        ),
        "key_table_score": rate(
            lambda: [table.score(s) for s in sheets], len(sheets), args.seconds
        ),
        "score_paper": rate(
            lambda: [score_paper(paper, s) for s in sample], len(sample), args.seconds
        ),
        "variant_build_canonical_total": rate(full_path, len(sheets), args.seconds),
        "variant_digest_check_total": rate(digest_path, len(sheets), args.seconds),
    }
    results = {
        "items_per_paper": args.items,
        "target_per_minute": TARGET_PER_MINUTE,
        "figures": figures,
        "measured_at": datetime.now(UTC).isoformat(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"{'path':32} {'papers/min (CPU)':>17} {'papers/min (wall)':>18} {'us/paper':>9}")
    for name, f in figures.items():
        print(
            f"{name:32} {f['per_minute_cpu']:>17,} {f['per_minute_wall']:>18,} "
            f"{f['us_per_paper_cpu']:>9}"
        )
    ok = figures["key_table_total"]["per_minute_cpu"] >= TARGET_PER_MINUTE
    print(f"target {TARGET_PER_MINUTE:,}/min for KeyTable.total: " + ("met" if ok else "MISSED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
