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
        self.http_connections = Gauge(
            "pgenrm_http_connections",
            "Connections each worker holds (one series per worker process).",
            registry=r,
            multiprocess_mode="liveall",
        )
        self.http_rebalanced = Counter(
            "pgenrm_http_rebalanced_connections",
            "Keep-alive connections a worker ended with `connection: close` because it held "
            "more than its share of all the workers' connections (the client reconnects).",
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
        self.http_errors = Counter(
            "pgenrm_http_errors",
            "Responses 4xx and 5xx by route template and class (a client that left, 499, "
            "counts in pgenrm_client_disconnects_total instead).",
            ["route", "class"],
            registry=r,
        )
        self.rate_limited = Counter(
            "pgenrm_rate_limited",
            "Calls answered 429 by their key's limits: request rate, cost budget or expensive "
            "calls in flight.",
            ["reason"],
            registry=r,
        )
        self.worker_starts = Counter(
            "pgenrm_worker_starts",
            "Server processes started; an increase beyond the configured workers is a restart.",
            registry=r,
        )
        self.resident_memory = Gauge(
            "pgenrm_worker_resident_memory_bytes",
            "Resident memory of each server process (a pid label with several workers).",
            registry=r,
            multiprocess_mode="liveall",
        )
        self.memory_limit = Gauge(
            "pgenrm_memory_limit_bytes",
            "The memory limit of the container (cgroup) the gateway runs in; +Inf when none.",
            registry=r,
            multiprocess_mode="max",
        )
        self.cache_bytes = Gauge(
            "pgenrm_cache_bytes",
            "Bytes held by in-process caches, summed over workers: the cache store when it "
            "is in memory (store), text embeddings (embeddings).",
            ["cache"],
            registry=r,
            multiprocess_mode="livesum",
        )
        # OpenAI-compatible workers, one series per worker URL (set by the worker pool).
        self.backend_up = Gauge(
            "pgenrm_backend_up",
            "1 while the worker may be called (healthy, circuit not open), else 0.",
            ["worker"],
            registry=r,
            multiprocess_mode="livemax",
        )
        self.backend_breaker_state = Gauge(
            "pgenrm_backend_breaker_state",
            "The worker's circuit breaker: 0 closed, 1 half-open, 2 open.",
            ["worker"],
            registry=r,
            multiprocess_mode="livemax",
        )
        self.backend_capabilities = Gauge(
            "pgenrm_backend_capabilities",
            "1 for what was detected (or set) about the worker: where its health comes from, "
            "whether it honours n, its structured-output dialect (unknown until learnt).",
            ["worker", "health_source", "n_supported", "dialect"],
            registry=r,
            multiprocess_mode="livemax",
        )
        self.backend_topups = Counter(
            "pgenrm_backend_topups",
            "Samples requested one by one because the worker returned fewer choices than n.",
            ["worker"],
            registry=r,
        )


# Label values known before anything happens, so each counter is exported at 0 from start
# (a panel or alert over it reads 0, not "No data", until the first event).
HTTP_REFUSALS = (
    "headers_too_large",
    "too_many_headers",
    "body_too_large",
    "header_timeout",
    "body_timeout",
    "too_many_connections",
)
RATE_LIMITS = ("rate", "budget", "concurrency")
CANDIDATE_OUTCOMES = (
    ("ok", "ok"),
    ("failed", "empty"),
    ("failed", "too_long"),
    ("failed", "scoring_failed"),
)
CACHES = ("persona", "profile", "embedding")
CACHE_OPS = ("get", "set", "delete")
BACKEND_ERROR_KINDS = ("connect", "timeout", "transport", "bad_json", "http_4xx")


def export_zeros(
    metrics: Metrics,
    *,
    routes: dict[str, set[str]],
    store: str,
    workers: tuple[str, ...] = (),
    backend: str = "openai",
) -> None:
    """Create every counter's label sets known at start (`routes`: template -> methods, the
    cache `store`'s name, the backend's worker URLs) at 0."""
    m = metrics
    for route, methods in routes.items():
        for method in methods:
            m.requests.labels(route, method, "200").inc(0)
        for kind in ("4xx", "5xx"):
            m.http_errors.labels(route, kind).inc(0)
        m.client_disconnects.labels(route).inc(0)
    for reason in HTTP_REFUSALS:
        m.http_refused.labels(reason).inc(0)
    for reason in RATE_LIMITS:
        m.rate_limited.labels(reason).inc(0)
    for level in ("ind", "pro"):
        m.samples.labels(level, "valid", "ok").inc(0)
        m.samples.labels(level, "failed", "all_failed").inc(0)
    for status, reason in CANDIDATE_OUTCOMES:
        m.candidates.labels(status, reason).inc(0)
    for outcome in ("complete", "partial"):
        m.groups.labels(outcome).inc(0)
    for cache in CACHES:
        for result in ("hit", "miss", "error"):
            m.cache_requests.labels(cache, store, result).inc(0)
    for op in CACHE_OPS:
        m.cache_errors.labels(store, op).inc(0)
    for worker in workers:
        for kind in BACKEND_ERROR_KINDS:
            m.backend_errors.labels(backend, worker, kind).inc(0)
        m.backend_topups.labels(worker).inc(0)


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


def process_exited(pid: int | None = None) -> None:
    """Drop a worker's live gauges (in-flight, memory) from the shared files when it stops:
    this process's, or a dead worker's (`pid`) that could not say so itself."""
    if multiprocess():
        mark_process_dead(os.getpid() if pid is None else pid)  # type: ignore[no-untyped-call]
