"""Pure ASGI middleware: request ids, and the count, time, gauge and access line of every request.

No line or label carries a path: routes are templates (`/v1/users/{user_id}`, never the id).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from re import Pattern

from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.core import logs
from service.core.metrics import Metrics

# Scope keys shared with the HTTP layer (`service._http_limits`), which sees the same scope.
REQUEST_ID_KEY = "pgenrm.request_id"
# Set by the HTTP layer when it answered the request itself (413 while the body streamed in,
# 408 for a body too slow): the app then sees a disconnect that is not the client's doing.
REFUSED_KEY = "pgenrm.refused"
_ECHOED = "pgenrm.request_id.echoed"  # a RequestIdMiddleware further out handles this request
CLIENT_CLOSED = 499  # nginx's status for "the client closed the connection first"

access_log = logging.getLogger("pgenrm.access")
# The methods a label or log line names; others are "other", so that requests with made-up
# methods cannot mint label sets (each one kept, per process, for the process's life).
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

Templates = tuple[set[str], list[tuple[Pattern[str], str]]]


def _route_templates(routes: Sequence[BaseRoute]) -> Templates:
    """The app's static paths, and (regex, template) for the routes with path parameters."""
    static: set[str] = set()
    templated: list[tuple[Pattern[str], str]] = []
    for route in routes:
        path = getattr(route, "path", None)
        regex = getattr(route, "path_regex", None)
        if isinstance(path, str):
            if getattr(route, "param_convertors", None) and regex is not None:
                templated.append((regex, path))
            else:
                static.add(path)
        inner = getattr(getattr(route, "original_router", None), "routes", None)
        if inner is not None:  # FastAPI wraps included routers
            more_static, more_templated = _route_templates(inner)
            static |= more_static
            templated += more_templated
    return static, templated


def route_methods(routes: Sequence[BaseRoute]) -> dict[str, set[str]]:
    """Each route template and the methods it serves (HEAD aside), plus "unmatched": the label
    sets the request counters start with at 0."""
    served: dict[str, set[str]] = {"unmatched": set()}
    for route in routes:
        path, methods = getattr(route, "path", None), getattr(route, "methods", None)
        if isinstance(path, str) and methods:
            served.setdefault(path, set()).update(m for m in methods if m in _METHODS - {"HEAD"})
        inner = getattr(getattr(route, "original_router", None), "routes", None)
        if inner is not None:
            for template, more in route_methods(inner).items():
                served.setdefault(template, set()).update(more)
    return served


class MetricsMiddleware:
    """Pure ASGI: counts, times and gauges every HTTP request by route template and status, and
    writes its access line. A client that disconnects before the response is a 499."""

    def __init__(self, app: ASGIApp, metrics: Metrics, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = routes
        # read on first use: routers are added after us
        self._templates: Templates | None = None

    def _route(self, scope: Scope) -> str:
        """The route's template (`/v1/users/{user_id}`, never the id); any path the app does not
        serve is "unmatched", so that unknown paths cannot mint label values."""
        if self._templates is None:
            self._templates = _route_templates(self.routes)
        static, templated = self._templates
        path = str(scope.get("path", ""))
        if path in static:
            return path
        return next((t for regex, t in templated if regex.match(path)), "unmatched")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        route, method = self._route(scope), str(scope.get("method", ""))
        method = method if method in _METHODS else "other"  # any token is a method in HTTP
        status: int | None = None
        left = False  # the client disconnected before any response started
        in_flight = self.metrics.in_flight.labels(route=route)
        in_flight.inc()

        async def watch() -> Message:
            nonlocal left
            message = await receive()
            left = left or (message["type"] == "http.disconnect" and status is None)
            return message

        async def observe(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, watch, observe)
        finally:
            in_flight.dec()
            final = _final_status(scope, status, left)
            elapsed = time.perf_counter() - started
            labels = {"route": route, "method": method, "status": str(final)}
            self.metrics.requests.labels(**labels).inc()
            self.metrics.request_duration.labels(**labels).observe(elapsed)
            if final == CLIENT_CLOSED:
                self.metrics.client_disconnects.labels(route=route).inc()
            elif final >= 400:
                self.metrics.http_errors.labels(route, f"{final // 100}xx").inc()
            _access_line(method, route, final, elapsed)


def _final_status(scope: Scope, status: int | None, left: bool) -> int:
    """What the request is counted as: the HTTP layer's own answer if it gave one, 499 if the
    client left before any response (whatever the app made of the missing body, nobody got
    it), else what the app sent, or 500 when it raised before sending anything."""
    refused = scope.get(REFUSED_KEY)
    if isinstance(refused, int):
        return refused
    if left:
        return CLIENT_CLOSED
    return 500 if status is None else status


def _access_line(method: str, route: str, status: int, elapsed_s: float) -> None:
    """One line per request (uvicorn's access log, which prints raw paths, is off). A client
    that left is a WARNING, and this is its only line: no traceback, not an error."""
    ms = round(elapsed_s * 1000, 1)
    data = {"method": method, "route": route, "status": status, "duration_ms": ms}
    if status == CLIENT_CLOSED:
        text = "%s %s %d %.1f ms: the client disconnected before the response"
        access_log.warning(text, method, route, status, ms, extra={"data": data})
    else:
        access_log.info("%s %s %d %.1f ms", method, route, status, ms, extra={"data": data})


class RequestIdMiddleware:
    """Pure ASGI: takes a sane `X-Request-ID` or makes one, echoes it on the response and puts
    it on every log line of the request. Outermost of ours, so the access line has it too.

    The server also wraps the whole app in one (outside Starlette's error middleware, so that a
    500 carries the id as well); the inner one then stands aside.
    The log context is not reset on the way out: uvicorn runs each request in its own task, and
    the error middleware's and uvicorn's own lines about the request come after we return."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get(_ECHOED):
            await self.app(scope, receive, send)
            return
        scope[_ECHOED] = True
        request_id = scope.get(REQUEST_ID_KEY)  # the HTTP layer's, when it named the request
        if not isinstance(request_id, str):
            given = next((v for k, v in scope["headers"] if k == b"x-request-id"), None)
            request_id = scope[REQUEST_ID_KEY] = logs.request_id(given)
        logs.begin(request_id)
        header = (b"x-request-id", request_id.encode())

        async def echo(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if not any(k.lower() == b"x-request-id" for k, _ in headers):
                    message = {**message, "headers": [*headers, header]}
            await send(message)

        await self.app(scope, receive, echo)
