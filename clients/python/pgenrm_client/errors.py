"""What a call can raise. Every exception is a `PgenrmError`; the subclass says whose fault it is.

- `RequestError` (4xx other than 429): the request is wrong or names something absent. Never
  retried: sending it again gives the same answer. `UnknownUserError` is the 404 for a user
  with no stored history.
- `ServerError` (5xx, 429, or no answer at all): the service could not answer now. Retried
  until the attempts or the deadline run out; then the last one is raised.
  `UnavailableError` is the "try again later" kind: 503, 429, or no HTTP answer (connection
  refused or dropped, timeouts), with `status` None for the last.
- `BadResponseError`: an answer that is not the JSON the API promises. Never retried.
- `NotScoredError`: (trainer adapters) a sample got no reward and no fallback is set.
- `DeadlineExceeded`: the call's total deadline ran out (also a `TimeoutError`); the error
  that the last attempt got is `last_error` (and `__cause__`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class PgenrmError(Exception):
    """A failed call: the server's error envelope (`type`, `message`, `field`, `details`) and
    the HTTP `status` (None when no HTTP answer came back)."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        type: str = "error",
        field: str | None = None,
        details: list[dict[str, Any]] | None = None,
        retry_after: float | None = None,
        attempts: int = 1,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.type = type
        self.field = field
        self.details: list[dict[str, Any]] = details or []
        self.retry_after = retry_after
        self.attempts = attempts

    @property
    def is_client_error(self) -> bool:
        """4xx other than 429: the caller must change the request."""
        return self.status is not None and 400 <= self.status < 500 and self.status != 429

    def __reduce__(self) -> tuple[Any, ...]:
        # keeps the attributes across pickling (Ray and multiprocessing ship exceptions)
        return (_rebuild, (type(self), self.message, dict(self.__dict__)))

    def __str__(self) -> str:
        where = f" (field `{self.field}`)" if self.field else ""
        status = "no answer" if self.status is None else str(self.status)
        tries = f" after {self.attempts} attempts" if self.attempts > 1 else ""
        return f"{status} {self.type}: {self.message}{where}{tries}"


class RequestError(PgenrmError):
    """4xx (not 429): invalid request, unknown user, body too large, unauthorised."""


class UnknownUserError(RequestError):
    """404 `unknown_user`: no `history` sent and none stored for this user."""


class ServerError(PgenrmError):
    """5xx or 429: the service failed or refused for now (retried)."""


class UnavailableError(ServerError):
    """503 or 429 (see `retry_after`), or no HTTP answer at all (`status` is None)."""


class BadResponseError(PgenrmError):
    """The answer is not the JSON the API promises (never retried)."""


class NotScoredError(PgenrmError):
    """A trainer adapter got no reward for a sample (the service could not score it) and has
    no fallback reward to use instead (raised rather than inventing a number)."""


class DeadlineExceeded(PgenrmError, TimeoutError):
    """The call's total deadline (over every attempt and wait) ran out."""

    def __init__(self, message: str, *, last_error: PgenrmError | None, attempts: int) -> None:
        super().__init__(
            message,
            status=None if last_error is None else last_error.status,
            type="deadline_exceeded",
            attempts=attempts,
        )
        self.last_error = last_error


def _rebuild(cls: type[PgenrmError], message: str, state: dict[str, Any]) -> PgenrmError:
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(state)
    return error


def from_response(status: int, envelope: object, retry_after: float | None) -> PgenrmError:
    """The exception for an HTTP error answer (`envelope` is its parsed JSON, if any)."""
    error: Mapping[str, Any] = {}
    if isinstance(envelope, Mapping) and isinstance(envelope.get("error"), Mapping):
        error = envelope["error"]
    kind = str(error.get("type") or "http_error")
    message = str(error.get("message") or f"HTTP {status}")
    field = error.get("field")
    details = error.get("details")
    args: dict[str, Any] = {
        "status": status,
        "type": kind,
        "field": field if isinstance(field, str) else None,
        "details": [d for d in details if isinstance(d, dict)] if isinstance(details, list) else [],
        "retry_after": retry_after,
    }
    if status == 404 and kind == "unknown_user":
        return UnknownUserError(message, **args)
    if status in (429, 503):
        return UnavailableError(message, **args)
    if status >= 500:
        return ServerError(message, **args)
    if status >= 400:
        return RequestError(message, **args)
    return BadResponseError(f"unexpected HTTP {status}: {message}", **args)
