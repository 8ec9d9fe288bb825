"""`cbt venue export` and `cbt venue upload`: the answers' way home (art. 35(1)).

    cbt venue export DIR [--session ID] [--out FILE] [--central-key UPLOAD_PUB]
                         [--partial --reason "why"]   # while attempts are still open
    cbt venue upload DIR --central URL [--central-pub SIGNING_PUB]

`export` seals a session into DIR/outbox/ (and copies it to --out); `upload` sends every
package in the outbox that has no verified receipt, with a progress bar on a terminal. The
arguments are declared in server.commands.venue_args.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys

from paperpack import crypto
from server.errors import CbtError
from server.venue.export import AUTHORITY_SIGN_FILE, export_session
from server.venue.upload import Progress, drain_outbox, pending


def run_export(args: argparse.Namespace) -> int:
    if args.partial != (args.reason is not None):
        raise CbtError('--partial and --reason "why" go together (a partial export says why)')
    if args.partial and not args.reason.strip():
        raise CbtError("--reason must say why the export cannot wait for the session to end")
    result = export_session(
        args.dir,
        args.session,
        central_key=args.central_key,
        actor="cli",
        partial_reason=args.reason if args.partial else None,
    )
    if args.out is not None:
        try:
            shutil.copyfile(result.path, args.out)
        except OSError as exc:
            # The sealed package is already safe in the outbox; only the extra copy failed.
            raise CbtError(
                f"exported session {result.session_id} to {result.path}, but cannot copy it to "
                f"{args.out}: {exc.strerror}; create the folder or pick another --out, or copy "
                "the file from the outbox"
            ) from None
    print(
        f"exported session {result.session_id}: {result.attempts} attempts, export "
        f"{result.export_seq}, sha256 {result.package_sha256} -> {args.out or result.path}"
    )
    if args.partial:
        print("partial export: the centre will not take it as the session's end; export again")
    return 0


def _central_public(args: argparse.Namespace) -> crypto.Ed25519PublicKey:
    path = args.central_pub or args.dir / "keys" / AUTHORITY_SIGN_FILE
    if path.is_dir():
        path = path / "signing.pub"
    try:
        return crypto.read_signing_public(path.read_text(encoding="ascii"), "centre signing")
    except OSError:
        raise CbtError(
            f"cannot read the centre's signing key {path}: pass --central-pub FILE"
        ) from None


def _progress_bar(total_files: int) -> tuple[Progress | None, object | None]:
    if not sys.stderr.isatty():
        return None, None
    from rich.progress import Progress as RichProgress

    bar = RichProgress(transient=True)
    task = bar.add_task("uploading", total=None)

    def update(done: int, total: int) -> None:
        bar.update(task, completed=done, total=total)

    bar.start()
    return update, bar


def run_upload(args: argparse.Namespace) -> int:
    public = _central_public(args)
    waiting = pending(args.dir)
    if not waiting:
        print("nothing to upload: every package in the outbox has a verified receipt")
        return 0
    progress, bar = _progress_bar(len(waiting))
    try:
        results = asyncio.run(drain_outbox(args.dir, args.central, public, progress=progress))
    finally:
        if bar is not None:
            bar.stop()  # type: ignore[attr-defined]
    for result in results:
        fields = result.fields
        print(
            f"delivered {result.package_sha256}: log position {fields['log_position']}, "
            f"root {fields['log_root'][:16]}, received {fields['received_at']}"
        )
    return 0
