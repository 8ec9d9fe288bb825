"""`paperpack validate` and `paperpack convert`: checking a paper and writing it natively.

`validate PAPER` prints a summary and exits 0, or prints every problem (one per line, to
stderr) and a last line with the count, and exits 1. `convert QTI --out PAPER.yaml` imports
QTI (or any paper load_paper reads) and writes the native format, then reads the result
back to prove it loads. The arguments are declared in paperpack.commands.papers_args.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from paperpack.errors import PaperInvalid
from paperpack.model import ITEM_TYPES, Paper
from paperpack.paperfile import dump_paper, load_paper_with_warnings


def run_validate(args: argparse.Namespace) -> int:
    """Handler of `paperpack validate`."""
    paper = _load_or_report(args.paper)
    if paper is None:
        return 1
    print(f"OK: {args.paper} is a valid paper")
    print(summary(paper))
    return 0


def run_convert(args: argparse.Namespace) -> int:
    """Handler of `paperpack convert`."""
    metadata: dict[str, Any] = {
        "paper_id": args.paper_id,
        "subject_code": args.subject_code,
        "subject_name": args.subject_name,
        "title": args.title,
        "language": args.language,
        "duration_minutes": args.duration,
    }
    paper = _load_or_report(args.source, **metadata)
    if paper is None:
        return 1
    out: Path = args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    dump_paper(paper, out)
    if _load_or_report(out) is None:
        return 1
    print(f"wrote {out}: {len(paper.items())} items, {paper.total_points:g} points")
    return 0


def _load_or_report(path: Path, **metadata: Any) -> Paper | None:
    """Load a paper, or print every problem and a count to stderr and return None.

    Warnings of a lossy import (QTI scoring our rules cannot express) go to stderr too: the
    paper is valid, but the operator must know what changed."""
    try:
        paper, warnings = load_paper_with_warnings(path, **metadata)
        for line in warnings:
            print(f"warning: {line}", file=sys.stderr)
        return paper
    except PaperInvalid as exc:
        for line in exc.problems:
            print(line, file=sys.stderr)
        count = len(exc.problems)
        print(f"{count} problem{'s' if count != 1 else ''} in {path}", file=sys.stderr)
        return None


def summary(paper: Paper) -> str:
    """A short human summary: id, subject, title, items by type, points, duration."""
    counts = Counter(item.type for item in paper.items())
    by_type = ", ".join(f"{t} {counts[t]}" for t in ITEM_TYPES if counts[t])
    lines = [
        f"paper     {paper.paper_id}  ({paper.subject_code} {paper.subject_name})",
        f"title     {paper.title}",
        f"language  {paper.language}   kind {paper.kind}   duration {paper.duration_minutes} min"
        + (f"   forms {', '.join(paper.forms)}" if paper.forms else ""),
        f"sections  {len(paper.sections)}",
        f"items     {len(paper.items())}: {by_type}",
        f"points    total {paper.total_points:g}"
        + (f", pass mark {paper.pass_mark:g}" if paper.pass_mark is not None else ""),
    ]
    if paper.assets:
        sizes = ", ".join(f"{a.name} {a.media_type} {len(a.data)} B" for a in paper.assets)
        lines.append(f"assets    {len(paper.assets)}: {sizes}")
    return "\n".join(lines)
