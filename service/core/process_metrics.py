"""Memory gauges sampled in each server process: its resident memory, the container's limit and
the bytes its in-process caches hold.

prometheus_client's process collector reports only the process that answers a scrape, and not
at all in multiprocess mode; these gauges are written by every worker into the shared files, so
`/metrics` shows each worker's RSS (by pid) and an alert can compare their sum to the limit.
"""

from __future__ import annotations

import asyncio
import os
import resource
from collections.abc import Callable, Mapping
from pathlib import Path

from service.core.metrics import Metrics

SAMPLE_EVERY_S = 5.0
# cgroup v2, then v1 (where "no limit" reads as a huge number).
_CGROUP_LIMITS = (
    Path("/sys/fs/cgroup/memory.max"),
    Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"),
)
_NO_LIMIT = 1 << 60


def resident_bytes() -> int:
    """This process's resident set now (Linux), else its peak (other POSIX systems)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def memory_limit_bytes(paths: tuple[Path, ...] = _CGROUP_LIMITS) -> float:
    """The container's memory limit, +Inf when there is none (or it cannot be read)."""
    for path in paths:
        try:
            text = path.read_text().strip()
        except OSError:
            continue
        if text == "max":
            return float("inf")
        try:
            value = int(text)
        except ValueError:
            continue
        return float("inf") if value >= _NO_LIMIT else float(value)
    return float("inf")


def sample(metrics: Metrics, cache_bytes: Callable[[], Mapping[str, int]]) -> None:
    metrics.resident_memory.set(resident_bytes())
    for cache, size in cache_bytes().items():
        metrics.cache_bytes.labels(cache).set(size)


async def sample_forever(
    metrics: Metrics,
    cache_bytes: Callable[[], Mapping[str, int]],
    every_s: float = SAMPLE_EVERY_S,
) -> None:
    """Set the limit once and the gauges now, then every `every_s` until cancelled."""
    metrics.memory_limit.set(memory_limit_bytes())
    while True:
        sample(metrics, cache_bytes)
        await asyncio.sleep(every_s)
