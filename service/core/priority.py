"""Background priority for expensive calls, so that cheap ones keep their latency beside them.

An expensive call (a cost of at least `PGENRM_EXPENSIVE_COST`) runs inside `background()`. Its
CPU work then goes to threads whose OS scheduling priority is lowered (a higher nice value: the
kernel gives them the CPU that normal threads leave), and the embedding batcher serves every
foreground call before a background one. The context variable travels with the call into
`asyncio.to_thread` and executors that copy the context.
"""

from __future__ import annotations

import contextvars
import logging
import os
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

_BACKGROUND: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "pgenrm_background", default=False
)
log = logging.getLogger(__name__)


@contextmanager
def background() -> Iterator[None]:
    token = _BACKGROUND.set(True)
    try:
        yield
    finally:
        _BACKGROUND.reset(token)


def in_background() -> bool:
    return _BACKGROUND.get()


def lower_this_thread(nice: int) -> None:
    """Raise this thread's nice value by `nice` (Linux sets it per thread; unprivileged
    processes may raise it but never lower it again, so these threads stay background)."""
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + nice)
    except (AttributeError, OSError) as error:  # not Linux: background work runs at normal priority
        log.debug("cannot lower a thread's priority: %s", error)


def background_executor(threads: int, nice: int) -> ThreadPoolExecutor:
    """Threads for background work, their priority lowered once when each starts."""
    return ThreadPoolExecutor(
        threads,
        thread_name_prefix="pgenrm-background",
        initializer=lower_this_thread,
        initargs=(nice,),
    )
