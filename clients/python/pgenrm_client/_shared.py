"""Clients shared by the trainer adapters: one async client per (event loop, URL), one sync
client per (process, URL). The adapters are plain functions that trainers call many times,
so they reuse connections here instead of opening a client per call.

Client settings for the adapters come from the environment: PGENRM_API_KEY (bearer key),
PGENRM_TIMEOUT_S (each attempt, default 180), PGENRM_DEADLINE_S (a call with its retries,
default 300), PGENRM_RETRIES (default 5), PGENRM_MAX_IN_FLIGHT (async, default 64).
"""

from __future__ import annotations

import asyncio
import os
import threading
import weakref

from pgenrm_client._api import base_url
from pgenrm_client.aio import AsyncPgenrmClient
from pgenrm_client.client import PgenrmClient

_async: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, AsyncPgenrmClient]] = (
    weakref.WeakKeyDictionary()
)
_sync: dict[tuple[int, str], PgenrmClient] = {}
_lock = threading.Lock()


def resolve_url(url: str | None) -> str:
    """`url`, else env PGENRM_URL (the service's base URL)."""
    found = url or os.environ.get("PGENRM_URL")
    if not found:
        raise ValueError("no pgenrm URL: pass `url` or set PGENRM_URL (e.g. http://host:8000)")
    return base_url(found)


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    return float(raw) if raw else default


def _timeout() -> float:
    return _env_float("PGENRM_TIMEOUT_S", 180.0)


def _deadline() -> float:
    return _env_float("PGENRM_DEADLINE_S", 300.0)


def _retries() -> int:
    return int(_env_float("PGENRM_RETRIES", 5))


def async_client(url: str | None = None) -> AsyncPgenrmClient:
    """The running loop's client for `url` (or PGENRM_URL)."""
    resolved = resolve_url(url)
    loop = asyncio.get_running_loop()
    with _lock:
        clients = _async.setdefault(loop, {})
        client = clients.get(resolved)
        if client is None or client.closed:
            client = AsyncPgenrmClient(
                resolved,
                timeout=_timeout(),
                deadline_s=_deadline(),
                retries=_retries(),
                max_in_flight=int(_env_float("PGENRM_MAX_IN_FLIGHT", 64)),
            )
            clients[resolved] = client
    return client


def sync_client(url: str | None = None) -> PgenrmClient:
    """This process's client for `url` (or PGENRM_URL); thread-safe."""
    resolved = resolve_url(url)
    key = (os.getpid(), resolved)  # a forked child must not share the parent's sockets
    with _lock:
        client = _sync.get(key)
        if client is None:
            client = PgenrmClient(
                resolved, timeout=_timeout(), deadline_s=_deadline(), retries=_retries()
            )
            _sync[key] = client
    return client


async def aclose_shared_clients() -> None:
    """Close the running loop's shared clients (e.g. at the end of training)."""
    with _lock:
        clients = list(_async.pop(asyncio.get_running_loop(), {}).values())
    for client in clients:
        await client.aclose()


def close_shared_clients() -> None:
    """Close this process's shared sync clients."""
    with _lock:
        clients = [c for (pid, _), c in _sync.items() if pid == os.getpid()]
        for key in [k for k in _sync if k[0] == os.getpid()]:
            del _sync[key]
    for client in clients:
        client.close()
