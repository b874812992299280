"""A route class that takes only JSON bodies and enforces the body-size limit.

Only `application/json` (or a `+json` type) is read: the content types a browser may send
cross-site without a CORS preflight (`text/plain`, forms) are refused with 415, so a page on
another origin cannot make a visitor's browser post to the service. With curl, send
`-H 'Content-Type: application/json'` (or use `--json`). Bodies over `max_body_bytes` get a 413
before any parsing (the server also refuses them while they stream in).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from service.api.deps import app_state
from service.core.errors import PayloadTooLarge, UnsupportedMediaType


def is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


class JSONBodyRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            if request.method in ("POST", "PUT", "PATCH"):
                content_type = request.headers.get("content-type", "")
                if not is_json(content_type):
                    raise UnsupportedMediaType(
                        "send the body as JSON with `Content-Type: application/json` (got "
                        f"{content_type.split(';', 1)[0][:100] or 'none'})",
                        field="body",
                    )
                limit = app_state(request).settings.max_body_bytes
                declared = request.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > limit:
                    raise _too_large(int(declared), limit)
                body = await request.body()
                if len(body) > limit:
                    raise _too_large(len(body), limit)
            return await handler(request)

        return route


def _too_large(size: int, limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"request body of {size:,} bytes exceeds the limit of {limit:,} (PGENRM_MAX_BODY_BYTES)",
        field="body",
    )
