"""One smoke test in a real X window (Xvfb, the xcb platform plugin)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import GUI_TESTS, build_queue, worker_env


def test_real_x_window(tmp_path: Path) -> None:
    if shutil.which("xvfb-run") is None or shutil.which("Xvfb") is None:
        msg = "Xvfb is not installed (apt-get install xvfb xauth and the xcb libraries, see docs/gui.md)"
        if os.environ.get("JOBTREE_REQUIRE_ALL") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    q = build_queue(tmp_path / "q", roots=2, frames=3)
    env = worker_env()
    env["QT_QPA_PLATFORM"] = "xcb"
    env["JOBTREE_GUI_SETTINGS"] = str(tmp_path / "settings.ini")
    env.pop("DISPLAY", None)
    shot = tmp_path / "x11.png"
    proc = subprocess.run(
        [
            "xvfb-run",
            "-a",
            "-s",
            "-screen 0 1280x800x24",
            sys.executable,
            str(GUI_TESTS / "xvfb_smoke.py"),
            q.location,
            str(shot),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ok 2" in proc.stdout
    assert shot.stat().st_size > 10_000
