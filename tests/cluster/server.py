"""A throwaway PostgreSQL server on 127.0.0.1: the cluster tests' (conftest.py, once per
session) and the cluster benches' (bench/backfill_cluster.py).

Debian's server binaries (package ``postgresql``; .ci/run installs it when absent) are
run into a temporary directory, listening on 127.0.0.1 on a free port and on a unix
socket in that directory. PostgreSQL refuses to run as root: under root the server runs
as ``nobody`` (runuser), its directory handed to that user.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.timing import HANG_GUARD


class ServerError(RuntimeError):
    """The server could not be found or started; the message says why."""


def _server_bin() -> Path:
    """The newest installed server's bin directory (LISTENER_PG_BIN overrides)."""
    if os.environ.get("LISTENER_PG_BIN"):
        return Path(os.environ["LISTENER_PG_BIN"])
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).parent
    raise ServerError("no PostgreSQL server binaries (initdb): install Debian's postgresql package (.ci/run does) "
                      "or set LISTENER_PG_BIN")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def temporary_server() -> Iterator[str]:
    """The conninfo URL of a running server (superuser ``listener``, trust auth on
    127.0.0.1), stopped and deleted on exit."""
    bin_dir = _server_bin()
    as_user: list[str] = []
    # /tmp itself, not pytest's tmp_path: its parents are private to root, and the server's
    # user must reach its directory.
    base = Path(tempfile.mkdtemp(prefix="listener-pg-"))
    if os.geteuid() == 0:
        as_user = ["runuser", "-u", "nobody", "--"]
        shutil.chown(base, "nobody")
    data = base / "data"
    try:
        subprocess.run([*as_user, str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "listener",
                        "-E", "UTF8", "--no-sync"], check=True, capture_output=True, timeout=HANG_GUARD)
        port = _free_port()
        # fsync off: a test server's data need not survive a power cut, and it is much faster.
        options = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off " \
                  "-c full_page_writes=off -c max_connections=100"
        started = subprocess.run([*as_user, str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-w",
                                  "-t", str(int(HANG_GUARD)), "-l", str(base / "server.log"), "start"],
                                 capture_output=True, text=True, timeout=HANG_GUARD + 5)
        if started.returncode != 0:
            log = (base / "server.log").read_text() if (base / "server.log").exists() else ""
            raise ServerError(f"PostgreSQL did not start: {started.stderr}\n{log}")
        try:
            yield f"postgresql://listener@127.0.0.1:{port}/postgres"
        finally:
            subprocess.run([*as_user, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                           capture_output=True, timeout=HANG_GUARD)
    finally:
        shutil.rmtree(base, ignore_errors=True)
