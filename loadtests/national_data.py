"""The national simulation's data: one session packed for N venues and each venue's signed,
encrypted response package, made by the real producers and cached on disk between runs.

- the session: a synthetic 100-item paper (`paperpack.synthetic`) packed for every venue by
  `paperpack.pack.pack_venue` with one authority (the centre's keys, answer keys and variant
  secrets under `authority/sessions/<session>/<venue>/`, as `paperpack pack` leaves them);
- per venue: a signing key, and `candidates` attempts as a venue exports them (canonical
  answers, two in three right; the variant digest recomputed from that venue's variant secret;
  a hash-chained journal of `saves` one-answer saves; the submission receipt), split into
  contents and evidence (`server.venue.export.split_evidence`) and sealed by
  `server.protocol.response_package.build_response_package`.

The cache (`--cache`, outside the repository) is keyed by the shape (candidates, items,
saves); venues are added to it as a larger N asks for them, on `workers` processes.
"""

from __future__ import annotations

import json
import os
import random
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from paperpack import crypto
from paperpack.authority import init_authority, load_authority
from paperpack.canonical import canonical_hash, canonical_json
from paperpack.model import CHOICE_TYPES, Paper
from paperpack.pack import pack_venue
from paperpack.session import Session, session_from_dict
from paperpack.synthetic import synthetic_paper
from paperpack.variants import VariantPlan, paused_gc
from server.clock import iso
from server.protocol import response_package
from server.protocol.journal_chain import GENESIS, link_hash
from server.scoring.material import open_material
from server.venue.export import split_evidence

START = datetime(2026, 6, 13, 1, 0, tzinfo=UTC)
SESSION_ID = "NATIONAL"
MAX_VENUES = 2000


def venue_id(n: int) -> str:
    return f"V{n:05d}"


def ticket(n: int, k: int) -> str:
    """Nationally unique: the venue's number, then the seat's."""
    return f"{n:05d}{k:04d}"


class Shape:
    def __init__(self, candidates: int, items: int, saves: int) -> None:
        self.candidates, self.items, self.saves = candidates, items, saves

    @property
    def key(self) -> str:
        return f"c{self.candidates}-i{self.items}-s{self.saves}"


def _paper(items: int) -> Paper:
    return synthetic_paper(items, seed=7)


def _session(root: Path, paper: Paper) -> Session:
    venues = json.loads((root / "venues.json").read_text())
    return session_from_dict(
        {"session_id": SESSION_ID, "subject": {"code": paper.subject_code, "name": "national"},
         "start": START.isoformat(), "duration_minutes": paper.duration_minutes,
         "venues": [{"id": v["venue_id"], "name": v["venue_id"], "supervisors": 3,
                     "threshold": 2, "public_key": v["device_public"]} for v in venues]}
    )  # fmt: skip


def prepare(cache: Path, shape: Shape) -> Path:
    """The cache folder for `shape`, with its authority and every venue's keys made once."""
    root = cache / shape.key
    if (root / "venues.json").is_file():
        return root
    root.mkdir(parents=True, exist_ok=True)
    init_authority(root / "authority")
    venues = []
    for n in range(1, MAX_VENUES + 1):
        signing = crypto.generate_signing_key()
        device = crypto.generate_wrapping_key()
        venues.append({
            "venue_id": venue_id(n),
            "signing_private": _raw_private(signing),
            "signing_public": crypto.public_key_text(signing.public_key()),
            "device_public": crypto.public_key_text(device.public_key()),
            "wrap_public": crypto.public_key_text(crypto.generate_wrapping_key().public_key()),
        })  # fmt: skip
    (root / "venues.json").write_text(json.dumps(venues))
    (root / "packages").mkdir()
    return root


def _raw_private(key: crypto.Ed25519PrivateKey) -> str:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    ).hex()


def signing_key(record: dict[str, Any]) -> crypto.Ed25519PrivateKey:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return Ed25519PrivateKey.from_private_bytes(bytes.fromhex(record["signing_private"]))


def venues(root: Path, n: int) -> list[dict[str, Any]]:
    return list(json.loads((root / "venues.json").read_text()))[:n]


def package_path(root: Path, vid: str) -> Path:
    return root / "packages" / f"{vid}.pkg"


def _answers(paper: Paper, rng: random.Random) -> dict[str, Any]:
    """Canonical answers as the venue exports them (JSON lists), right about two in three."""
    out: dict[str, Any] = {}
    for item in paper.items():
        if rng.random() < 0.03:
            continue
        if item.type in CHOICE_TYPES:
            ids = [o.option_id for o in item.options]
            out[item.item_id] = list(item.key) if rng.random() < 0.66 else [rng.choice(ids)]
        elif item.type == "fill_blank":
            out[item.item_id] = [b.accepted[0] if rng.random() < 0.66 else "x" for b in item.blanks]
        else:
            out[item.item_id] = "答案" * rng.randint(5, 50)
    return out


def _journal(attempt_id: str, answers: dict[str, Any], saves: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    previous, items = GENESIS, list(answers.items())
    for seq in range(1, saves + 1):
        item_id, answer = items[(seq - 1) % len(items)]
        responses = {item_id: answer}
        at = iso(START + timedelta(seconds=seq * 30))
        digest = link_hash(attempt_id, seq, seq, at, canonical_json(responses).decode(), previous)
        out.append({"seq": seq, "position": seq, "saved_at": at, "responses": responses,
                    "prev_hash": previous, "hash": digest})  # fmt: skip
        previous = digest
    return out


_STATE: dict[str, Any] = {}


def _worker_init(root: str, shape: tuple[int, int, int]) -> None:
    path = Path(root)
    paper = _paper(shape[1])
    _STATE.update(root=path, shape=Shape(*shape), paper=paper, plan=VariantPlan(paper),
                  authority=load_authority(path / "authority"), session=_session(path, paper),
                  venues={v["venue_id"]: v for v in venues(path, MAX_VENUES)})  # fmt: skip


def _make_venue(n: int) -> int:
    """Pack the paper for venue n and seal its response package; returns the package's size."""
    root: Path = _STATE["root"]
    shape: Shape = _STATE["shape"]
    paper: Paper = _STATE["paper"]
    plan: VariantPlan = _STATE["plan"]
    authority = _STATE["authority"]
    session: Session = _STATE["session"]
    vid = venue_id(n)
    record = _STATE["venues"][vid]
    out = root / "pack-out" / vid
    venue = next(v for v in session.venues if v.venue_id == vid)
    pack_venue(paper, session, venue, authority, out, now=START - timedelta(days=2))
    secret = open_material(authority, SESSION_ID, vid).variant_secret
    rng = random.Random(n)
    attempts = []
    with paused_gc():
        for k in range(shape.candidates):
            t, attempt_id = ticket(n, k), f"{vid}-a{k}"
            answers = _answers(paper, rng)
            digest = plan.digest(secret, SESSION_ID, t)
            attempts.append(
                {"ticket": t, "status": "submitted", "answers_form": "canonical",
                 "attempt_id": attempt_id, "journal": _journal(attempt_id, answers, shape.saves),
                 "variant": {"ticket": t, "digest": digest, "form": None},
                 "final_answers": answers,
                 "submission": {"receipt": canonical_hash(answers), "final_seq": shape.saves,
                                "submitted_at": iso(START + timedelta(minutes=100)),
                                "how": "candidate"}}
            )  # fmt: skip
    collected = {"session": {"session_id": SESSION_ID, "ended_at": iso(START + timedelta(hours=2))},
                 "attempts": attempts, "seating": [], "absences": [], "violations": [],
                 "audit": []}  # fmt: skip
    contents, evidence = split_evidence(collected)
    data = response_package.build_response_package(
        contents, evidence=evidence, session_id=SESSION_ID, venue_id=vid, export_seq=1,
        created_at=iso(START + timedelta(hours=2, minutes=5)), venue_key=signing_key(record),
        central_wrap_public=authority.wrapping_public,
    )  # fmt: skip
    # The fragments are the venue's download, not the centre's: only the central material stays.
    for path in sorted(out.rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    out.rmdir()
    target = package_path(root, vid)
    tmp = target.with_suffix(".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, target)
    return len(data)


def ensure(cache: Path, shape: Shape, n: int, workers: int = 2, log: Any = print) -> Path:
    """Make the first `n` venues' packages that the cache does not hold yet; returns the root."""
    root = prepare(cache, shape)
    missing = [k for k in range(1, n + 1) if not package_path(root, venue_id(k)).is_file()]
    if not missing:
        return root
    log(f"generating {len(missing)} venue package(s) in {root} on {workers} process(es)")
    began, made = time.perf_counter(), 0
    with ProcessPoolExecutor(
        workers, initializer=_worker_init, initargs=(str(root), (shape.candidates, shape.items,
                                                                 shape.saves))
    ) as pool:  # fmt: skip
        for size in pool.map(_make_venue, missing, chunksize=4):
            made += 1
            if made % 100 == 0 or made == len(missing):
                log(f"  {made}/{len(missing)} ({size:,} bytes each, "
                    f"{time.perf_counter() - began:.0f} s)")  # fmt: skip
    return root
