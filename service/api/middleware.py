"""ASGI middleware that counts, times and gauges every HTTP request (`service.core.metrics`)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from re import Pattern

from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.core.metrics import Metrics

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


class MetricsMiddleware:
    """Pure ASGI: counts, times and gauges every HTTP request by route template and status."""

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
        status = 500
        in_flight = self.metrics.in_flight.labels(route=route)
        in_flight.inc()

        async def observe(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, observe)
        finally:
            in_flight.dec()
            labels = {"route": route, "method": method, "status": str(status)}
            self.metrics.requests.labels(**labels).inc()
            self.metrics.request_duration.labels(**labels).observe(time.perf_counter() - started)
