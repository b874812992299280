"""`AsyncPgenrmClient`: the asyncio client (one shared `httpx.AsyncClient`).

Use one per event loop: its connections belong to the loop that first used them.
`max_in_flight` bounds the attempts in flight at once (waits between retries do not hold a
slot). Keep it above the largest server-side group you send members of from this client, or
the members beyond it wait for slots that only free when the group closes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, cast

import httpx

from pgenrm_client import _api
from pgenrm_client._retry import Attempts, Call, RetryPolicy
from pgenrm_client.client import make_policy
from pgenrm_client.types import (
    AttributeValue,
    BatchResponse,
    HistoryPair,
    RewardResponse,
    ScoreOptions,
    ScoreRequest,
    ScoreResponse,
    UserDeleted,
    UserInfo,
)

if TYPE_CHECKING:
    from typing import Self

    from typing_extensions import Unpack


class AsyncPgenrmClient:
    """The async twin of `PgenrmClient` (same arguments and methods), plus `max_in_flight`."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout: float = 180.0,
        connect_timeout: float = 5.0,
        retries: int = 5,
        deadline_s: float | None = 300.0,
        retry: RetryPolicy | None = None,
        max_in_flight: int | None = 64,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if max_in_flight is not None and max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1 (or None: no limit)")
        self.base_url = _api.base_url(base_url)
        self.policy = make_policy(retry, timeout, connect_timeout, retries, deadline_s)
        self.max_in_flight = max_in_flight
        self._slots = asyncio.Semaphore(max_in_flight) if max_in_flight else None
        limits = httpx.Limits(
            max_connections=max_in_flight,
            max_keepalive_connections=max_in_flight or 20,
        )
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            headers=_api.default_headers(api_key),
            transport=transport,
            limits=limits,
            timeout=httpx.Timeout(self.policy.read_timeout_s, connect=connect_timeout),
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    @property
    def closed(self) -> bool:
        return self._http.is_closed

    @contextlib.asynccontextmanager
    async def _slot(self) -> AsyncIterator[None]:
        if self._slots is None:
            yield
            return
        async with self._slots:
            yield

    async def send(self, call: Call) -> Any:
        """Send `call` under the retry policy; its answer's JSON."""
        attempts = Attempts(self.policy, call)
        content, headers = call.content(), call.request_headers()
        if content is not None:
            headers["Content-Type"] = "application/json"
        while True:
            timeout = attempts.begin()
            try:
                async with self._slot():
                    response = await self._http.request(
                        call.method, call.path, content=content, headers=headers, timeout=timeout
                    )
            except httpx.TransportError as exc:
                wait = attempts.failed(exc)
            else:
                if response.is_success:
                    return attempts.answered(response)
                wait = attempts.refused(response)
            await asyncio.sleep(wait)

    async def score(
        self,
        user_id: str,
        candidates: Sequence[str],
        *,
        idempotency_key: str | None = None,
        **options: Unpack[ScoreOptions],
    ) -> ScoreResponse:
        body = _api.score_request(user_id, candidates, **options)
        return cast(ScoreResponse, await self.send(_api.score(body, idempotency_key)))

    async def score_batch(
        self, items: Sequence[ScoreRequest], *, idempotency_key: str | None = None
    ) -> BatchResponse:
        return cast(BatchResponse, await self.send(_api.score_batch(items, idempotency_key)))

    async def get_reward(
        self,
        queries: Sequence[str],
        prompts: Sequence[str],
        labels: Sequence[str] | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> RewardResponse:
        call = _api.get_reward(queries, prompts, labels, idempotency_key)
        return cast(RewardResponse, await self.send(call))

    async def put_user(
        self,
        user_id: str,
        history: Sequence[HistoryPair] = (),
        attributes: Mapping[str, AttributeValue] | None = None,
    ) -> UserInfo:
        return cast(UserInfo, await self.send(_api.put_user(user_id, history, attributes)))

    async def get_user(self, user_id: str) -> UserInfo:
        return cast(UserInfo, await self.send(_api.get_user(user_id)))

    async def patch_user(
        self,
        user_id: str,
        append: Sequence[HistoryPair] = (),
        attributes: Mapping[str, AttributeValue | None] | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> UserInfo:
        call = _api.patch_user(user_id, append, attributes, idempotency_key)
        return cast(UserInfo, await self.send(call))

    async def delete_user(self, user_id: str) -> UserDeleted:
        return cast(UserDeleted, await self.send(_api.delete_user(user_id)))

    async def health(self) -> dict[str, Any]:
        return cast(dict[str, Any], await self.send(_api.health()))

    async def ready(self) -> dict[str, Any]:
        return cast(dict[str, Any], await self.send(_api.ready()))
