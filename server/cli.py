"""The `cbt` command line: venue, central, audit and demo commands.

Subcommands live in `server.commands.*`, each exposing `register(subparsers)`; the runner
(one-line errors, `--debug`) is shared with paperpack.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from paperpack.cli import run
from paperpack.errors import PaperpackError
from server.errors import CbtError

CBT_COMMANDS = (
    "server.commands.venue",  # cbt venue ...
    "server.commands.central",  # cbt central ...
    "server.commands.audit",  # cbt audit verify
    "server.commands.demo",  # cbt demo
)


def main(argv: Sequence[str] | None = None) -> int:
    return run(
        "cbt",
        "Run computer-based exams: the venue server, the central server, audits and a demo.",
        CBT_COMMANDS,
        argv,
        errors=(CbtError, PaperpackError),
    )


if __name__ == "__main__":
    sys.exit(main())
