"""The one exception -> status mapper. Every error response carries the same envelope."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from service.api.middleware import CLIENT_CLOSED, REFUSED_KEY
from service.core.errors import (
    InvalidRequest,
    MalformedBody,
    MethodNotAllowed,
    NotFound,
    PgenrmError,
)

log = logging.getLogger("pgenrm.api")


class ErrorBody(BaseModel):
    type: str
    message: str
    field: str | None
    details: list[dict[str, Any]]


class ErrorEnvelope(BaseModel):
    """The body of every error response."""

    error: ErrorBody


# What every route behind an API key can answer.
KEYED = {
    401: "No API key, or an unknown one (`Authorization: Bearer <key>`)",
    403: "The key lacks this endpoint's scope",
    429: "Over the key's request rate, cost budget or concurrency bound (see Retry-After)",
}

# What every route that takes a JSON body can answer (`service.api._json_route`).
JSON_BODY = {
    400: "Body is not JSON",
    413: "Body too large",
    415: "Body is not `application/json`",
}


def responses(codes: dict[int, str]) -> dict[int | str, dict[str, object]]:
    """OpenAPI `responses=` for a route: each status it can return, with the envelope."""
    return {code: {"model": ErrorEnvelope, "description": text} for code, text in codes.items()}


def field_path(loc: Sequence[int | str]) -> str:
    """("body", "history", 0, "chosen") -> "history[0].chosen"."""
    out = ""
    for part in loc:
        if part == "body" and not out:
            continue
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "body"


def _from_validation(error: RequestValidationError) -> PgenrmError:
    return validation_error(error.errors())


def validation_error(problems: Sequence[Any], prefix: str = "") -> PgenrmError:
    """pydantic's errors as one `invalid_request` (or `malformed_body`) naming the field;
    `prefix` places them inside a larger body (e.g. `items[3]`)."""
    if any(p.get("type") == "json_invalid" for p in problems):
        detail = next(p for p in problems if p.get("type") == "json_invalid")
        ctx = detail.get("ctx") or {}
        return MalformedBody(
            f"the request body is not valid JSON: {ctx.get('error', 'decode error')}"
        )
    details = []
    for p in problems:
        field = field_path(p.get("loc", ()))
        if prefix:
            field = prefix if field == "body" else f"{prefix}.{field}"
        message = str(p.get("msg", "invalid")).removeprefix("Value error, ")
        if p.get("type") == "extra_forbidden":
            message = "unknown field (check the spelling; unknown keys are rejected)"
        details.append({"field": field, "message": message, "type": p.get("type")})
    first = details[0] if details else {"field": "body", "message": "invalid request"}
    more = f" (and {len(details) - 1} more problem(s))" if len(details) > 1 else ""
    return InvalidRequest(
        f"`{first['field']}`: {first['message']}{more}", field=first["field"], details=details
    )


def _respond(error: PgenrmError) -> JSONResponse:
    return JSONResponse(error.envelope(), status_code=error.status, headers=error.headers or None)


def install_error_handlers(app: FastAPI) -> None:
    async def on_domain(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, PgenrmError)
        return _respond(exc)

    async def on_validation(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return _respond(_from_validation(exc))

    async def on_http(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 404:
            return _respond(NotFound("no such endpoint; see /docs"))
        if exc.status_code == 405:
            return _respond(MethodNotAllowed(f"method not allowed: {exc.detail}"))
        error = PgenrmError(str(exc.detail))
        error.status, error.type = exc.status_code, "http_error"
        return _respond(error)

    async def on_disconnect(request: Request, exc: Exception) -> JSONResponse:
        """The body stopped: the client left, or the HTTP layer refused it (413, 408) and
        answered itself. Nobody reads this answer; it only keeps the catch-all (a traceback
        and a 500) out of it. MetricsMiddleware counts it and writes its one log line."""
        assert isinstance(exc, ClientDisconnect)
        refused = request.scope.get(REFUSED_KEY)
        error = PgenrmError("the client disconnected before the request body was read")
        error.status = refused if isinstance(refused, int) else CLIENT_CLOSED
        error.type = "client_disconnected"
        return _respond(error)

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        route = getattr(request.scope.get("route"), "path", "unmatched")  # never the raw path:
        log.exception("unhandled error on %s %s", request.method, route)  # it holds user ids
        return _respond(PgenrmError("internal error; the incident was logged"))

    app.add_exception_handler(PgenrmError, on_domain)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(ClientDisconnect, on_disconnect)
    app.add_exception_handler(Exception, on_unexpected)
