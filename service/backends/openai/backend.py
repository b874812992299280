"""The OpenAI-compatible HTTP backend: P-GenRM-8B on vLLM in production (any compatible server).

Ind-N is one `/v1/chat/completions` request with `n=N`, so the server shares the prefill; a
server that returns fewer choices (llama.cpp ignores `n`) gets the missing samples asked for
concurrently, one each, counted as top-ups. Requests for one routing key (the user, or the
neighbour whose history a prototype-level sample uses) go to the same worker for its prefix
cache, failing over along the key's rendezvous order (`_calls`: retries, failover, each
worker's capabilities). The gateway never imports vllm. `complete` sends other tasks' chats
(the critic's) the same way.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from service.backends.openai._calls import Calls
from service.backends.openai._transport import LeanTransport
from service.backends.openai.capabilities import Capabilities, Dialect, model_label
from service.backends.openai.schema import Schema, chain_schema, scores_schema
from service.backends.openai.workers import Worker, WorkerPool, normalise_url
from service.core.config import WorkerCapabilities
from service.engine.backend import Backend, BackendError, Completion, SampleGroup
from service.engine.prompts import build_messages

log = logging.getLogger("pgenrm.openai")
Structured = Literal["off", "auto", "structured_outputs", "response_format", "json_object"]


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
    structured_schema: Literal["chain", "scores"] = "chain"  # what constrained output holds
    breaker_threshold: int = 5
    breaker_cooldown_s: float = 15.0
    health_interval_s: float = 5.0
    probe_timeout_s: float = 5.0  # a health or /v1/models probe's answer
    # Per worker URL (normalised, or "*"): capabilities set instead of detected.
    capabilities: Mapping[str, WorkerCapabilities] = field(default_factory=dict)
    affinity_header: str = "x-user-id"
    affinity_key: bytes | None = None  # None: a built-in key (set one in production)

    def capabilities_of(self, url: str) -> Capabilities:
        """A worker's starting capabilities: its own settings over "*"'s, None detected."""
        given = {normalise_url(u): c for u, c in self.capabilities.items() if u != "*"}
        caps = Capabilities()
        for source in (self.capabilities.get("*"), given.get(url)):
            if source is not None:
                caps.health = source.health or caps.health
                caps.n = source.n if source.n is not None else caps.n
                caps.dialect = source.dialect or caps.dialect
        return caps


class OpenAIBackend(Backend):
    name = "openai"

    def __init__(self, options: OpenAIOptions) -> None:
        self.options = options
        self._client: httpx.AsyncClient | None = None
        self._transport: LeanTransport | None = None
        self._calls: Calls | None = None
        self.pool: WorkerPool | None = None
        self._gate = asyncio.Semaphore(options.max_concurrency)
        self._headers = {"Content-Type": "application/json"}
        if options.api_key:
            self._headers["Authorization"] = f"Bearer {options.api_key}"

    @property
    def model(self) -> str:
        """The model as shown: a file path listed as the id is shown as its file name."""
        known = self._known_model()
        return model_label(known) if known else "unknown (not discovered yet)"

    def _known_model(self) -> str | None:
        """The configured model, else the first one a worker listed at /v1/models (the id
        requests must carry, file path or not)."""
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
        return {"workers": [w.describe() for w in workers]}

    def retry_after(self) -> int:
        return self.pool.retry_after() if self.pool else 5

    @property
    def dialect(self) -> Dialect | None:
        """The dialect tried first for constrained output; None: detect ("auto")."""
        mode = self.options.structured
        return None if mode in ("off", "auto") else mode  # type: ignore[return-value]

    async def start(self) -> None:
        if self._client is not None:
            return
        o = self.options
        self._transport = LeanTransport(max_connections=o.max_connections)
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(o.read_timeout_s, connect=o.connect_timeout_s),
            transport=self._transport,
        )
        pool = WorkerPool(
            list(o.urls),
            self._client,
            breaker_threshold=o.breaker_threshold,
            breaker_cooldown_s=o.breaker_cooldown_s,
            health_interval_s=o.health_interval_s,
            probe_timeout_s=o.probe_timeout_s,
            headers=self._headers,
            capabilities=o.capabilities_of,
            metrics=self.metrics,
        )
        calls = Calls(
            pool,
            self._transport,
            o,
            dialect=self.dialect,
            headers=self._headers,
            metrics=self.metrics,
        )
        # Published once probed: until then the workers' health is unknown, and a request
        # routed meanwhile would go to workers that are down (ready() says "loading" instead).
        await pool.probe_all()
        self.pool, self._calls = pool, calls
        pool.start()

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.close()
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def request_body(self, group: SampleGroup) -> dict[str, Any]:
        """The chat body for a group, without the structured-output fields (those depend on
        the worker that takes it: `chain_request`)."""
        o = self.options
        return {
            "model": self._known_model() or self.model,
            "messages": build_messages(group.history, group.task),
            "n": group.n,
            "temperature": o.temperature,
            "top_p": o.top_p,
            "max_tokens": o.max_tokens,
            "seed": group.seed % (2**31),
        }

    def chain_schema(self, group: SampleGroup) -> Schema | None:
        o, k = self.options, len(group.task.candidates)
        if o.structured == "off":
            return None
        if o.structured_schema == "scores":
            return Schema("overall_scores", scores_schema(k))
        return Schema("evaluation_chain", chain_schema(k))

    async def generate(self, group: SampleGroup) -> list[Completion]:
        # Route by whose history fills the prompt: that worker's prefix cache holds it.
        key = group.user_id if group.level == "ind" else f"{group.user_id}\x1f{group.source}"
        body, schema = self.request_body(group), self.chain_schema(group)
        data, worker = await self._send(body, key, schema)
        completions = self._completions(data, group.n, markers=schema is not None)
        missing = group.n - len(completions)
        if missing > 0:
            completions += await self._top_up(body, key, schema, missing, worker)
        return completions

    async def _top_up(
        self, body: dict[str, Any], key: str, schema: Schema | None, missing: int, worker: Worker
    ) -> list[Completion]:
        """The samples a server did not return, asked for concurrently, one per request (each
        with its own seed); those that fail are left out, and the engine counts them."""
        if self.metrics is not None:
            self.metrics.backend_topups.labels(worker.url).inc(missing)
        seeds = [(body["seed"] + 7919 * (i + 1)) % (2**31) for i in range(missing)]
        answers = await asyncio.gather(
            *(self._send({**body, "n": 1, "seed": seed}, key, schema) for seed in seeds),
            return_exceptions=True,
        )
        out: list[Completion] = []
        for answer in answers:
            if isinstance(answer, BackendError):
                log.warning("a top-up sample failed: %s", answer.detail)
            elif isinstance(answer, BaseException):
                raise answer
            else:
                out += self._completions(answer[0], 1, markers=schema is not None)
        return out

    async def complete(
        self,
        messages: list[dict[str, str]],
        *,
        key: str,
        temperature: float = 0.0,
        seed: int = 0,
        schema: Schema | None = None,
    ) -> str:
        """One chat completion for another task than a chain (the critic's extraction and
        matching), through the same routing, retries and failover; its text as written."""
        o = self.options
        body: dict[str, Any] = {
            "model": self._known_model() or self.model,
            "messages": messages,
            "n": 1,
            "temperature": temperature,
            "top_p": o.top_p,
            "max_tokens": o.max_tokens,
            "seed": seed % (2**31),
        }
        data, _ = await self._send(body, key, schema if o.structured != "off" else None)
        choices = self._completions(data, 1, markers=False)
        return choices[0].text if choices else ""

    async def _send(
        self, body: dict[str, Any], key: str, schema: Schema | None
    ) -> tuple[dict[str, Any], Worker]:
        if self._calls is None:
            raise BackendError("unavailable", "the OpenAI backend is not started")
        if self._known_model() is None:
            raise BackendError("unavailable", "no worker has listed its model at /v1/models yet")
        async with self._gate:
            return await self._calls.send(body, key, schema)

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
