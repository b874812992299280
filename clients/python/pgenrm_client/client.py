"""`PgenrmClient`: the synchronous client (one shared `httpx.Client`, thread-safe)."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, cast

import httpx

from pgenrm_client import _api
from pgenrm_client._retry import Attempts, Call, RetryPolicy
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


def make_policy(
    policy: RetryPolicy | None,
    timeout: float,
    connect_timeout: float,
    retries: int,
    deadline_s: float | None,
) -> RetryPolicy:
    if policy is not None:
        return policy
    return RetryPolicy(
        attempts=retries + 1,
        deadline_s=deadline_s,
        connect_timeout_s=connect_timeout,
        read_timeout_s=timeout,
    )


class PgenrmClient:
    """Calls a pgenrm service, retrying what is safe to retry (see `pgenrm_client._retry`).

    `timeout` is each attempt's read/write timeout, `retries` the retries after the first
    attempt, `deadline_s` the limit on one call with all its attempts and waits (None: none);
    `retry` replaces all three (and the backoff) with a `RetryPolicy`. `api_key` (default: env
    PGENRM_API_KEY) is sent as `Authorization: Bearer`. `transport` is handed to httpx."""

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
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = _api.base_url(base_url)
        self.policy = make_policy(retry, timeout, connect_timeout, retries, deadline_s)
        self._http = httpx.Client(
            base_url=self.base_url,
            headers=_api.default_headers(api_key),
            transport=transport,
            timeout=httpx.Timeout(self.policy.read_timeout_s, connect=connect_timeout),
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def send(self, call: Call) -> Any:
        """Send `call` under the retry policy; its answer's JSON."""
        attempts = Attempts(self.policy, call)
        content, headers = call.content(), call.request_headers()
        if content is not None:
            headers["Content-Type"] = "application/json"
        while True:
            timeout = attempts.begin()
            try:
                response = self._http.request(
                    call.method, call.path, content=content, headers=headers, timeout=timeout
                )
            except httpx.TransportError as exc:
                wait = attempts.failed(exc)
            else:
                if response.is_success:
                    return attempts.answered(response)
                wait = attempts.refused(response)
            time.sleep(wait)

    # -- scoring --------------------------------------------------------------------------

    def score(
        self,
        user_id: str,
        candidates: Sequence[str],
        *,
        idempotency_key: str | None = None,
        **options: Unpack[ScoreOptions],
    ) -> ScoreResponse:
        """Score 1..K candidates for one user (`prompt=` or `context=`; see `ScoreOptions`)."""
        body = _api.score_request(user_id, candidates, **options)
        return cast(ScoreResponse, self.send(_api.score(body, idempotency_key)))

    def score_batch(
        self, items: Sequence[ScoreRequest], *, idempotency_key: str | None = None
    ) -> BatchResponse:
        """Many score requests in one call; each item answers on its own (`outcome`)."""
        return cast(BatchResponse, self.send(_api.score_batch(items, idempotency_key)))

    def get_reward(
        self,
        queries: Sequence[str],
        prompts: Sequence[str],
        labels: Sequence[str] | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> RewardResponse:
        """OpenRLHF's `/get_reward`: `labels` name the user (JSON object or plain id)."""
        call = _api.get_reward(queries, prompts, labels, idempotency_key)
        return cast(RewardResponse, self.send(call))

    # -- users ----------------------------------------------------------------------------

    def put_user(
        self,
        user_id: str,
        history: Sequence[HistoryPair] = (),
        attributes: Mapping[str, AttributeValue] | None = None,
    ) -> UserInfo:
        return cast(UserInfo, self.send(_api.put_user(user_id, history, attributes)))

    def get_user(self, user_id: str) -> UserInfo:
        return cast(UserInfo, self.send(_api.get_user(user_id)))

    def patch_user(
        self,
        user_id: str,
        append: Sequence[HistoryPair] = (),
        attributes: Mapping[str, AttributeValue | None] | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> UserInfo:
        call = _api.patch_user(user_id, append, attributes, idempotency_key)
        return cast(UserInfo, self.send(call))

    def delete_user(self, user_id: str) -> UserDeleted:
        return cast(UserDeleted, self.send(_api.delete_user(user_id)))

    # -- probes ---------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """`/healthz` (one attempt)."""
        return cast(dict[str, Any], self.send(_api.health()))

    def ready(self) -> dict[str, Any]:
        """`/readyz` (one attempt; raises `UnavailableError` while loading)."""
        return cast(dict[str, Any], self.send(_api.ready()))
