"""Bounds on the native memory (RSS outside any Python object) that embedding keeps growing.

Measured under the soak benchmark (`bench/soak.py`; heaptrack, mallinfo2): with the caches
bounded, a worker's RSS still rose ~100 MB a minute, all of it outside Python's heap:

- oneDNN (PyTorch's bf16 matmuls on CPUs with AMX or AVX512-BF16) compiles a primitive of
  ~260 kB per matrix shape and caches it, globally and again in ideep's cache of each thread
  that calls the model. Texts of every length make every batch a new shape, so the caches fill
  to their default 1,024 entries each (several hundred MB per process). Capped here through
  the variables they read on first use (an operator's own values win);
- glibc gives each thread that contends for malloc an arena of its own (up to 8 per core) and
  seldom returns their free space: the model, the feature maths and the request threads spread
  over the executor's threads fragment them (hundreds of MB). Capped at 2 arenas with
  `mallopt(M_ARENA_MAX)`, unless `MALLOC_ARENA_MAX` says otherwise. It takes effect for arenas
  created after the call (glibc fixes its limit only past 8 arenas), so call it early;
- even so, freed memory stays inside the arenas between live blocks (~400 MB in a worker after
  minutes of mixed requests, returned by one `malloc_trim`): a daemon thread trims every
  `TRIM_EVERY_S` (a few ms each), so a worker's RSS follows what it holds.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys
import threading
import time

PRIMITIVE_CACHE = 128  # oneDNN's process-wide cache (its default: 1,024)
THREAD_CACHE = 32  # ideep's per-thread cache (its default: 1,024)
MALLOC_ARENAS = 2
TRIM_EVERY_S = 5.0
_M_ARENA_MAX = -8  # glibc's mallopt parameter number
_started = threading.Lock()
log = logging.getLogger("pgenrm.memory")


def bound_native_memory() -> None:
    """Cap oneDNN's primitive caches and glibc's malloc arenas, and start trimming; idempotent,
    before any model runs (on another libc the malloc part is left alone)."""
    os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", str(PRIMITIVE_CACHE))
    os.environ.setdefault("LRU_CACHE_CAPACITY", str(THREAD_CACHE))
    libc = _glibc()
    if libc is None or not _started.acquire(blocking=False):
        return
    if "MALLOC_ARENA_MAX" not in os.environ:
        libc.mallopt(_M_ARENA_MAX, MALLOC_ARENAS)
    threading.Thread(target=_trim_forever, args=(libc,), name="malloc-trim", daemon=True).start()


def _glibc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):  # pragma: no cover
        return None
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
        libc.malloc_trim.argtypes = (ctypes.c_size_t,)
    except (OSError, AttributeError):  # pragma: no cover - not glibc
        return None
    return libc


def _trim_forever(libc: ctypes.CDLL) -> None:
    while True:
        time.sleep(TRIM_EVERY_S)
        started = time.perf_counter()
        libc.malloc_trim(0)
        log.debug("malloc_trim took %.1f ms", 1000 * (time.perf_counter() - started))
