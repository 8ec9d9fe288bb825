"""`cbt demo`: build a demo workspace and run the central and venue servers on localhost.

The arguments are declared in server.commands.demo_args.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from server.demo.run import Addresses, serve_demo
from server.demo.workspace import build_demo
from server.errors import CbtError


def run_demo(args: argparse.Namespace) -> int:
    if args.start_in < 0 or args.start_in > 24 * 60:
        raise CbtError("--start-in must be from 0 to 1440 minutes")
    if args.exit_after is not None and args.exit_after <= 0:
        raise CbtError("--exit-after must be a positive number of seconds")
    print(f"building the demo in {args.dir} ...", flush=True)
    workspace = build_demo(args.dir, args.start_in)
    where = Addresses(args.host, args.venue_port, args.central_port)
    asyncio.run(serve_demo(workspace, where, auto=args.auto_unlock, exit_after_s=args.exit_after,
                           out=sys.stdout))  # fmt: skip
    return 0
