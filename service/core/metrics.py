"""Every Prometheus metric of the gateway, defined once, on a registry owned by the app.

No label ever carries a user id or any text: routes are route templates, workers are URLs.
With several server processes (`PGENRM_WORKERS`), prometheus_client's multiprocess mode shares
the values through files (`PROMETHEUS_MULTIPROC_DIR`), and `exposition()` sums every process.
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

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
        self.client_disconnects = Counter(
            "pgenrm_client_disconnects",
            "Requests whose client disconnected before the response (counted as status 499).",
            ["route"],
            registry=r,
        )
        self.http_refused = Counter(
            "pgenrm_http_refused",
            "Connections and requests the HTTP layer refused (headers too large or too many, "
            "body over the limit, too slow, too many connections); by reason.",
            ["reason"],
            registry=r,
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
        self.candidates = Counter(
            "pgenrm_candidates",
            "Candidates answered, by status (ok, failed) and reason (ok, empty, too_long, "
            "scoring_failed).",
            ["status", "reason"],
            registry=r,
        )
        self.fallback_rewards = Counter(
            "pgenrm_fallback_rewards",
            "Candidates given the request's fallback reward instead of a score.",
            registry=r,
        )
        self.groups = Counter(
            "pgenrm_groups",
            "Groups of per-sample calls scored together, complete or partial.",
            ["outcome"],
            registry=r,
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
