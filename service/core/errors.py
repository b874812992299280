"""Domain errors and the one mapping from error to HTTP status and envelope.

Every error the API returns has the same body:
`{"error": {"type": ..., "message": ..., "field": ... | null, "details": [...]}}`.
Services raise these exceptions; only `service.api.errors` turns them into responses.
"""

from __future__ import annotations

from typing import Any


class PgenrmError(Exception):
    status = 500
    type = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.details = details or []
        self.headers = headers or {}

    def envelope(self) -> dict[str, Any]:
        return {
            "error": {
                "type": self.type,
                "message": self.message,
                "field": self.field,
                "details": self.details,
            }
        }


class InvalidRequest(PgenrmError):
    status = 422
    type = "invalid_request"


class MalformedBody(PgenrmError):
    status = 400
    type = "malformed_body"


class PayloadTooLarge(PgenrmError):
    status = 413
    type = "payload_too_large"


class NotFound(PgenrmError):
    status = 404
    type = "not_found"


class UnknownUser(NotFound):
    """A score without `history` for a user the store does not hold."""

    type = "unknown_user"


class MethodNotAllowed(PgenrmError):
    status = 405
    type = "method_not_allowed"


class Conflict(PgenrmError):
    """The request is valid but the service is not set up for it (e.g. no artefact configured)."""

    status = 409
    type = "conflict"


class Unauthorized(PgenrmError):
    """No key, or one the server does not know."""

    status = 401
    type = "unauthorized"

    def __init__(self, message: str, **kwargs: Any) -> None:
        super().__init__(message, headers={"WWW-Authenticate": "Bearer"}, **kwargs)


class Forbidden(PgenrmError):
    """A known key without the scope the endpoint needs."""

    status = 403
    type = "forbidden"


class UnsupportedMediaType(PgenrmError):
    status = 415
    type = "unsupported_media_type"


class TooManyRequests(PgenrmError):
    """Over a key's request rate, cost budget or concurrency bound: retry after the header."""

    status = 429
    type = "rate_limited"

    def __init__(self, message: str, *, retry_after: int, **kwargs: Any) -> None:
        super().__init__(message, headers={"Retry-After": str(max(1, retry_after))}, **kwargs)


class Unavailable(PgenrmError):
    """Not ready yet, or every backend worker is down: try again later."""

    status = 503
    type = "unavailable"

    def __init__(self, message: str, *, retry_after: int = 5, **kwargs: Any) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after)}, **kwargs)


class ScoringFailed(PgenrmError):
    """Every sample failed: the service reports it instead of inventing a score."""

    status = 502
    type = "scoring_failed"
