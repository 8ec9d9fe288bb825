"""The `cbt` command line: venue, central, audit and demo commands.

Each area's arguments are declared in a light module `server.commands.*_args` exposing
`register(subparsers)`; handlers are imported when their command runs (see paperpack.cli).
The runner (one-line errors, `--debug`) is shared with paperpack.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from paperpack.cli import run
from paperpack.errors import PaperpackError
from server.errors import CbtError
from server.private import private_umask

CBT_COMMANDS = (
    "server.commands.venue_args",  # cbt venue ...
    "server.commands.central_args",  # cbt central ...
    "server.commands.audit_args",  # cbt audit verify
    "server.commands.demo_args",  # cbt demo
)


def main(argv: Sequence[str] | None = None) -> int:
    private_umask()  # every file a cbt command writes is 0600, every folder 0700 (F10)
    return run(
        "cbt",
        "Run computer-based exams: the venue server, the central server, audits and a demo.",
        CBT_COMMANDS,
        argv,
        errors=(CbtError, PaperpackError),
    )


if __name__ == "__main__":
    sys.exit(main())
