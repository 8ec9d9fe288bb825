"""Arguments of `cbt demo` (handler: server.commands.demo).

cbt demo [--dir DIR] [--start-in MINUTES] [--auto-unlock] [--host HOST]
         [--venue-port PORT] [--central-port PORT] [--exit-after SECONDS]

Standard library only, so that `cbt --help` imports none of the demo's servers.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from paperpack.cli import Handler

DEFAULT_DIR = Path(tempfile.gettempdir()) / "cbt-demo"


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add `cbt demo`."""
    p = sub.add_parser(
        "demo",
        help="run a whole exam here: central + venue servers, sample paper, 30 candidates",
        description="Create (or rebuild) a demo workspace in DIR: an authority, the sample "
        "paper packed for one venue, a session starting in --start-in minutes, 30 invented "
        "candidates seated in two rooms, four venue staff accounts and a central operator "
        "account with printed passwords. Then serve "
        "the central and the venue server on HOST and print the URLs, the share cards and the "
        "release code (or, with --auto-unlock, perform the unlock ceremony through the venue "
        "API). Ctrl-C stops both servers. Demo-only rules: the unlock window is open at once, "
        "entry stays open 60 minutes, and submission is allowed from the start.",
    )
    p.add_argument(
        "--dir",
        type=Path,
        default=DEFAULT_DIR,
        help=f"the demo directory, emptied if it holds an earlier demo (default {DEFAULT_DIR})",
    )
    p.add_argument(
        "--start-in",
        type=float,
        default=10.0,
        metavar="MINUTES",
        help="minutes from now until the exam starts (default 10; 0 = now)",
    )
    p.add_argument(
        "--auto-unlock",
        action="store_true",
        help="perform the unlock ceremony (2 supervisors' shares + online release)",
    )
    p.add_argument("--host", default="127.0.0.1", help="address both servers listen on")
    p.add_argument("--venue-port", type=int, default=8080, help="venue server port (8080)")
    p.add_argument("--central-port", type=int, default=8090, help="central server port (8090)")
    p.add_argument(
        "--exit-after",
        type=float,
        default=None,
        metavar="SECONDS",
        help="stop by itself after this many seconds (for tests and scripts)",
    )
    p.set_defaults(func=Handler("server.commands.demo:run_demo"))
