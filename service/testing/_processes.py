"""Stopping the subprocesses the tests and benchmarks start."""

from __future__ import annotations

import subprocess


def stop(proc: subprocess.Popen[bytes], timeout_s: float) -> None:
    """Terminate (graceful), then kill if it lingers past `timeout_s`; safe once it exited."""
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
