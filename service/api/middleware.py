"""ASGI middleware that counts, times and gauges every HTTP request (`service.core.metrics`)."""

from __future__ import annotations

import time
from collections.abc import Sequence

from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.core.metrics import Metrics


def _route_paths(routes: Sequence[BaseRoute]) -> set[str]:
    paths: set[str] = set()
    for route in routes:
        path = getattr(route, "path", None)
        if isinstance(path, str):
            paths.add(path)
        inner = getattr(getattr(route, "original_router", None), "routes", None)
        if inner is not None:  # FastAPI wraps included routers
            paths |= _route_paths(inner)
    return paths


class MetricsMiddleware:
    """Pure ASGI: counts, times and gauges every HTTP request by route template and status."""

    def __init__(self, app: ASGIApp, metrics: Metrics, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = routes
        self._paths: set[str] | None = None  # read on first use: routers are added after us

    def _route(self, scope: Scope) -> str:
        """The route's path; any path the app does not serve is "unmatched", so that unknown
        paths cannot mint label values (every route here is a static path)."""
        if self._paths is None:
            self._paths = _route_paths(self.routes)
        path = str(scope.get("path", ""))
        return path if path in self._paths else "unmatched"

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
