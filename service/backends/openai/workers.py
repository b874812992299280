"""The pool of OpenAI-compatible workers: rendezvous routing, health, circuit breakers.

A user's requests go to the same worker (rendezvous hashing on a routing key), so that worker's
prefix cache keeps that user's history prompt warm; when it is down they fail over to the next
worker in the user's own ranking, which spreads a dead worker's users evenly. Health comes from
each worker's `/health` and from the requests themselves through a per-worker circuit breaker.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

log = logging.getLogger("pgenrm.workers")


@dataclass
class CircuitBreaker:
    """Closed -> open after `threshold` consecutive failures; half-open after `cooldown_s`."""

    threshold: int = 5
    cooldown_s: float = 15.0
    failures: int = 0
    opened_at: float | None = None
    clock: Callable[[], float] = time.monotonic

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return "closed"
        return "half-open" if self.clock() - self.opened_at >= self.cooldown_s else "open"

    def allows(self) -> bool:
        return self.state != "open"

    def record_success(self) -> None:
        self.failures, self.opened_at = 0, None

    def record_failure(self) -> None:
        self.failures += 1
        if self.state == "half-open" or self.failures >= self.threshold:
            self.opened_at = self.clock()

    def retry_after(self) -> float:
        if self.opened_at is None:
            return 0.0
        return max(0.0, self.cooldown_s - (self.clock() - self.opened_at))


@dataclass
class Worker:
    url: str  # root URL, no trailing slash and no /v1
    breaker: CircuitBreaker
    healthy: bool = True  # from the last /health probe
    models: list[str] = field(default_factory=list)
    chat_url: httpx.URL = field(init=False)

    def __post_init__(self) -> None:
        self.chat_url = httpx.URL(f"{self.url}/v1/chat/completions")  # parsed once

    @property
    def available(self) -> bool:
        return self.healthy and self.breaker.allows()


def normalise_url(url: str) -> str:
    """`http://h:8000/v1/` and `http://h:8000` both mean the server at http://h:8000."""
    url = url.strip().rstrip("/")
    return url[: -len("/v1")] if url.endswith("/v1") else url


def rendezvous_order(key: str, workers: list[Worker]) -> list[Worker]:
    """Highest-random-weight order of the workers for this key (stable as workers come and go)."""

    def weight(worker: Worker) -> int:
        digest = hashlib.blake2b(f"{key}\x1f{worker.url}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big")

    return sorted(workers, key=weight, reverse=True)


class WorkerPool:
    def __init__(
        self,
        urls: list[str],
        client: httpx.AsyncClient,
        *,
        breaker_threshold: int = 5,
        breaker_cooldown_s: float = 15.0,
        health_interval_s: float = 5.0,
        headers: dict[str, str] | None = None,
    ) -> None:
        if not urls:
            raise ValueError("at least one worker URL is needed")
        self.workers = [
            Worker(normalise_url(u), CircuitBreaker(breaker_threshold, breaker_cooldown_s))
            for u in urls
        ]
        self._client = client
        self._interval = health_interval_s
        self._headers = headers or {}
        self._task: asyncio.Task[None] | None = None

    def route(self, key: str) -> list[Worker]:
        """Workers to try for this key, in order: available ones first, in rendezvous order."""
        ranked = rendezvous_order(key, self.workers)
        return [w for w in ranked if w.available]

    def retry_after(self) -> int:
        """Seconds until some worker may be tried again (for a 503's Retry-After)."""
        waits = [w.breaker.retry_after() for w in self.workers if w.healthy]
        return max(1, int(min(waits, default=self._interval) + 0.999))

    async def probe(self, worker: Worker) -> None:
        try:
            response = await self._client.get(f"{worker.url}/health", timeout=2.0)
            healthy = response.status_code == 200
        except httpx.HTTPError:
            healthy = False
        if healthy and not worker.models:
            with contextlib.suppress(httpx.HTTPError, ValueError, KeyError, TypeError):
                listed = await self._client.get(
                    f"{worker.url}/v1/models", headers=self._headers, timeout=5.0
                )
                worker.models = [m["id"] for m in listed.json()["data"]]
                log.info("worker %s serves %s", worker.url, ", ".join(worker.models) or "nothing")
        if healthy != worker.healthy:
            log.warning("worker %s is now %s", worker.url, "healthy" if healthy else "unhealthy")
        worker.healthy = healthy

    async def probe_all(self) -> None:
        await asyncio.gather(*(self.probe(w) for w in self.workers))

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop())

    async def _loop(self) -> None:
        while True:
            await self.probe_all()
            await asyncio.sleep(self._interval)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
