"""Headers that keep browsers from misreading or framing what the service returns.

Every response says `nosniff`, `no-referrer` and may not be framed. Pages get a strict Content
Security Policy (same-origin scripts, styles and images only); the interactive docs load Swagger
UI and ReDoc from jsDelivr, so theirs allows that CDN (turn the docs off in production with
PGENRM_DOCS_ENABLED=false).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_ALWAYS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
]
_STRICT = (
    b"default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    b"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_DOCS = (
    b"default-src 'self'; img-src 'self' data: https://fastapi.tiangolo.com; "
    b"style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; "
    b"font-src https://fonts.gstatic.com; "
    b"script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; worker-src blob:; "
    b"object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
DOCS_PATHS = ("/docs", "/docs/oauth2-redirect", "/redoc")


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        policy = _DOCS if scope.get("path") in DOCS_PATHS else _STRICT

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(n, v) for n, v in _ALWAYS if n not in present]
                if b"content-security-policy" not in present:
                    extra.append((b"content-security-policy", policy))
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
