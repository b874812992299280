"""How much of this machine the host gave while a bench measured.

On a shared host (a VM next to other guests) the same code answers at very different speeds
from one minute to the next; a latency is only readable next to how fast the machine was. Two
readings: the steal time the kernel counts (CPU time the hypervisor gave to other guests) and a
fixed pure-Python loop, timed.
"""

from __future__ import annotations

import time
from pathlib import Path


def host_ticks() -> tuple[int, int] | None:
    """(steal, all) CPU ticks of this machine since boot (/proc/stat), None where unknown."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return None
    ticks = [int(f) for f in fields]
    return (ticks[7] if len(ticks) > 7 else 0), sum(ticks[:8])


def steal_pct(before: tuple[int, int] | None, after: tuple[int, int] | None) -> float | None:
    """Percent of the CPU time that the hypervisor gave to other guests between the two
    readings: a shared host running slow shows here, not in this machine's own processes."""
    if before is None or after is None or after[1] <= before[1]:
        return None
    return round(100 * (after[0] - before[0]) / (after[1] - before[1]), 1)


def speed_probe_ms() -> float:
    """A fixed pure-Python loop (3M iterations), in ms: what this host's speed was just then,
    to read the latencies by (0.3-0.5 s on a quiet host here, over 1.2 s in a slow spell)."""
    started, total = time.perf_counter(), 0
    for i in range(3_000_000):
        total += i * i % 7
    return round(1000 * (time.perf_counter() - started), 0)
