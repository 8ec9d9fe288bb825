"""Arguments of `paperpack authority init`, `pack`, `inspect`, `verify`, `release` and
`approve-delay` (handlers: paperpack.commands.sealing).

Standard library only, so that `paperpack --help` imports no cryptography.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from paperpack.cli import Handler

HANDLERS = "paperpack.commands.sealing"

# A copy of paperpack.approval.DEFAULT_VALIDITY in hours, for the default: that module imports
# cryptography. tests/test_cli_front_door.py keeps the copy equal to the original.
DELAY_APPROVAL_VALID_HOURS = 12.0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add this area's subcommands to `sub`."""
    authority = sub.add_parser("authority", help="the centre's signing and upload keys")
    authority_sub = authority.add_subparsers(dest="authority_command", metavar="ACTION")
    authority_sub.required = True
    init = authority_sub.add_parser("init", help="create the authority key pairs in DIR")
    init.add_argument("directory", metavar="DIR", type=Path)
    init.add_argument(
        "--passphrase-file", type=Path, help="encrypt the private keys with this passphrase"
    )
    init.set_defaults(func=Handler(f"{HANDLERS}:cmd_authority_init"))

    pack = sub.add_parser("pack", help="seal a paper for every venue of a session")
    pack.add_argument("paper", metavar="PAPER", type=Path)
    pack.add_argument("--session", required=True, type=Path, help="the session YAML file")
    pack.add_argument("--authority", required=True, type=Path, help="the authority directory")
    pack.add_argument("--out", required=True, type=Path, help="where the venue packages go")
    pack.add_argument("--passphrase-file", type=Path, help="the authority keys' passphrase")
    pack.add_argument("--chunk-size", type=int, default=1 << 20, help="AEAD chunk size in bytes")
    pack.add_argument(
        "--practice",
        action="store_true",
        help="sign the packages as practice packages: the venue's dry run (art. 21(3))",
    )
    pack.set_defaults(func=Handler(f"{HANDLERS}:cmd_pack"))

    inspect = sub.add_parser("inspect", help="show what a package holds (no signature check)")
    inspect.add_argument("package", metavar="PACKAGE_DIR", type=Path)
    inspect.set_defaults(func=Handler(f"{HANDLERS}:cmd_inspect"))

    verify = sub.add_parser("verify", help="check every signature and hash of a package")
    verify.add_argument("package", metavar="PACKAGE_DIR", type=Path)
    verify.add_argument(
        "--authority-pub", required=True, type=Path, help="signing.pub of the authority"
    )
    verify.add_argument("--venue", help="refuse a package for another venue")
    verify.add_argument("--session", help="refuse a package for another session")
    verify.add_argument(
        "--highest-seen-version", type=int, default=0, help="refuse older manifests"
    )
    verify.set_defaults(func=Handler(f"{HANDLERS}:cmd_verify"))

    release = sub.add_parser("release", help="the time release of one venue: code and record")
    release.add_argument("session_id", metavar="SESSION_ID")
    release.add_argument("venue_id", metavar="VENUE_ID")
    release.add_argument("--authority", required=True, type=Path, help="the authority directory")
    release.add_argument("--passphrase-file", type=Path, help="the authority keys' passphrase")
    release.add_argument("--out", type=Path, help="directory for the signed release record")
    release.add_argument(
        "--force",
        action="store_true",
        help="issue outside the signed unlock window (needs --reason; logged as forced)",
    )
    release.add_argument("--reason", help="why a forced release is issued (written to the log)")
    release.set_defaults(func=Handler(f"{HANDLERS}:cmd_release"))
    release_log = sub.add_parser(
        "release-log", help="every release issued: print the log and verify its chain"
    )
    release_log.add_argument(
        "--authority", required=True, type=Path, help="the authority directory"
    )
    release_log.set_defaults(func=Handler(f"{HANDLERS}:cmd_release_log"))

    approve = sub.add_parser(
        "approve-delay",
        help="the centre's signed approval of time changes over 30 minutes (start delay,"
        " pauses, room-wide grants: --minutes is the most they may come to)",
    )
    approve.add_argument("session_id", metavar="SESSION_ID")
    approve.add_argument("venue_id", metavar="VENUE_ID")
    approve.add_argument("--minutes", required=True, type=int, help="the approved delay")
    approve.add_argument(
        "--valid-hours",
        type=float,
        default=DELAY_APPROVAL_VALID_HOURS,
        help="hours until the approval expires (default 12, at most 168)",
    )
    approve.add_argument("--authority", required=True, type=Path, help="the authority directory")
    approve.add_argument("--passphrase-file", type=Path, help="the authority keys' passphrase")
    approve.set_defaults(func=Handler(f"{HANDLERS}:cmd_approve_delay"))
