"""The pool of OpenAI-compatible workers: rendezvous routing, health, circuit breakers.

A user's requests go to the same worker (rendezvous hashing on a routing key), so that worker's
prefix cache keeps that user's history prompt warm; when it is down they fail over to the next
worker in the user's own ranking, which spreads a dead worker's users evenly. Health comes from
each worker's `/health` (or `/v1/models`, for servers without one: see `capabilities`) and from
the requests themselves through a per-worker circuit breaker. Each worker's state is published
as gauges (`pgenrm_backend_up`, `pgenrm_backend_breaker_state`, `pgenrm_backend_capabilities`)
whenever it may have changed: after every probe and every request.
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

from service.backends.openai.capabilities import Capabilities, model_label
from service.core.metrics import Metrics

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
    models: list[str] = field(default_factory=list)  # ids as listed (maybe file paths)
    caps: Capabilities = field(default_factory=Capabilities)
    published: tuple[str, ...] | None = None  # the capability labels last exported
    chat_url: httpx.URL = field(init=False)

    def __post_init__(self) -> None:
        self.chat_url = httpx.URL(f"{self.url}/v1/chat/completions")  # parsed once

    @property
    def available(self) -> bool:
        return self.healthy and self.breaker.allows()

    def describe(self) -> dict[str, object]:
        """For /readyz: state and what was detected (model names, never file paths)."""
        return {
            "url": self.url,
            "healthy": self.healthy,
            "circuit": self.breaker.state,
            "models": [model_label(m) for m in self.models],
            **self.caps.describe(),
        }


_BREAKER_STATES = {"closed": 0, "half-open": 1, "open": 2}


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
        probe_timeout_s: float = 5.0,
        headers: dict[str, str] | None = None,
        capabilities: Callable[[str], Capabilities] = lambda _url: Capabilities(),
        metrics: Metrics | None = None,
    ) -> None:
        if not urls:
            raise ValueError("at least one worker URL is needed")
        self.workers = []
        for url in map(normalise_url, urls):
            breaker = CircuitBreaker(breaker_threshold, breaker_cooldown_s)
            self.workers.append(Worker(url, breaker, caps=capabilities(url)))
        self._client = client
        self._interval, self._probe_timeout = health_interval_s, probe_timeout_s
        self._headers = headers or {}
        self._task: asyncio.Task[None] | None = None
        self.metrics = metrics

    def route(self, key: str) -> list[Worker]:
        """Workers to try for this key, in order: available ones first, in rendezvous order."""
        ranked = rendezvous_order(key, self.workers)
        return [w for w in ranked if w.available]

    def retry_after(self) -> int:
        """Seconds until some worker may be tried again (for a 503's Retry-After)."""
        waits = [w.breaker.retry_after() for w in self.workers if w.healthy]
        return max(1, int(min(waits, default=self._interval) + 0.999))

    async def probe(self, worker: Worker) -> None:
        """Health from `/health`; a server without one (404, 405) is judged by `/v1/models`
        from then on. `/v1/models` also names the model."""
        caps, status = worker.caps, None
        if caps.health != "models":
            wait_s = min(2.0, self._probe_timeout)
            status = await self._status(f"{worker.url}/health", limit_s=wait_s)
            if caps.health is None and status in (404, 405):
                caps.health = "models"
                log.warning("worker %s has no /health (%s): /v1/models says", worker.url, status)
            elif caps.health is None and status is not None:
                caps.health = "health"
        if caps.health == "models":
            listed = await self._list_models(worker)
            # A server that answers one request at a time (llama.cpp's) lists its models only
            # after the generation in progress: a slow answer is busy, not down.
            healthy = worker.healthy if listed is None else listed
        else:
            healthy = status == 200
            if healthy and not worker.models:
                await self._list_models(worker)
        if healthy != worker.healthy:
            log.warning("worker %s is now %s", worker.url, "healthy" if healthy else "unhealthy")
        worker.healthy = healthy
        self.publish(worker)

    async def _status(self, url: str, *, limit_s: float) -> int | None:
        try:
            response = await self._client.get(url, headers=self._headers, timeout=limit_s)
            return response.status_code
        except httpx.HTTPError:
            return None

    async def _list_models(self, worker: Worker) -> bool | None:
        """True when `/v1/models` answered with a model list (kept on the worker), False when
        it failed, None when it did not answer in time."""
        try:
            listed = await self._client.get(
                f"{worker.url}/v1/models", headers=self._headers, timeout=self._probe_timeout
            )
            models = [str(m["id"]) for m in listed.json()["data"]] if listed.is_success else None
        except httpx.TimeoutException:
            return None
        except (httpx.HTTPError, ValueError, KeyError, TypeError):
            models = None
        if models is None:
            return False
        if models != worker.models:
            shown = ", ".join(model_label(m) for m in models) or "nothing"
            log.info("worker %s serves %s", worker.url, shown)
        worker.models = models
        return True

    def publish(self, worker: Worker) -> None:
        """The worker's up/down, breaker state and capabilities, as gauges."""
        if self.metrics is None:
            return
        m, state = self.metrics, worker.breaker.state
        m.backend_up.labels(worker.url).set(1 if worker.available else 0)
        m.backend_breaker_state.labels(worker.url).set(_BREAKER_STATES[state])
        caps = worker.caps
        n = "unknown" if caps.n is None else str(caps.n).lower()
        key = (caps.health or "unknown", n, caps.dialect or "unknown")
        if worker.published != key:
            if worker.published is not None:  # zeroed, not removed: multiprocess files keep it
                m.backend_capabilities.labels(worker.url, *worker.published).set(0)
            m.backend_capabilities.labels(worker.url, *key).set(1)
            worker.published = key

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
