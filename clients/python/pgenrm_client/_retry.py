"""The retry policy, shared by the sync and async clients (they only do the I/O and the waits).

One logical call = one `Call`: its idempotency key is fixed when the call is built, so every
attempt carries the same key and the server answers a retry of work it already did from its
record instead of scoring twice.

Retried: connect errors, timeouts (connect, read, write, pool), dropped connections, HTTP 429
(waiting `Retry-After`, capped) and 5xx. Never retried: other 4xx, and an answer that does not
parse. Every write carries its idempotency key (PUT and DELETE are idempotent by themselves),
so sending it again after an unclear failure never applies it twice.
Waits are `min(backoff_s * 2**n, backoff_cap_s) + uniform(0, jitter_s)`; the total deadline
covers every attempt and wait, and each attempt's timeouts are clipped to what is left of it.
"""

from __future__ import annotations

import email.utils
import json
import math
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from pgenrm_client.errors import (
    BadResponseError,
    DeadlineExceeded,
    PgenrmError,
    UnavailableError,
    from_response,
)

# No answer, but sending again is safe when the server can deduplicate (or did not get it).
_TRANSIENT = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 6
    """Attempts per call, the first included (1: never retry)."""
    backoff_s: float = 0.5
    backoff_cap_s: float = 30.0
    jitter_s: float = 0.5
    retry_after_cap_s: float = 60.0
    """The longest `Retry-After` honoured (a longer one is waited this long)."""
    deadline_s: float | None = 300.0
    """Total time for one call, every attempt and wait included (None: no limit)."""
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 180.0
    """Per attempt; a group member waits for its group (PGENRM_GROUP_WAIT_S) before answering."""

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")
        if min(self.backoff_s, self.backoff_cap_s, self.jitter_s, self.retry_after_cap_s) < 0:
            raise ValueError("backoff, jitter and caps must not be negative")
        if self.deadline_s is not None and self.deadline_s <= 0:
            raise ValueError("deadline_s must be positive (or None)")

    def delay(self, retry: int, retry_after: float | None, rng: Callable[[], float]) -> float:
        """The wait before retry number `retry` (0 = the first retry)."""
        jitter = self.jitter_s * rng()
        if retry_after is not None:
            return min(retry_after, self.retry_after_cap_s) + jitter
        return min(self.backoff_s * 2.0**retry, self.backoff_cap_s) + jitter


@dataclass(frozen=True)
class Call:
    """One logical request, however many attempts it takes."""

    method: str
    path: str
    body: Any = None
    idempotency_key: str | None = None
    retry: bool = True
    headers: Mapping[str, str] = field(default_factory=dict)

    def request_headers(self) -> dict[str, str]:
        headers = dict(self.headers)
        if self.idempotency_key is not None:
            headers["Idempotency-Key"] = self.idempotency_key
        return headers

    def content(self) -> bytes | None:
        if self.body is None:
            return None
        return json.dumps(self.body, ensure_ascii=False, allow_nan=False).encode()


def retry_after_s(value: str | None) -> float | None:
    """`Retry-After` as seconds: delta-seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class Attempts:
    """The decisions of one call's retry loop; the clients do the sending and the waiting."""

    def __init__(
        self,
        policy: RetryPolicy,
        call: Call,
        *,
        clock: Callable[[], float] = time.monotonic,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.policy = policy
        self.call = call
        self.clock = clock
        self.rng = rng
        self.started = clock()
        self.count = 0
        self.last_error: PgenrmError | None = None

    def remaining(self) -> float:
        if self.policy.deadline_s is None:
            return math.inf
        return self.policy.deadline_s - (self.clock() - self.started)

    def begin(self) -> httpx.Timeout:
        """Start an attempt: its timeouts, clipped to the deadline (raises when none is left)."""
        left = self.remaining()
        if left <= 0:
            raise self._deadline()
        self.count += 1
        read = min(self.policy.read_timeout_s, left)
        return httpx.Timeout(read, connect=min(self.policy.connect_timeout_s, left), pool=read)

    def answered(self, response: httpx.Response) -> Any:
        """A 2xx answer's JSON (raises `BadResponseError` when it is not JSON)."""
        try:
            return response.json()
        except ValueError as error:
            raise BadResponseError(
                f"{self.call.method} {self.call.path} answered {response.status_code} with a "
                f"body that is not JSON: {response.text[:200]!r}",
                status=response.status_code,
                type="bad_response",
                attempts=self.count,
            ) from error

    def refused(self, response: httpx.Response) -> float:
        """After an HTTP error answer: the wait before the next attempt, or raise."""
        try:
            envelope: object = response.json()
        except ValueError:
            envelope = None
        wait = retry_after_s(response.headers.get("Retry-After"))
        error = from_response(response.status_code, envelope, wait)
        status = response.status_code
        return self._next(error, status == 429 or status >= 500, wait)

    def failed(self, exc: httpx.TransportError) -> float:
        """After no HTTP answer: the wait before the next attempt, or raise."""
        error = UnavailableError(
            f"{self.call.method} {self.call.path}: {type(exc).__name__}: {exc}".rstrip(": "),
            type="connection_failed",
        )
        error.__cause__ = exc
        return self._next(error, isinstance(exc, _TRANSIENT), None)

    def _next(self, error: PgenrmError, retryable: bool, retry_after: float | None) -> float:
        error.attempts = self.count
        self.last_error = error
        if not retryable or not self.call.retry or self.count >= self.policy.attempts:
            raise error
        wait = self.policy.delay(self.count - 1, retry_after, self.rng)
        if wait >= self.remaining():
            raise self._deadline(wait)
        return wait

    def _deadline(self, wait: float | None = None) -> DeadlineExceeded:
        why = "" if wait is None else f" (the next attempt would start in {wait:.1f} s)"
        last = f"; last error: {self.last_error}" if self.last_error else ""
        error = DeadlineExceeded(
            f"{self.call.method} {self.call.path}: deadline of {self.policy.deadline_s} s "
            f"exceeded after {self.count} attempt(s){why}{last}",
            last_error=self.last_error,
            attempts=self.count,
        )
        error.__cause__ = self.last_error
        return error
