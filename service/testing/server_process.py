"""`pgenrm serve` as a real subprocess on a free loopback port, ready when `/readyz` says so."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import httpx

from service.testing._ports import REPO, free_port
from service.testing._processes import stop, wait_ready


@contextmanager
def served(
    env: dict[str, str], timeout_s: float = 120.0, log: IO[bytes] | None = None
) -> Iterator[str]:
    """Start the server with these PGENRM_* variables on top of ours; yield its base URL.

    Its output is kept in a pipe read on failure, or written to `log` (a long run's output
    would fill the pipe and stall the server)."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "service", "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=REPO,
        env={**os.environ, "PGENRM_LOG_LEVEL": "warning", **env},
        stdout=subprocess.PIPE if log is None else log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        # /readyz answers once one worker has loaded; every worker listens once loaded
        wait_ready(
            proc,
            lambda: (
                httpx.get(f"{url}/readyz", timeout=1).status_code == 200
                and listening(port) >= int(env.get("PGENRM_WORKERS", "1"))
            ),
            what="server",
            timeout_s=timeout_s,
            # A pipe is read only once the process exited (a live one would block the read).
            output=lambda: (
                proc.stdout.read().decode() if proc.stdout and proc.poll() is not None else ""
            ),
            error=AssertionError,
        )
        yield url
    finally:
        workers = [p for p in server_pids(url) if p != proc.pid]
        stop(proc, timeout_s=20)
        _reap(workers)
        if proc.stdout:
            proc.stdout.close()


def _reap(workers: list[int], grace_s: float = 5.0) -> None:
    """Kill the workers a killed server left behind (orphans still serving a long queue)."""
    deadline = time.monotonic() + grace_s
    while workers and time.monotonic() < deadline:
        workers = [p for p in workers if _alive(p)]
        time.sleep(0.1)
    for pid in workers:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:  # a zombie has exited already
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _processes() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, command line) of every process we can read."""
    table: dict[int, tuple[int, str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:  # exited meanwhile
            continue
        table[int(entry.name)] = (int(stat.rsplit(")", 1)[1].split()[1]), cmdline)
    return table


def server_pids(url: str) -> list[int]:
    """The serving processes behind `url`: the server itself, or its workers if it has any."""
    port = url.rsplit(":", 1)[1]
    table = _processes()
    servers = {p for p, (_, cmd) in table.items() if f"serve --host 127.0.0.1 --port {port}" in cmd}
    workers = sorted(  # uvicorn's workers, not multiprocessing's resource tracker
        p for p, (parent, cmd) in table.items() if parent in servers and "spawn_main" in cmd
    )
    return workers or sorted(servers)


def listening(port: int) -> int:
    """How many sockets listen on this loopback port (IPv4)."""
    local = f":{port:04X} "
    rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return sum(1 for row in rows if local in row and row.split()[3] == "0A")
