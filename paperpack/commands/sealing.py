"""`paperpack` subcommands for sealing: authority init, pack, inspect, verify, release,
approve-delay.

Thin handlers: parse arguments, call one function of paperpack.authority / pack / package /
release, print the result; the arguments are declared in paperpack.commands.sealing_args.
Errors are the library's typed errors, which the CLI runner turns into one line
`paperpack: error: ...` with exit code 1.
"""

from __future__ import annotations

import argparse
import getpass
import json
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from paperpack.approval import (
    MAX_VALIDITY,
    ApprovalError,
    issue_delay_approval,
)
from paperpack.authority import (
    Authority,
    init_authority,
    load_authority,
    read_authority_public,
    read_passphrase,
)
from paperpack.errors import PackageInvalid
from paperpack.fragments import fragment_name
from paperpack.manifest import Manifest
from paperpack.pack import Progress, estimate_plain_size, pack_session
from paperpack.package import check_fragment, open_package, read_manifest_unverified
from paperpack.release import ReleaseError, accountable_release
from paperpack.release_log import log_path, read_log, verify_log
from paperpack.session import load_session


def cmd_authority_init(args: argparse.Namespace) -> int:
    public = init_authority(args.directory, read_passphrase(args.passphrase_file))
    print(f"authority keys created in {args.directory} (private keys mode 0600)")
    print(f"signing public key (pin at every venue): {public['signing_public_key']}")
    print(f"upload public key: {public['upload_public_key']}")
    return 0


@contextmanager
def _progress_bar(total: int) -> Iterator[Progress | None]:
    """A rich progress bar on a terminal; nothing when output is redirected."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    with Progress(
        "[progress.description]{task.description}", BarColumn(), DownloadColumn(),
        TransferSpeedColumn(), transient=True,
    ) as bar:  # fmt: skip
        task = bar.add_task("sealing", total=total)
        yield lambda n: bar.advance(task, n)


def cmd_pack(args: argparse.Namespace) -> int:
    from paperpack.paperfile import load_paper

    session = load_session(args.session)
    paper = load_paper(args.paper)
    authority = load_authority(args.authority, read_passphrase(args.passphrase_file))
    with _progress_bar(estimate_plain_size(paper) * len(session.venues)) as progress:
        packs = pack_session(
            paper,
            session,
            authority,
            args.out,
            chunk_size=args.chunk_size,
            progress=progress,
            practice=args.practice,
        )
    for pack in packs:
        m = pack.manifest
        print(
            f"{pack.venue_id}: {pack.package_dir} ({m.fragments['total']} fragments,"
            f" {m.fragments['needed']} rebuild; {m.payload['plain_size']} bytes ->"
            f" {m.payload['ciphertext_size']} sealed), share cards in {pack.shares_dir}"
            f" ({m.shares['threshold']} of {m.shares['holders']})"
        )
    if args.practice:
        print(f"signed as a PRACTICE package (dry run) for session {session.session_id}")
    print(f"central-only material: {args.authority / 'sessions' / session.session_id}")
    return 0


def _describe(manifest: Manifest) -> list[str]:
    m = manifest
    p = m.payload
    return [
        f"session:   {m.session_id} ({m.subject_code} {m.subject_name}), paper {m.paper_id}",
        f"venue:     {m.venue_id} ({m.venue_name})",
        f"start:     {m.start}, {m.duration_minutes} min, kind {m.kind}",
        f"window:    {m.window['not_before']} .. {m.window['not_after']}",
        f"version:   manifest {m.manifest_version}, format {m.format_version},"
        f" package {m.package_id}",
        f"shares:    {m.shares['threshold']} of {m.shares['holders']} supervisors,"
        f" set {m.shares['set_id']}",
        f"fragments: any {m.fragments['needed']} of {m.fragments['total']} rebuild",
        f"sizes:     plain {p['plain_size']}, zstd {p['compressed_size']},"
        f" sealed {p['ciphertext_size']} in {p['chunks']} chunks of {p['chunk_size']}",
        f"rules:     {json.dumps(m.rules, sort_keys=True)}",
        f"practice:  {'yes (dry run)' if m.practice else 'no (real exam)'};"
        f" inspection checklist: {len(m.inspection)} lines",
    ]


def cmd_inspect(args: argparse.Namespace) -> int:
    manifest = read_manifest_unverified(args.package)
    for line in _describe(manifest):
        print(line)
    bad = 0
    for index, digest in enumerate(manifest.fragments["hashes"]):
        path = args.package / fragment_name(index)
        if not path.exists():
            status = "missing"
        else:
            try:
                check_fragment(manifest, path, index)
                status = "ok"
            except PackageInvalid as exc:
                status, bad = f"BAD: {exc}", bad + 1
        print(f"  {fragment_name(index)}  sha256 {digest}  {status}")
    print("signature not checked here: run `paperpack verify` with the authority's signing.pub")
    return 1 if bad else 0


def cmd_verify(args: argparse.Namespace) -> int:
    opened = open_package(
        args.package,
        read_authority_public(args.authority_pub),
        highest_seen_version=args.highest_seen_version,
        venue_id=args.venue,
        session_id=args.session,
    )
    m = opened.manifest
    missing = ", ".join(fragment_name(i) for i in opened.missing) or "none"
    print(
        f"OK: {args.package} is session {m.session_id} for venue {m.venue_id}, manifest version"
        f" {m.manifest_version}, signed by the pinned authority key; {len(opened.fragments)} of"
        f" {m.fragments['total']} fragments intact ({m.fragments['needed']} needed;"
        f" missing: {missing})"
    )
    return 0


def cmd_release(args: argparse.Namespace) -> int:
    if args.force and not (args.reason or "").strip():
        raise ReleaseError('--force needs --reason "why" (it is written to the release log)')
    if args.reason and not args.force:
        raise ReleaseError("--reason goes with --force (a release inside the window needs none)")
    authority = load_authority(args.authority, read_passphrase(args.passphrase_file))
    release = accountable_release(
        authority,
        args.session_id,
        args.venue_id,
        now=datetime.now(UTC),
        channel="phone",
        who=f"{getpass.getuser()}@{socket.gethostname()} (paperpack release)",
        forced_reason=args.reason.strip() if args.force else None,
    )
    out = args.out or authority.central_dir(args.session_id, args.venue_id)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"release-{args.session_id}-{args.venue_id}.json"
    path.write_text(json.dumps(release.record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(f"release code for {args.session_id} / {args.venue_id} (read it out, in groups):")
    print(f"  {release.code}")
    print(f"signed release record (for the central server): {path}")
    print(f"logged as issuance {_last_seq(authority.directory)} in {log_path(authority.directory)}")
    return 0


def _last_seq(authority_dir: Path) -> int:
    entries = read_log(authority_dir)
    return int(entries[-1]["seq"]) if entries else 0


def cmd_release_log(args: argparse.Namespace) -> int:
    """Print the release log and check its chain and signatures against signing.pub."""
    entries = read_log(args.authority)
    check = verify_log(entries, read_authority_public(args.authority))
    for entry in entries[: check.entries]:
        forced = f" FORCED: {entry['reason']}" if entry.get("forced") else ""
        print(
            f"{entry['seq']:>4}  {entry['at']}  {entry['session_id']}/{entry['venue_id']}"
            f"  {entry['channel']:<6}  {entry['who']}{forced}"
        )
    if not check.intact:
        print(f"BROKEN: {check.problem}", file=sys.stderr)
        return 1
    print(f"OK: {check.entries} issuances, chain and signatures intact")
    return 0


def cmd_approve_delay(args: argparse.Namespace) -> int:
    if not 0 < args.valid_hours <= MAX_VALIDITY / timedelta(hours=1):
        raise ApprovalError("--valid-hours must be more than 0 and at most 168 (7 days)")
    authority = load_authority(args.authority, read_passphrase(args.passphrase_file))
    code = issue_delay_approval(
        authority,
        args.session_id,
        args.venue_id,
        args.minutes,
        valid_for=timedelta(hours=args.valid_hours),
    )
    _record_approval(authority, args.session_id, args.venue_id, args.minutes)
    print(
        f"start-delay approval for {args.session_id} / {args.venue_id}, {args.minutes} min,"
        f" valid {args.valid_hours:g} h (the chief examiner pastes it into the console):"
    )
    print(code)
    return 0


def _record_approval(authority: Authority, session_id: str, venue_id: str, minutes: int) -> None:
    """Keep the approval beside the venue's central material: until the venue reports its
    end, scoring waits for the latest end the approvals allow (server.scoring.material)."""
    path = authority.central_dir(session_id, venue_id) / "delay-approvals.jsonl"
    line = json.dumps({"minutes": minutes, "issued_at": datetime.now(UTC).isoformat()})
    with path.open("a", encoding="utf-8") as log:
        log.write(line + "\n")
