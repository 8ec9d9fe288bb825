"""Builders shared by the sealing tests: a keyed test paper, an authority, a session and
a packed venue, all made at test time (the bad-package kit starts from these).

Answer-key strings in the test paper are distinctive so a test can search package files
and decrypted payloads for them byte by byte.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from paperpack.authority import Authority, init_authority, load_authority
from paperpack.crypto import X25519PrivateKey, generate_wrapping_key, public_key_text
from paperpack.model import Asset, Blank, Item, Option, Paper, Section
from paperpack.pack import VenuePack, pack_session
from paperpack.session import Session, session_from_dict

START = datetime(2026, 11, 7, 1, 0, tzinfo=UTC)
IN_WINDOW = START - timedelta(minutes=10)
ACCEPTED_ANSWERS = ("ZEBRA-ACCEPTED-7731", "quokka accepted 9142")
PASS_MARK = 11.375  # written nowhere else in the paper
KEYED_OPTION = "opt-c-keyed"


def keyed_paper(asset_bytes: bytes = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8) -> Paper:
    """A small paper with every item type, distinctive keys, and one asset."""
    choice = Item(
        "q1",
        "single_choice",
        "<p>Which one?</p>",
        2.0,
        options=(Option("opt-a", "A"), Option("opt-b", "B"), Option(KEYED_OPTION, "C")),
        key=(KEYED_OPTION,),
    )
    multiple = Item(
        "q2",
        "multiple_choice",
        "<p>Which ones?</p>",
        3.0,
        options=(Option("m1", "one"), Option("m2", "two"), Option("m3", "three")),
        key=("m1", "m3"),
        scoring="partial",
        partial_points=1.0,
    )
    truth = Item(
        "q3",
        "true_false",
        "<p>True?</p>",
        1.0,
        options=(Option("true", "T", True), Option("false", "F", True)),
        key=("false",),
    )
    fill = Item(
        "q4",
        "fill_blank",
        "<p>Name it: ___</p>",
        2.0,
        blanks=(Blank("b1", ACCEPTED_ANSWERS),),
    )
    essay = Item("q5", "essay", "<p>Discuss.</p>", 10.0, max_length=2000)
    return Paper(
        paper_id="P-TEST",
        subject_code="27",
        subject_name="Test subject",
        title="Sealing test paper",
        language="en",
        duration_minutes=150,
        sections=(
            Section("s1", "Objective", (choice, multiple, truth, fill)),
            Section("s2", "Essay", (essay,), shuffle=False),
        ),
        pass_mark=PASS_MARK,
        assets=(Asset("chart.png", "image/png", asset_bytes),),
    )


def session_data(venues: list[dict[str, Any]], **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "session_id": "S-2026-27",
        "subject": {"code": "27", "name": "Test subject"},
        "start": START.isoformat(),
        "venues": venues,
    }
    data.update(overrides)
    return data


def venue_data(
    venue_id: str, key: X25519PrivateKey, n: int = 5, k: int = 3, m: int = 5, rebuild: int = 3
) -> dict[str, Any]:
    return {
        "id": venue_id,
        "name": f"Venue {venue_id}",
        "public_key": public_key_text(key.public_key()),
        "supervisors": n,
        "threshold": k,
        "fragments": m,
        "rebuild": rebuild,
    }


@dataclass
class Packed:
    """A packed session with everything a venue and the centre need in tests."""

    root: Path
    authority: Authority
    session: Session
    paper: Paper
    venue_keys: dict[str, X25519PrivateKey]
    packs: dict[str, VenuePack]

    def package(self, venue_id: str = "V1") -> Path:
        return self.packs[venue_id].package_dir

    def card(self, holder: int, venue_id: str = "V1") -> str:
        return (self.packs[venue_id].shares_dir / f"holder-{holder}.txt").read_text(
            encoding="utf-8"
        )


def make_authority(root: Path) -> Authority:
    init_authority(root / "authority")
    return load_authority(root / "authority")


def pack_for(
    root: Path,
    venue_ids: tuple[str, ...] = ("V1", "V2"),
    paper: Paper | None = None,
    authority: Authority | None = None,
    chunk_size: int = 1 << 20,
    practice: bool = False,
    **session_overrides: Any,
) -> Packed:
    """Pack `paper` (default: the keyed test paper) for the venues into `root`."""
    paper = paper or keyed_paper()
    authority = authority or make_authority(root)
    keys = {v: generate_wrapping_key() for v in venue_ids}
    session = session_from_dict(
        session_data([venue_data(v, keys[v]) for v in venue_ids], **session_overrides)
    )
    packs = pack_session(
        paper, session, authority, root / "out", chunk_size=chunk_size, practice=practice
    )
    return Packed(root, authority, session, paper, keys, {p.venue_id: p for p in packs})
