"""A route class that reads every POST body as JSON and enforces the body-size limit.

`curl -d @file.json` sends `application/x-www-form-urlencoded`; FastAPI would then refuse the
body. Reward clients are often that terse, so the body is treated as JSON whatever the header,
and bodies over `max_body_bytes` get a 413 before any parsing.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.types import Receive, Scope

from service.api.deps import get_settings
from service.core.errors import PayloadTooLarge


class _BufferedJSONRequest(Request):
    def __init__(self, scope: Scope, receive: Receive, body: bytes) -> None:
        super().__init__(scope, receive)
        self._buffered = body

    async def body(self) -> bytes:
        return self._buffered


class JSONBodyRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            limit = get_settings(request).max_body_bytes
            declared = request.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > limit:
                raise _too_large(int(declared), limit)
            body = await request.body()
            if len(body) > limit:
                raise _too_large(len(body), limit)
            headers = [(k, v) for k, v in request.scope["headers"] if k != b"content-type"]
            headers.append((b"content-type", b"application/json"))
            scope = dict(request.scope, headers=headers)
            return await handler(_BufferedJSONRequest(scope, request.receive, body))

        return route


def _too_large(size: int, limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"request body of {size:,} bytes exceeds the limit of {limit:,} (PGENRM_MAX_BODY_BYTES)",
        field="body",
    )
