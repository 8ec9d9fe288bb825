"""Issue 14, point 3, with real processes: `cbt venue serve --central-url` and `cbt central
serve`; a session that has ended at the venue arrives at the centre, with a verified receipt
kept at the venue, and nobody runs export or upload. The bound: within 60 s of the venue
server starting (a round every 10 s; measured here in a few seconds)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from server.venue.upload import receipt_path
from server.venue.workspace import init_venue, open_venue_db
from tests.server.central.conftest import START
from tests.server.central.test_two_processes import cbt, free_port, wait_until_up
from tests.server.central.test_venue_to_centre import sit_session

BOUND_S = 60.0


def serve(log: Path, *args: str) -> subprocess.Popen[bytes]:
    with log.open("wb") as err:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "server.cli", *args], stdout=subprocess.DEVNULL, stderr=err
        )


def test_an_ended_session_reaches_a_real_centre_process_without_a_hand(
    authority_dir: Path, tmp_path: Path
) -> None:
    venue_dir = tmp_path / "venue"
    init_venue(venue_dir, "V1", now=START)
    db = open_venue_db(venue_dir)
    sit_session(db)
    db.close()
    # What `cbt venue import` pins from the signed package (test_upload_key_pinned.py).
    shutil.copyfile(authority_dir / "signing.pub", venue_dir / "keys" / "authority-sign.pub")
    shutil.copyfile(authority_dir / "upload.pub", venue_dir / "keys" / "authority-upload.pub")

    central_dir = tmp_path / "central"
    done = cbt("central", "init", str(central_dir), "--authority", str(authority_dir))
    assert done.returncode == 0, done.stderr
    done = cbt("central", "venues", "add", str(central_dir), "--venue-id", "V1",
               "--public-key", str(venue_dir / "venue.json"))  # fmt: skip
    assert done.returncode == 0, done.stderr
    central_port, venue_port = free_port(), free_port()
    central = serve(
        tmp_path / "central.log", "central", "serve", str(central_dir), "--port", str(central_port)
    )
    venue = None
    try:
        wait_until_up(central_port, central)
        started = time.monotonic()
        central_url = f"http://127.0.0.1:{central_port}"
        venue = serve(tmp_path / "venue.log", "venue", "serve", str(venue_dir),
                      "--port", str(venue_port), "--central-url", central_url)  # fmt: skip
        arrived = None
        while time.monotonic() - started < BOUND_S:
            assert venue.poll() is None, (tmp_path / "venue.log").read_text()
            packages = list((venue_dir / "outbox").glob("*.cbtresp"))
            if packages and receipt_path(packages[0]).exists():
                arrived = time.monotonic() - started
                break
            time.sleep(0.2)
        assert arrived is not None, f"nothing arrived within {BOUND_S:.0f} s"
        receipt = json.loads(receipt_path(packages[0]).read_text())
        assert receipt["receipt"]["session_id"] == "S1"
        assert receipt["receipt"]["venue_id"] == "V1"
        print(f"arrived with its receipt {arrived:.1f} s after the venue server started")
    finally:
        for process in (venue, central):
            if process is not None:
                process.terminate()
                process.wait(timeout=20)
