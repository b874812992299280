"""Waiting for and stopping the subprocesses the tests and benchmarks start."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable

import httpx


def wait_ready(
    proc: subprocess.Popen[bytes],
    ready: Callable[[], bool],
    *,
    what: str,
    timeout_s: float,
    output: Callable[[], str],
    error: type[Exception] = RuntimeError,
    interval_s: float = 0.2,
) -> None:
    """Poll `ready` (an HTTP check; a connection error counts as not yet) until it holds.
    Raise `error` with the process's `output` if it exits first, or once `timeout_s` passed."""
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            raise error(f"{what} exited with {proc.returncode}:\n{output()}")
        try:
            if ready():
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise error(f"{what} not ready after {timeout_s:.0f} s:\n{output()}")
        time.sleep(interval_s)


def stop(proc: subprocess.Popen[bytes], timeout_s: float) -> None:
    """Terminate (graceful), then kill if it lingers past `timeout_s`; safe once it exited."""
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
