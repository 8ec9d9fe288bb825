"""Benchmark: pack a large paper with media, against the raw pipeline, and unlock a venue.

    python loadtests/bench_pack.py --size-mb 200 [--candidates 3000] [--out FILE.json]

Measures, in one run on the same bytes, interleaved, best of `--repeat` for each:
- pack: `paperpack.pack.pack_venue` (payload streamed, zstd level 3, AES-256-GCM STREAM
  chunks of 1 MiB, zfec 3-of-5 fragments written and hashed) against the raw pipeline
  (zstandard + AESGCM + zfec's low-level encoder on views, called directly on the same
  payload bytes, in memory, nothing written or hashed). The headline is the CPU-time ratio
  raw / pack (threads hide cost in wall time), target >= 0.8; the wall ratio is reported
  beside it. A second baseline, "raw + fragments", also writes the five fragments' blocks to
  files in the same folder and SHA-256 hashes them (the work any packer of this format does
  on top of the primitives), so what the packer adds beyond its format is on its own line;
- peak RSS growth while packing (VmHWM reset before the pack): bounded by the chunk size, not
  the paper size;
- unlock of a venue: `open_package` (manifest signature, every fragment's SHA-256), `Unlock`
  with 3 share cards and the release code, rebuild + decrypt + decompress + decode, against
  a raw baseline on the same fragment files: read and SHA-256 every fragment, zfec-decode the
  stripes from three, AES-GCM decrypt, zstd decompress (hashlib, zfec, AESGCM, zstandard
  called directly). Target: unlock CPU <= 1.3x the raw baseline's. Building every
  candidate's variant (`paperpack.variants.VariantPlan`) is on neither side: it is reported on
  its own line.

This script imports `cryptography`, `zfec` and `zstandard` directly for the raw baselines
only: the point is to measure the library against the primitives it wraps.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import zfec
import zstandard
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from paperpack import shamir
from paperpack.authority import init_authority, load_authority
from paperpack.crypto import generate_wrapping_key, public_key_text
from paperpack.manifest import Manifest, derive_key
from paperpack.model import Asset, Paper
from paperpack.pack import CHUNK_SIZE, iter_payload, pack_venue
from paperpack.package import open_package
from paperpack.release import issue_release
from paperpack.session import session_from_dict
from paperpack.synthetic import synthetic_paper
from paperpack.unlock import Unlock
from paperpack.variants import VariantPlan

START = datetime(2026, 11, 7, 1, 0, tzinfo=UTC)
NOW = START - timedelta(minutes=5)
MIB = 1 << 20
PACK_CPU_TARGET = 0.8  # raw pipeline CPU / pack CPU, same run
UNLOCK_TARGET = 1.3  # unlock CPU / raw baseline CPU (hash, decode, decrypt, decompress)


def rss_kib(field: str) -> int:
    """VmRSS / VmHWM from /proc/self/status, in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux: write 5 to /proc/self/clear_refs)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def media_paper(size_mb: int, n_items: int = 100) -> Paper:
    """A synthetic paper plus `size_mb` MB of incompressible media, in 4 MiB assets."""
    base = synthetic_paper(n_items=n_items, seed=7)
    assets = []
    remaining = size_mb * MIB
    index = 0
    while remaining > 0:
        size = min(4 * MIB, remaining)
        kind = ("audio/mpeg", "mp3") if index % 3 == 2 else ("image/jpeg", "jpg")
        assets.append(Asset(f"media-{index:03d}.{kind[1]}", kind[0], os.urandom(size)))
        remaining -= size
        index += 1
    return Paper(**{**base.__dict__, "assets": tuple(assets)})


def session_for(paper: Paper, venue_key: str) -> object:
    venue = {"id": "V1", "name": "Bench venue", "public_key": venue_key, "supervisors": 5,
             "threshold": 3, "fragments": 5, "rebuild": 3}  # fmt: skip
    return session_from_dict({
        "session_id": "BENCH", "subject": {"code": paper.subject_code, "name": "bench"},
        "start": START.isoformat(), "venues": [venue],
    })  # fmt: skip


def raw_pipeline(
    payload: bytes, chunk: int = CHUNK_SIZE, fragments: Path | None = None
) -> tuple[float, float]:
    """zstd + AES-256-GCM chunks + zfec 3-of-5 on `payload` in memory; (wall, CPU) seconds.
    With `fragments` (a folder), the five blocks of every stripe are also appended to five
    files there and each file SHA-256 hashed, as the fragment format requires."""
    began, cpu = time.perf_counter(), time.process_time()
    compressor = zstandard.ZstdCompressor(level=3).compressobj()
    aead = AESGCM(AESGCM.generate_key(bit_length=256))
    encoder = zfec.Encoder(3, 5)
    pending = bytearray()
    counter = 0
    files = [] if fragments is None else [(fragments / f"raw-{i}").open("wb") for i in range(5)]
    hashes = [hashlib.sha256() for _ in files]

    def seal(piece: bytes, last: bool) -> None:
        nonlocal counter
        nonce = counter.to_bytes(11, "big") + (b"\x01" if last else b"\x00")
        sealed = aead.encrypt(nonce, piece, None)
        size = -(-len(sealed) // 3)
        view = memoryview(sealed)
        tail = bytes(view[2 * size :])
        tail += bytes(size - len(tail))
        blocks = encoder.encode([view[:size], view[size : 2 * size], tail])
        for handle, digest, block in zip(files, hashes, blocks, strict=False):
            handle.write(block)
            digest.update(block)
        counter += 1

    view = memoryview(payload)
    for start in range(0, len(view), chunk):
        pending += compressor.compress(view[start : start + chunk])
        while len(pending) > chunk:
            seal(bytes(pending[:chunk]), False)
            del pending[:chunk]
    pending += compressor.flush()
    while len(pending) > chunk:
        seal(bytes(pending[:chunk]), False)
        del pending[:chunk]
    seal(bytes(pending), True)
    for handle in files:
        handle.close()
    for digest in hashes:
        digest.hexdigest()
    return time.perf_counter() - began, time.process_time() - cpu


def raw_unlock(
    package_dir: Path, manifest: Manifest, header_lengths: dict[int, int], key: bytes
) -> tuple[float, float]:
    """The primitives of an unlock on the package's own fragment files; (wall, CPU) seconds:
    read and SHA-256 every fragment, zfec-decode the stripes from the first three, AES-GCM
    decrypt them (STREAM nonces), zstd-decompress the payload."""
    began, cpu = time.perf_counter(), time.process_time()
    paths = sorted(package_dir.glob("fragment-*.cbtf"))
    for path in paths:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            while block := handle.read(MIB):
                digest.update(block)
        digest.hexdigest()
    lengths = manifest.stripe_lengths()
    decoder = zfec.Decoder(3, 5)
    aead = AESGCM(key)
    decompressor = zstandard.ZstdDecompressor().decompressobj()
    handles = []
    for index, path in enumerate(paths[:3]):
        handle = path.open("rb")
        handle.seek(header_lengths[index])
        handles.append(handle)
    try:
        for stripe, length in enumerate(lengths):
            size = -(-length // 3)
            blocks = decoder.decode([h.read(size) for h in handles], [0, 1, 2])
            sealed = b"".join(blocks)[:length]
            last = stripe == len(lengths) - 1
            nonce = stripe.to_bytes(11, "big") + (b"\x01" if last else b"\x00")
            decompressor.decompress(aead.decrypt(nonce, sealed, None))
    finally:
        for handle in handles:
            handle.close()
    return time.perf_counter() - began, time.process_time() - cpu


def bench_pack(size_mb: int, work: Path, repeat: int) -> dict[str, float]:
    """Best of `repeat` interleaved runs of pack and of the raw pipeline (noisy machine)."""
    paper = media_paper(size_mb)
    init_authority(work / "auth")
    authority = load_authority(work / "auth")
    venue_key = generate_wrapping_key()
    session = session_for(paper, public_key_text(venue_key.public_key()))
    venue = session.venues[0]  # type: ignore[attr-defined]
    rss_before = rss_kib("VmRSS")
    reset = reset_peak_rss()
    pack_times, raw_times, pack_cpu, raw_cpu, growth = [], [], [], [], 0.0
    floor_times: list[float] = []
    floor_cpu: list[float] = []
    payload = b""
    for run in range(repeat):
        session = dataclasses.replace(session, manifest_version=run + 1)  # type: ignore[type-var]
        began, cpu = time.perf_counter(), time.process_time()
        pack = pack_venue(paper, session, venue, authority, work / f"out-{run}")  # type: ignore[arg-type]
        pack_times.append(time.perf_counter() - began)
        pack_cpu.append(time.process_time() - cpu)
        if run == 0:
            peak = rss_kib("VmHWM") if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            growth = (peak - rss_before) / 1024
            payload = b"".join(iter_payload(paper, pack.manifest.raw, bytes(32)))
        shutil.rmtree(work / f"out-{run}")
        wall, cpu_s = raw_pipeline(payload)
        raw_times.append(wall)
        raw_cpu.append(cpu_s)
        (work / "raw").mkdir()
        wall, cpu_s = raw_pipeline(payload, fragments=work / "raw")
        shutil.rmtree(work / "raw")
        floor_times.append(wall)
        floor_cpu.append(cpu_s)
    plain = len(payload)
    pack_s, raw_s = min(pack_times), min(raw_times)
    return {
        "paper_mb": size_mb,
        "payload_bytes": plain,
        "fragment_bytes_written": round(plain * 5 / 3),
        "pack_s": round(pack_s, 3),
        "pack_mb_s": round(plain / MIB / pack_s, 1),
        "raw_s": round(raw_s, 3),
        "raw_mb_s": round(plain / MIB / raw_s, 1),
        "pack_cpu_s": round(min(pack_cpu), 3),
        "raw_cpu_s": round(min(raw_cpu), 3),
        "pack_vs_raw_cpu": round(min(raw_cpu) / min(pack_cpu), 3),
        "pack_vs_raw_wall": round(raw_s / pack_s, 3),
        "raw_plus_fragments_cpu_s": round(min(floor_cpu), 3),
        "raw_plus_fragments_s": round(min(floor_times), 3),
        "pack_vs_raw_plus_fragments_cpu": round(min(floor_cpu) / min(pack_cpu), 3),
        "load_average": os.getloadavg()[0],
        "rss_before_pack_mib": round(rss_before / 1024, 1),
        "peak_rss_growth_mib": round(growth, 1),
        "chunk_mib": CHUNK_SIZE / MIB,
    }


def bench_unlock(size_mb: int, candidates: int, work: Path, repeat: int) -> dict[str, float]:
    """Best of `repeat` interleaved unlocks and raw baselines on the same package; then the
    variants, timed on their own."""
    paper = media_paper(size_mb)
    init_authority(work / "auth")
    authority = load_authority(work / "auth")
    venue_key = generate_wrapping_key()
    session = session_for(paper, public_key_text(venue_key.public_key()))
    pack = pack_venue(paper, session, session.venues[0], authority, work / "out")  # type: ignore[attr-defined]
    cards = [(pack.shares_dir / f"holder-{h}.txt").read_text() for h in (1, 3, 5)]
    code = issue_release(authority, "BENCH", "V1").code
    unlock_wall, unlock_cpu, raw_wall, raw_cpu = [], [], [], []
    for _ in range(repeat):
        began, cpu = time.perf_counter(), time.process_time()
        opened = open_package(pack.package_dir, authority.signing_public, venue_id="V1")
        unlock = Unlock(opened, venue_key, NOW)
        for holder, card in zip((1, 3, 5), cards, strict=True):
            unlock.add_share(card, f"supervisor-{holder}")
        unlock.add_release(code, NOW)
        # The content key for the raw side, assembled as `open` assembles it (not timed).
        s_sup = bytearray(shamir.combine(list(unlock._shares.values())))
        key, _ = derive_key(s_sup, unlock._s_time, unlock._s_dev, opened.manifest.raw)  # type: ignore[arg-type]
        key = bytes(key)
        unlocked = unlock.open(NOW)
        unlock_wall.append(time.perf_counter() - began)
        unlock_cpu.append(time.process_time() - cpu)
        wall, cpu_s = raw_unlock(pack.package_dir, opened.manifest, opened.header_lengths, key)
        raw_wall.append(wall)
        raw_cpu.append(cpu_s)
    tickets = [f"T{n:06d}" for n in range(candidates)]
    began, cpu = time.perf_counter(), time.process_time()
    plan = VariantPlan(unlocked.paper)
    for ticket in tickets:
        plan.build(unlocked.variant_secret, "BENCH", ticket)
    variants_s, variants_cpu = time.perf_counter() - began, time.process_time() - cpu
    return {
        "paper_mb": size_mb,
        "fragment_bytes": sum(p.stat().st_size for p in pack.package_dir.glob("fragment-*")),
        "unlock_s": round(min(unlock_wall), 3),
        "unlock_cpu_s": round(min(unlock_cpu), 3),
        "raw_hash_decode_decrypt_decompress_s": round(min(raw_wall), 3),
        "raw_cpu_s": round(min(raw_cpu), 3),
        "unlock_vs_raw_cpu": round(min(unlock_cpu) / min(raw_cpu), 3),
        "unlock_vs_raw_wall": round(min(unlock_wall) / min(raw_wall), 3),
        "candidates": candidates,
        "variants_s": round(variants_s, 3),
        "variants_cpu_s": round(variants_cpu, 3),
        "load_average": os.getloadavg()[0],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=200, help="media in the packed paper")
    parser.add_argument(
        "--unlock-size-mb", type=int, default=20, help="media in the unlocked paper"
    )
    parser.add_argument("--candidates", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=2, help="interleaved runs; best counts")
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=Path("/dev/shm") if Path("/dev/shm").is_dir() else None,  # noqa: S108  # tmpfs on purpose; a private TemporaryDirectory is made inside
        help="where fragments are written (default: tmpfs, so the disk is not measured)",
    )
    parser.add_argument("--out", type=Path, default=Path("loadtests/results/bench_pack.json"))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-pack-", dir=args.work_dir) as tmp:
        packed = bench_pack(args.size_mb, Path(tmp) / "pack", args.repeat)
        packed["work_dir"] = str(args.work_dir or tempfile.gettempdir())  # type: ignore[assignment]
    with tempfile.TemporaryDirectory(prefix="bench-unlock-", dir=args.work_dir) as tmp:
        unlocked = bench_unlock(
            args.unlock_size_mb, args.candidates, Path(tmp) / "unlock", args.repeat
        )
    results = {"pack": packed, "unlock": unlocked, "measured_at": datetime.now(UTC).isoformat()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    for section, figures in (("pack", packed), ("unlock", unlocked)):
        print(f"[{section}]")
        for key, value in figures.items():
            print(f"  {key:36} {value}")
    checks = {
        f"pack CPU ratio (raw / pack) {packed['pack_vs_raw_cpu']} >= {PACK_CPU_TARGET}":
            packed["pack_vs_raw_cpu"] >= PACK_CPU_TARGET,
        f"unlock CPU {unlocked['unlock_vs_raw_cpu']}x raw <= {UNLOCK_TARGET}x":
            unlocked["unlock_vs_raw_cpu"] <= UNLOCK_TARGET,
    }  # fmt: skip
    for name, ok in checks.items():
        print(f"{'ok  ' if ok else 'MISS'} {name}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
