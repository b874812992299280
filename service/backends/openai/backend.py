"""The OpenAI-compatible HTTP backend: P-GenRM-8B on vLLM in production (any compatible server).

Ind-N is one `/v1/chat/completions` request with `n=N`, so the server shares the prefill.
Requests for one routing key (the user, or the neighbour whose history a prototype-level sample
uses) go to the same worker for its prefix cache, failing over along the key's rendezvous
order. Retries, with jittered exponential backoff, only on connect errors, timeouts, 429 and
5xx; a 4xx is the request's fault and is never retried. The gateway never imports vllm.
`complete` sends other tasks' chats (the critic's) the same way.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass
from typing import Any, Literal

import httpx
import orjson

from service.backends.openai._transport import LeanTransport
from service.backends.openai.schema import structured_fields
from service.backends.openai.workers import Worker, WorkerPool
from service.engine.backend import Backend, BackendError, Completion, SampleGroup
from service.engine.prompts import build_messages

log = logging.getLogger("pgenrm.openai")
Structured = Literal["off", "structured_outputs", "response_format"]


@dataclass(frozen=True)
class OpenAIOptions:
    urls: tuple[str, ...]
    model: str | None = None  # None: the first model the workers list at /v1/models
    api_key: str | None = None
    temperature: float = 1.0  # the paper's setting for test-time scaling
    top_p: float = 1.0
    max_tokens: int = 2048
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 120.0
    retries: int = 2  # per worker, on retryable errors
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0
    max_concurrency: int = 64  # requests in flight from this gateway process
    max_connections: int = 128
    structured: Structured = "off"
    breaker_threshold: int = 5
    breaker_cooldown_s: float = 15.0
    health_interval_s: float = 5.0


class _Retryable(Exception):
    def __init__(
        self, detail: str, *, reason: Literal["backend_error", "timeout"], dead: bool
    ) -> None:
        super().__init__(detail)
        self.detail, self.reason, self.dead = detail, reason, dead


class OpenAIBackend(Backend):
    name = "openai"

    def __init__(self, options: OpenAIOptions) -> None:
        self.options = options
        self._client: httpx.AsyncClient | None = None
        self._transport: LeanTransport | None = None
        self.pool: WorkerPool | None = None
        self._gate = asyncio.Semaphore(options.max_concurrency)
        self._headers = {"Content-Type": "application/json"}
        if options.api_key:
            self._headers["Authorization"] = f"Bearer {options.api_key}"

    @property
    def model(self) -> str:
        return self._known_model() or "unknown (not discovered yet)"

    def _known_model(self) -> str | None:
        """The configured model, else the first one a worker listed at /v1/models."""
        if self.options.model:
            return self.options.model
        listed = [m for w in (self.pool.workers if self.pool else []) for m in w.models]
        return listed[0] if listed else None

    @property
    def ready(self) -> bool:
        """Started. The model may still be unknown (every worker down since start-up): until a
        worker lists it, requests are `unavailable`, so the fallback answers if there is one,
        and the health loop discovers it as soon as a worker comes up."""
        return self.pool is not None

    @property
    def available(self) -> bool:
        return (
            self.pool is not None
            and self._known_model() is not None
            and any(w.available for w in self.pool.workers)
        )

    def describe(self) -> dict[str, object]:
        workers = self.pool.workers if self.pool else []
        return {
            "workers": [
                {"url": w.url, "healthy": w.healthy, "circuit": w.breaker.state} for w in workers
            ]
        }

    def retry_after(self) -> int:
        return self.pool.retry_after() if self.pool else 5

    async def start(self) -> None:
        if self._client is not None:
            return
        o = self.options
        self._transport = LeanTransport(max_connections=o.max_connections)
        self._timeouts = {"connect": o.connect_timeout_s, "read": o.read_timeout_s}
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(o.read_timeout_s, connect=o.connect_timeout_s),
            transport=self._transport,
        )
        self.pool = WorkerPool(
            list(o.urls),
            self._client,
            breaker_threshold=o.breaker_threshold,
            breaker_cooldown_s=o.breaker_cooldown_s,
            health_interval_s=o.health_interval_s,
            headers=self._headers,
        )
        await self.pool.probe_all()
        self.pool.start()

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.close()
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def request_body(self, group: SampleGroup) -> dict[str, Any]:
        o = self.options
        body: dict[str, Any] = {
            "model": self.model,
            "messages": build_messages(group.history, group.task),
            "n": group.n,
            "temperature": o.temperature,
            "top_p": o.top_p,
            "max_tokens": o.max_tokens,
            "seed": group.seed % (2**31),
        }
        body.update(structured_fields(o.structured, len(group.task.candidates)))
        return body

    async def generate(self, group: SampleGroup) -> list[Completion]:
        # Route by whose history fills the prompt: that worker's prefix cache holds it.
        key = group.user_id if group.level == "ind" else f"{group.user_id}\x1f{group.source}"
        data = await self._send(self.request_body(group), key)
        return self._completions(data, group.n, markers=self.options.structured != "off")

    async def complete(
        self,
        messages: list[dict[str, str]],
        *,
        key: str,
        temperature: float = 0.0,
        seed: int = 0,
        extra: dict[str, Any] | None = None,
    ) -> str:
        """One chat completion for another task than a chain (the critic's extraction and
        matching), through the same routing, retries and failover; its text as written."""
        o = self.options
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "n": 1,
            "temperature": temperature,
            "top_p": o.top_p,
            "max_tokens": o.max_tokens,
            "seed": seed % (2**31),
            **(extra or {}),
        }
        choices = self._completions(await self._send(body, key), 1, markers=False)
        return choices[0].text if choices else ""

    async def _send(self, body: dict[str, Any], key: str) -> dict[str, Any]:
        """The answer of the first worker in `key`'s order that gives one."""
        if self.pool is None or self._client is None:
            raise BackendError("unavailable", "the OpenAI backend is not started")
        if self._known_model() is None:
            raise BackendError("unavailable", "no worker has listed its model at /v1/models yet")
        workers = self.pool.route(key)
        if not workers:
            raise BackendError("unavailable", "every worker is down or its circuit is open")
        failures: list[_Retryable] = []
        async with self._gate:
            for worker in workers:
                try:
                    return await self._with_retries(worker, body)
                except _Retryable as error:
                    failures.append(error)
                    log.warning("worker %s failed: %s", worker.url, error.detail)
        detail = "; ".join(f.detail for f in failures)
        if all(f.dead for f in failures):  # nobody answered: the fleet is down
            raise BackendError("unavailable", f"no worker reachable ({detail})")
        raise BackendError(failures[-1].reason, f"every worker failed ({detail})")

    async def _with_retries(self, worker: Worker, body: dict[str, Any]) -> dict[str, Any]:
        o = self.options
        for attempt in range(o.retries + 1):
            try:
                data = await self._post(worker, body)
                worker.breaker.record_success()
                return data
            except _Retryable as error:
                worker.breaker.record_failure()
                if error.dead:
                    worker.healthy = False  # until the next /health probe says otherwise
                if error.dead or attempt == o.retries or not worker.breaker.allows():
                    raise
                delay = min(o.backoff_base_s * 2**attempt, o.backoff_max_s)
                await asyncio.sleep(delay + random.uniform(0, o.backoff_base_s))
        raise AssertionError("unreachable")

    async def _post(self, worker: Worker, body: dict[str, Any]) -> dict[str, Any]:
        started = time.perf_counter()
        try:
            data = await self._exchange(worker, body)
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

    async def _exchange(self, worker: Worker, body: dict[str, Any]) -> dict[str, Any]:
        assert self._transport is not None
        # Straight to the shared client's transport: chat calls need none of the client's
        # cookie, redirect or auth handling, which cost more CPU than the HTTP exchange.
        request = httpx.Request(
            "POST",
            worker.chat_url,
            headers=self._headers,
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
        if status == 429 or status >= 500:
            raise _Retryable(f"http_{status}: server error", reason="backend_error", dead=False)
        if status >= 400:  # our request is wrong: retrying or failing over will not help
            raise BackendError(
                "backend_error", f"HTTP {status} from {worker.url}: {response.text[:300]}"
            )
        try:
            data: dict[str, Any] = orjson.loads(response.content)
        except orjson.JSONDecodeError as error:
            raise _Retryable(
                "bad_json: response is not JSON", reason="backend_error", dead=False
            ) from error
        return data

    def _completions(self, data: dict[str, Any], n: int, *, markers: bool) -> list[Completion]:
        choices = sorted(data.get("choices") or [], key=lambda c: c.get("index", 0))
        out = []
        for choice in choices[:n]:
            message = choice.get("message") or {}
            text = message.get("content") or ""
            if markers and text.strip():
                text = f"<JSON_START>\n{text}\n<JSON_END>"  # constrained output is the JSON alone
            out.append(Completion(text=text, finish_reason=choice.get("finish_reason")))
        return out
