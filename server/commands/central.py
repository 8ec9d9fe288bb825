"""`cbt central` handlers: init, venues add/list, staff add/list/disable, serve, results,
delete (scoring's are in server.scoring.cli; all the arguments are declared in
server.commands.central_args).

cbt central init DIR --authority AUTHDIR
cbt central venues add DIR --venue-id ID --public-key FILE [--wrap-key FILE] [--name NAME]
cbt central venues list DIR
cbt central staff add DIR --login L --role operator|auditor --name NAME [--password-file F]
cbt central staff list DIR
cbt central staff disable DIR --login L --reason TEXT
cbt central serve DIR [--database PATH_OR_URL] [--host H] [--port P]
"""

from __future__ import annotations

import argparse
import asyncio
import json
from datetime import UTC, datetime
from typing import Any

from paperpack import crypto
from server.central.settings import (
    CentralConfigError,
    init_central,
    read_central,
    settings_from_env,
)
from server.central.storage import VenueRecord
from server.clock import iso
from server.commands.common import cli_actor, read_password
from server.staffauth import StaffError, check_login_name, hash_password


def cmd_init(args: argparse.Namespace) -> int:
    config = init_central(args.dir, args.authority)
    print(f"central directory {args.dir} ready for authority {config['authority']}")
    print(f"authority signing key (receipts): {config['signing_public']}")
    print(f"authority upload key (packages):  {config['wrap_public']}")
    return 0


def _read_keys(args: argparse.Namespace) -> tuple[str, str, str]:
    """(name, Ed25519 public, X25519 public) from venue.json or key files, each checked."""
    try:
        text = args.public_key.read_text(encoding="utf-8")
    except OSError as exc:
        raise CentralConfigError(f"cannot read {args.public_key}: {exc.strerror}") from None
    name, sign_text, wrap_text = args.name, text, ""
    if text.lstrip().startswith("{"):
        raw = json.loads(text)
        if raw.get("venue_id", args.venue_id) != args.venue_id:
            raise CentralConfigError(
                f"{args.public_key} is venue {raw['venue_id']}, not {args.venue_id}"
            )
        name = name or raw.get("name", "")
        sign_text, wrap_text = raw.get("sign_public", ""), raw.get("wrap_public", "")
    if args.wrap_key is not None:
        wrap_text = args.wrap_key.read_text(encoding="ascii")
    if not wrap_text:
        raise CentralConfigError(
            "the venue's X25519 key is missing: pass venue.json or --wrap-key FILE"
        )
    signing = crypto.public_key_text(crypto.read_signing_public(sign_text, "venue signing"))
    wrapping = crypto.public_key_text(crypto.read_wrapping_public(wrap_text, "venue X25519"))
    return name or args.venue_id, signing, wrapping


async def _with_storage(
    args: argparse.Namespace, action: str, venue: VenueRecord | None
) -> list[VenueRecord]:
    from server.central.app import open_storage

    read_central(args.dir)
    settings = settings_from_env(args.dir, database=args.database)
    storage = open_storage(settings.database_url())
    await storage.open()
    try:
        if venue is not None:
            await storage.add_venue(venue)
            details = {"name": venue.name, "signing_public": venue.signing_public}
            await storage.audit(
                "cli", action, f"venue:{venue.venue_id}", details, venue.registered_at
            )
        return await storage.list_venues()
    finally:
        await storage.close()


def cmd_venues_add(args: argparse.Namespace) -> int:
    name, signing, wrapping = _read_keys(args)
    record = VenueRecord(args.venue_id, name, signing, wrapping, iso(datetime.now(UTC)))
    asyncio.run(_with_storage(args, "venue.registered", record))
    print(f"venue {args.venue_id} registered")
    return 0


def cmd_venues_list(args: argparse.Namespace) -> int:
    for venue in asyncio.run(_with_storage(args, "", None)):
        print(f"{venue.venue_id}\t{venue.name}\t{venue.signing_public}\t{venue.registered_at}")
    return 0


async def _on_storage(args: argparse.Namespace, action: Any) -> Any:
    from server.central.app import open_storage

    read_central(args.dir)
    storage = open_storage(settings_from_env(args.dir, database=args.database).database_url())
    await storage.open()
    try:
        return await action(storage)
    finally:
        await storage.close()


def cmd_results(args: argparse.Namespace) -> int:
    moment = datetime.now(UTC)
    if args.published_at:
        moment = datetime.fromisoformat(args.published_at)
        if moment.tzinfo is None:
            raise CentralConfigError(
                "--published-at needs a time zone, e.g. 2026-12-01T09:00:00+08:00"
            )

    async def record(storage: Any) -> None:
        await storage.set_results_published(args.session, iso(moment))
        details = {"results_at": iso(moment)}
        await storage.audit(
            "cli", "results.published", f"session:{args.session}", details, iso(datetime.now(UTC))
        )

    asyncio.run(_on_storage(args, record))
    print(f"session {args.session}: results published {iso(moment)}; retention runs from then")
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    now = datetime.now(UTC)

    async def delete(storage: Any) -> None:
        await storage.delete_package(args.package, now)
        await storage.audit("cli", "package.deleted", args.package, {}, iso(now))

    asyncio.run(_on_storage(args, delete))
    print(f"package {args.package[:16]}: bytes deleted; its log entry and receipt remain")
    return 0


def cmd_staff_add(args: argparse.Namespace) -> int:
    check_login_name(args.login)
    if not args.name.strip():
        raise StaffError("the staff member's name is empty: pass --name")
    read_central(args.dir)
    password_hash = hash_password(read_password(args.password_file))
    now = iso(datetime.now(UTC))

    async def add(storage: Any) -> None:
        await storage.add_staff(
            args.login, args.name.strip(), args.role, password_hash, cli_actor(), now
        )

    asyncio.run(_on_storage(args, add))
    print(f"central staff account {args.login} ({args.role}) added")
    return 0


def cmd_staff_disable(args: argparse.Namespace) -> int:
    if not args.reason.strip():
        raise StaffError("disabling an account needs a reason: pass --reason")

    async def disable(storage: Any) -> None:
        now = iso(datetime.now(UTC))
        await storage.disable_staff(args.login, args.reason.strip(), cli_actor(), now)

    asyncio.run(_on_storage(args, disable))
    print(f"central staff account {args.login} disabled; its sessions have ended")
    return 0


def cmd_staff_list(args: argparse.Namespace) -> int:
    async def listing(storage: Any) -> Any:
        return await storage.list_staff()

    for account in asyncio.run(_on_storage(args, listing)):
        state = "" if account.active else "  (disabled)"
        print(f"{account.login:<20} {account.role:<10} {account.name}{state}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from server import serving
    from server.central.app import create_app

    read_central(args.dir)
    settings = settings_from_env(args.dir, database=args.database, host=args.host, port=args.port)
    print(f"central server on http://{settings.host}:{settings.port}/status", flush=True)
    serving.run(create_app(settings), settings.host, settings.port)
    return 0
