"""Arguments of `paperpack validate` and `paperpack convert` (handlers: paperpack.commands.papers).

Standard library only, so that `paperpack --help` imports no YAML, JSON Schema or QTI code.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from paperpack.cli import Handler

HANDLERS = "paperpack.commands.papers"


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add this area's subcommands to `sub`."""
    validate = sub.add_parser(
        "validate",
        help="check a paper (YAML/JSON or QTI) and list every problem",
        description="Check a paper and print a summary, or every problem with its item and field.",
    )
    validate.add_argument(
        "paper", type=Path, metavar="PAPER", help=".yaml/.yml/.json, or QTI .xml/.zip/folder"
    )
    validate.set_defaults(func=Handler(f"{HANDLERS}:run_validate"))

    convert = sub.add_parser(
        "convert",
        help="convert QTI (or any readable paper) to the native YAML format",
        description="Import a paper (QTI .xml, .zip or folder, or YAML/JSON); write native YAML.",
    )
    convert.add_argument(
        "source", type=Path, metavar="QTI", help="QTI .xml/.zip/folder, or a paper"
    )
    convert.add_argument(
        "--out", type=Path, required=True, metavar="PAPER.yaml", help="where to write"
    )
    convert.add_argument("--paper-id", help="the paper's id")
    convert.add_argument("--subject-code", help="subject code in the exam catalogue")
    convert.add_argument("--subject-name", help="subject name")
    convert.add_argument("--title", help="paper title shown to candidates")
    convert.add_argument("--language", help="BCP 47 tag, e.g. zh-CN or en")
    convert.add_argument("--duration", type=int, metavar="MINUTES", help="working time in minutes")
    convert.set_defaults(func=Handler(f"{HANDLERS}:run_convert"))
