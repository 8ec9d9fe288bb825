"""The `paperpack` command line, and the CLI runner that `cbt` shares.

Each area's arguments are declared in a light module (`paperpack.commands.*_args`) that
exposes `register(subparsers)` and imports only the standard library, so that building the
parser, and so `--help`, costs almost nothing. Each command names its handler as a `Handler`
("module:function"), imported only when that command runs. Handlers take the parsed args and
return an exit code.
Errors: the project's own exceptions become one line on stderr, `PROG: error: ...`, exit 1;
usage errors exit 2 (argparse); `--debug` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from paperpack.errors import PaperpackError

PAPERPACK_COMMANDS = (
    "paperpack.commands.papers_args",  # validate, convert
    "paperpack.commands.prove_args",  # prove
    "paperpack.commands.sealing_args",  # authority init, pack, inspect, verify, release
)


@dataclass(frozen=True)
class Handler:
    """A command's handler as "module:function", imported when the command runs.

    The module holding a handler imports what the command needs (aiohttp, cryptography, ...);
    naming it instead of importing it keeps those imports out of every other command."""

    target: str

    def resolve(self) -> Callable[[argparse.Namespace], int | None]:
        """The handler function itself (imports its module)."""
        module, _, name = self.target.partition(":")
        function: Callable[[argparse.Namespace], int | None] = getattr(
            importlib.import_module(module), name
        )
        return function

    def __call__(self, args: argparse.Namespace) -> int | None:
        return self.resolve()(args)


def build_parser(prog: str, description: str, modules: Sequence[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in modules:
        importlib.import_module(name).register(sub)
    return parser


def run(
    prog: str,
    description: str,
    modules: Sequence[str],
    argv: Sequence[str] | None,
    errors: tuple[type[BaseException], ...] = (PaperpackError,),
) -> int:
    """Parse `argv`, run the chosen handler, and turn the project's errors into one line."""
    parser = build_parser(prog, description, modules)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING)
    try:
        return int(args.func(args) or 0)
    except errors as exc:
        if args.debug:
            raise
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130


def main(argv: Sequence[str] | None = None) -> int:
    return run(
        "paperpack",
        "Author, validate, prove and seal exam papers (the central operator's tool).",
        PAPERPACK_COMMANDS,
        argv,
    )


if __name__ == "__main__":
    sys.exit(main())
