"""Arguments of `paperpack prove` (handler: paperpack.commands.prove).

Standard library only, so that `paperpack --help` imports none of the proof's code.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from paperpack.cli import Handler


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add `prove` to `sub`."""
    parser = sub.add_parser(
        "prove",
        help="prove every candidate's variant scores correctly under the key",
        description=(
            "Build every candidate's variant, answer it with the key in display order, map "
            "it back and score it (every candidate must get full marks), check planted wrong "
            "answers score as the rules say, and print a digest of all variants."
        ),
    )
    parser.add_argument("paper", type=Path, metavar="PAPER", help="paper (YAML/JSON or QTI)")
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument("--candidates", type=_positive, metavar="N", help="N made-up tickets")
    who.add_argument(
        "--roster", type=Path, metavar="FILE", help="CSV with a header row and a 'ticket' column"
    )
    parser.add_argument(
        "--session-id", default="prove", metavar="ID", help="session id (default: prove)"
    )
    parser.add_argument(
        "--secret-hex",
        metavar="HEX",
        help="the variant secret in hex (default: random, so the digest differs every run)",
    )
    parser.set_defaults(func=Handler("paperpack.commands.prove:run_prove"))


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("give at least 1 candidate")
    return value
