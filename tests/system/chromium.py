"""Debian's headless Chromium for the browser tests: found or the test fails saying how to
install it, run with networking features off and a throwaway profile per call."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.timing import HANG_GUARD

CHROMIUM = os.environ.get("REPORT_TEST_CHROMIUM", "/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--mute-audio"]
PLAYWRIGHT_ARGS = [flag for flag in FLAGS if flag != "--headless"]
"""The same flags for Playwright's launch(executable_path=CHROMIUM, args=...), which sets
headless mode itself."""


def need_chromium() -> None:
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(f"{CHROMIUM} not found: the browser test needs Debian's Chromium. Install it with "
                    f"`apt-get update && apt-get install -y chromium` (or set REPORT_TEST_CHROMIUM).",
                    pytrace=False)


def run_chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    """Chromium with ``args``, in a new profile under ``tmp`` (also its HOME)."""
    profile = tmp / f"profile-{len(list(tmp.glob('profile-*')))}"
    env = {**os.environ, "HOME": str(tmp)}
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args], check=False, capture_output=True,
                          text=True, timeout=HANG_GUARD, env=env, stdin=subprocess.DEVNULL)
