"""The two console scripts answer --help (the front door works after install)."""

import subprocess
import sys


def test_paperpack_help_answers() -> None:
    """`paperpack --help` exits 0 and names the tool."""
    out = subprocess.run(
        [sys.executable, "-m", "paperpack.cli", "--help"], capture_output=True, text=True
    )
    assert out.returncode == 0
    assert "paperpack" in out.stdout


def test_cbt_help_answers() -> None:
    """`cbt --help` exits 0 and names the tool."""
    out = subprocess.run(
        [sys.executable, "-m", "server.cli", "--help"], capture_output=True, text=True
    )
    assert out.returncode == 0
    assert "cbt" in out.stdout
