"""One chat request to the OpenAI-compatible fleet: routing, retries, failover, and what each
worker understands.

The answer comes from the first worker in the routing key's rendezvous order that gives one.
Retries, with jittered exponential backoff, only on connect errors, timeouts, 429 and 5xx; a
4xx is the request's fault and is never retried nor failed over, except while a worker's
structured-output dialect is still unknown: a constrained request that worker rejects (or
answers with no JSON at all, as a server that ignores the field does) is sent again in the next
dialect, and the first one that works is kept (`capabilities`). A worker known not to honour
`n` is asked for one choice. Every call carries the routing key's keyed hash in the affinity
header, so a session-routing router in front of several replicas keeps a user on one of them.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import random
import time
from typing import TYPE_CHECKING, Any, Literal

import httpx
import orjson

from service.backends.openai._transport import LeanTransport
from service.backends.openai.capabilities import REJECTED_STATUSES, Dialect
from service.backends.openai.schema import Schema, constrained
from service.backends.openai.workers import Worker, WorkerPool
from service.core.metrics import Metrics
from service.engine.backend import BackendError

if TYPE_CHECKING:  # the backend imports this module
    from service.backends.openai.backend import OpenAIOptions

log = logging.getLogger("pgenrm.openai")
# The affinity hash's key when none is configured: stable across gateways, but guessable ids
# can then be confirmed by anyone who sees the header; set PGENRM_OPENAI_AFFINITY_KEY.
DEFAULT_AFFINITY_KEY = b"pgenrm-affinity-v1"
_VALIDATION = b"validation error"  # what pydantic says of a request that does not validate


class _Retryable(Exception):
    def __init__(
        self, detail: str, *, reason: Literal["backend_error", "timeout"], dead: bool
    ) -> None:
        super().__init__(detail)
        self.detail, self.reason, self.dead = detail, reason, dead


class _Rejected(BackendError):
    """A 4xx: the request is wrong for this server."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__("backend_error", detail)
        self.status = status


def affinity_value(key: str, secret: bytes) -> str:
    """The affinity header's value for a routing key: a keyed hash, never the key itself."""
    return hmac.new(secret, key.encode(), hashlib.sha256).hexdigest()[:32]


class Calls:
    """Sends chat bodies for the backend; one per started backend."""

    name = "openai"

    def __init__(
        self,
        pool: WorkerPool,
        transport: LeanTransport,
        options: OpenAIOptions,
        *,
        dialect: Dialect | None,
        headers: dict[str, str],
        metrics: Metrics | None,
    ) -> None:
        self.pool, self._transport, self.options = pool, transport, options
        self.dialect = dialect  # tried first; None: the default order
        self._headers, self.metrics = headers, metrics
        self._timeouts = {"connect": options.connect_timeout_s, "read": options.read_timeout_s}
        self._affinity_key = options.affinity_key or DEFAULT_AFFINITY_KEY

    async def send(
        self, body: dict[str, Any], key: str, schema: Schema | None = None
    ) -> tuple[dict[str, Any], Worker]:
        """The answer of the first worker in `key`'s order that gives one, and that worker."""
        workers = self.pool.route(key)
        if not workers:
            raise BackendError("unavailable", "every worker is down or its circuit is open")
        headers = dict(self._headers)
        if self.options.affinity_header:
            headers[self.options.affinity_header] = affinity_value(key, self._affinity_key)
        failures: list[_Retryable] = []
        for worker in workers:
            try:
                return await self._on_worker(worker, body, headers, schema), worker
            except _Retryable as error:
                failures.append(error)
                log.warning("worker %s failed: %s", worker.url, error.detail)
        detail = "; ".join(f.detail for f in failures)
        if all(f.dead for f in failures):  # nobody answered: the fleet is down
            raise BackendError("unavailable", f"no worker reachable ({detail})")
        raise BackendError(failures[-1].reason, f"every worker failed ({detail})")

    async def _on_worker(
        self,
        worker: Worker,
        body: dict[str, Any],
        headers: dict[str, str],
        schema: Schema | None,
    ) -> dict[str, Any]:
        caps, asked = worker.caps, int(body.get("n", 1))
        if caps.n is False and asked > 1:
            body = {**body, "n": 1}  # it would answer one choice anyway; some refuse n > 1
        if schema is None:
            return self._learnt(worker, asked, await self._with_retries(worker, body, headers))
        dialects = caps.dialects(self.dialect)
        for i, dialect in enumerate(dialects):
            payload = {**body, **constrained(dialect, schema.name, schema.schema)}
            last = i == len(dialects) - 1
            try:
                data = await self._with_retries(worker, payload, headers)
            except _Rejected as error:
                if caps.dialect is not None or error.status not in REJECTED_STATUSES or last:
                    raise
                self._reject(worker, dialect, f"HTTP {error.status}")
                continue
            if caps.dialect is None:
                if not _has_json(data) and not last:
                    self._reject(worker, dialect, "answered without JSON")
                    continue
                if _has_json(data):
                    caps.dialect = dialect
                    log.info("worker %s takes structured outputs as %s", worker.url, dialect)
                    self.pool.publish(worker)
            return self._learnt(worker, asked, data)
        raise AssertionError("unreachable")

    def _reject(self, worker: Worker, dialect: Dialect, why: str) -> None:
        worker.caps.rejected.add(dialect)
        log.warning("worker %s: structured outputs as %s failed (%s)", worker.url, dialect, why)

    def _learnt(self, worker: Worker, asked: int, data: dict[str, Any]) -> dict[str, Any]:
        changed = worker.caps.learn_n(asked, len(data.get("choices") or []))
        if changed is not None:
            log.info("worker %s %s n", worker.url, "honours" if changed else "ignores")
            self.pool.publish(worker)
        return data

    async def _with_retries(
        self, worker: Worker, body: dict[str, Any], headers: dict[str, str]
    ) -> dict[str, Any]:
        o = self.options
        for attempt in range(o.retries + 1):
            try:
                data = await self._post(worker, body, headers)
                worker.breaker.record_success()
                self.pool.publish(worker)
                return data
            except _Retryable as error:
                worker.breaker.record_failure()
                if error.dead:
                    worker.healthy = False  # until the next health probe says otherwise
                self.pool.publish(worker)
                if error.dead or attempt == o.retries or not worker.breaker.allows():
                    raise
                delay = min(o.backoff_base_s * 2**attempt, o.backoff_max_s)
                await asyncio.sleep(delay + random.uniform(0, o.backoff_base_s))
        raise AssertionError("unreachable")

    async def _post(
        self, worker: Worker, body: dict[str, Any], headers: dict[str, str]
    ) -> dict[str, Any]:
        started = time.perf_counter()
        try:
            data = await self._exchange(worker, body, headers)
        except (_Retryable, BackendError) as error:
            if self.metrics is not None:
                kind = error.detail.split(":")[0] if isinstance(error, _Retryable) else "http_4xx"
                self.metrics.backend_errors.labels(self.name, worker.url, kind).inc()
            raise
        if self.metrics is not None:
            self.metrics.backend_duration.labels(self.name, worker.url).observe(
                time.perf_counter() - started
            )
        return data

    async def _exchange(
        self, worker: Worker, body: dict[str, Any], headers: dict[str, str]
    ) -> dict[str, Any]:
        # Straight to the shared client's transport: chat calls need none of the client's
        # cookie, redirect or auth handling, which cost more CPU than the HTTP exchange.
        request = httpx.Request(
            "POST",
            worker.chat_url,
            headers=headers,
            content=orjson.dumps(body),
            extensions={"timeout": self._timeouts},
        )
        try:
            response = await self._transport.handle_async_request(request)
        except httpx.ConnectError as error:
            raise _Retryable(f"connect: {error}", reason="backend_error", dead=True) from error
        except httpx.TimeoutException as error:
            raise _Retryable(
                f"timeout: {type(error).__name__}", reason="timeout", dead=False
            ) from error
        except httpx.TransportError as error:
            raise _Retryable(f"transport: {error}", reason="backend_error", dead=False) from error
        status = response.status_code
        if status >= 500 and _VALIDATION in response.content.lower():
            # llama.cpp's server answers a request it cannot validate (a `response_format`
            # type it does not know) with a 500: the request's fault, like a 4xx.
            raise _Rejected(status, f"HTTP {status} from {worker.url}: {response.text[:300]}")
        if status == 429 or status >= 500:
            raise _Retryable(f"http_{status}: server error", reason="backend_error", dead=False)
        if status >= 400:  # our request is wrong: retrying or failing over will not help
            raise _Rejected(status, f"HTTP {status} from {worker.url}: {response.text[:300]}")
        try:
            data: dict[str, Any] = orjson.loads(response.content)
        except orjson.JSONDecodeError as error:
            raise _Retryable(
                "bad_json: response is not JSON", reason="backend_error", dead=False
            ) from error
        return data


def _has_json(data: dict[str, Any]) -> bool:
    """Whether some choice reads as a JSON object: a constrained answer always does."""
    for choice in data.get("choices") or []:
        content = (choice.get("message") or {}).get("content") or ""
        if content.lstrip().startswith("{"):
            return True
    return False
