"""Every Prometheus metric of the gateway, defined once, on a registry owned by the app.

No label ever carries a user id or any text: routes are route templates, workers are URLs.
With several server processes (`PGENRM_WORKERS`), prometheus_client's multiprocess mode shares
the values through files (`PROMETHEUS_MULTIPROC_DIR`), and `exposition()` sums every process.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
LOOKUP_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        http = ["route", "method", "status"]
        self.requests = Counter("pgenrm_requests", "HTTP requests.", http, registry=r)
        self.request_duration = Histogram(
            "pgenrm_request_duration_seconds",
            "HTTP request latency.",
            http,
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.in_flight = Gauge(
            "pgenrm_requests_in_flight",
            "HTTP requests in progress.",
            ["route"],
            registry=r,
            multiprocess_mode="livesum",
        )
        self.samples = Counter(
            "pgenrm_samples",
            "Evaluation-chain samples by level, outcome and failure reason.",
            ["level", "outcome", "reason"],
            registry=r,
        )
        self.backend_duration = Histogram(
            "pgenrm_backend_request_duration_seconds",
            "Backend call latency per worker.",
            ["backend", "worker"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.backend_errors = Counter(
            "pgenrm_backend_errors",
            "Failed backend calls per worker.",
            ["backend", "worker", "kind"],
            registry=r,
        )
        self.cache_requests = Counter(
            "pgenrm_cache_requests", "Cache lookups.", ["cache", "store", "result"], registry=r
        )
        self.cache_errors = Counter(
            "pgenrm_cache_errors",
            "Cache store errors (the request carried on uncached).",
            ["store", "op"],
            registry=r,
        )
        self.prototype_lookup = Histogram(
            "pgenrm_prototype_lookup_duration_seconds",
            "Nearest prototype and neighbours lookup.",
            buckets=LOOKUP_BUCKETS,
            registry=r,
        )
        self.degraded = Counter(
            "pgenrm_degraded_responses", "Scores answered by the fallback backend.", registry=r
        )
        self.build_info = Gauge(
            "pgenrm_build_info",
            "Version, backend and model of this gateway.",
            ["version", "backend", "model"],
            registry=r,
            multiprocess_mode="max",
        )


def multiprocess() -> bool:
    """True in a worker of a multi-process server (the CLI sets the directory)."""
    return "PROMETHEUS_MULTIPROC_DIR" in os.environ


def exposition(metrics: Metrics) -> bytes:
    """The text format of this process's metrics, or of every worker's in multiprocess mode."""
    if not multiprocess():
        return generate_latest(metrics.registry)
    registry = CollectorRegistry()
    MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return generate_latest(registry)


def process_exited() -> None:
    """Drop this worker's live gauges (in-flight) from the shared files when it stops."""
    if multiprocess():
        mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


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
