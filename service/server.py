"""Run the app under uvicorn: one process, or `workers` processes on one port.

One Python process scores on one core (the GIL), so a gateway on a multi-core machine runs one
worker per core. Each worker builds its own app from the environment (uvicorn's factory mode)
and keeps its own in-process cache; Prometheus values are shared through a directory, so
`/metrics` from any worker reports them all.

Each worker listens on its own SO_REUSEPORT socket, so the kernel spreads connections over the
workers. On one shared socket (uvicorn's `--workers`) whichever worker woke first accepted a
whole burst: a trainer's 32 keep-alive connections could all land on one worker and leave the
other core idle. The kernel's spread is even only on average, so a worker holding more than its
share of the connections closes the excess after a response (`service._connection_balance`).

uvicorn speaks HTTP through `service._http_limits`' protocol (header size and count, header and
body timeouts, the body limit while it streams, a connection cap per worker), and the app is
wrapped in the request-id middleware outside Starlette's error handling, so that every response,
500s included, carries `X-Request-ID`. uvicorn's access log, which prints raw paths (user ids),
is off: the app writes one line per request with the route template instead.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import logging.config
import multiprocessing
import os
import signal
import socket
import tempfile
import threading
import time
from collections.abc import MutableSequence
from typing import Any

import uvicorn
from fastapi import FastAPI
from starlette.types import ASGIApp
from tqdm import tqdm

from service._connection_balance import ConnectionBalance, RebalanceMiddleware
from service._http_limits import HttpLimits, protocol_class
from service.api.middleware import RequestIdMiddleware
from service.app import create_app
from service.core.config import Settings
from service.core.metrics import Metrics, process_exited

log = logging.getLogger("pgenrm.server")
_RESTART_DELAY_S = 1.0
_STOP_TIMEOUT_S = 30.0


def serve(settings: Settings, overrides: dict[str, Any]) -> None:
    """Serve until interrupted; `overrides` are the settings given on the command line."""
    options: dict[str, Any] = {
        "log_level": settings.log_level,
        "log_config": log_config(settings.log_level, settings.log_format),
        "loop": "auto",  # uvloop when installed (a dependency on Linux)
        "access_log": False,
        "timeout_keep_alive": settings.keep_alive_timeout_s,
        # uvicorn's own cap counts connections and running requests alike; the protocol
        # refuses connections past max_connections first, so this one trips only on requests
        # still running after their clients left.
        "limit_concurrency": settings.max_connections + 1,
    }
    if settings.workers == 1:
        logging.config.dictConfig(options["log_config"])  # JSON from the first line on
        app = create_app(settings, owns_process=True)
        http = _protocol(settings, app, None)  # one worker: no balance to keep
        outermost = _outermost(app, None)
        uvicorn.run(outermost, host=settings.host, port=settings.port, http=http, **options)
        return
    os.environ.update({f"PGENRM_{k.upper()}": str(v) for k, v in overrides.items()})
    with tempfile.TemporaryDirectory(prefix="pgenrm-metrics-") as metrics_dir:
        os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", metrics_dir)
        _supervise(settings, options)


def _supervise(settings: Settings, options: dict[str, Any]) -> None:
    """Start the workers, restart one that dies, stop them all on SIGTERM or SIGINT."""
    logging.config.dictConfig(options["log_config"])
    try:  # a port taken by another program fails here, once, not in every worker forever
        listening_socket(settings.host, settings.port).close()
    except OSError as error:
        raise SystemExit(f"pgenrm: cannot bind {settings.host}:{settings.port}: {error}") from error
    spawn = multiprocessing.get_context("spawn")
    # Connections each worker holds, one slot each, read by all (service._connection_balance).
    held = spawn.RawArray("i", settings.workers)

    def start(slot: int) -> multiprocessing.process.BaseProcess:
        held[slot] = 0
        args = (settings.host, settings.port, options, held, slot)
        process = spawn.Process(target=_worker, args=args)
        process.start()
        return process

    workers = [start(slot) for slot in range(settings.workers)]
    log.info("started %d workers on %s:%d", len(workers), settings.host, settings.port)
    stopping = False

    def stop(signum: int, _: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while not stopping:
        time.sleep(0.2)
        for i, worker in enumerate(workers):
            if not worker.is_alive() and not stopping:
                log.error("worker %s exited with %s; restarting it", worker.pid, worker.exitcode)
                if worker.pid is not None:
                    process_exited(worker.pid)  # its live gauges go with it
                time.sleep(_RESTART_DELAY_S)
                workers[i] = start(i)
    for worker in workers:
        if worker.is_alive() and worker.pid is not None:
            os.kill(worker.pid, signal.SIGTERM)  # uvicorn's graceful shutdown
    for worker in workers:
        worker.join(timeout=_STOP_TIMEOUT_S)
        if worker.is_alive():  # stuck in shutdown: do not hang the supervisor with it
            log.error(
                "worker %s did not stop within %.0f s; killing it", worker.pid, _STOP_TIMEOUT_S
            )
            worker.kill()
            worker.join()


def _worker(
    host: str, port: int, options: dict[str, Any], held: MutableSequence[int], slot: int
) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the supervisor decides when to stop
    # tqdm (model loading bars) would otherwise create multiprocessing locks that the
    # supervisor's resource tracker reports as leaked at every shutdown.
    tqdm.set_lock(threading.RLock())
    logging.config.dictConfig(options["log_config"])
    settings = Settings()  # from the environment, which carries the command line's overrides
    app = create_app(settings, owns_process=True)
    balance = ConnectionBalance(held, slot)
    http = _protocol(settings, app, balance)
    config = uvicorn.Config(_outermost(app, balance), http=http, **options)
    uvicorn.Server(config).run(sockets=[listening_socket(host, port)])


def _outermost(app: FastAPI, balance: ConnectionBalance | None) -> ASGIApp:
    """The app as uvicorn runs it: request ids outside Starlette's error middleware, and with
    several workers, the excess connections' `connection: close` outside both."""
    outermost: ASGIApp = RequestIdMiddleware(app)
    if balance is None:
        return outermost
    metrics: Metrics = app.state.pgenrm.metrics
    return RebalanceMiddleware(outermost, balance, metrics.http_rebalanced.inc)


def _protocol(
    settings: Settings, app: FastAPI, balance: ConnectionBalance | None
) -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol with our limits; what it refuses and the connections it holds
    are counted in the app's metrics, and with several workers the latter go to `balance`."""
    metrics: Metrics = app.state.pgenrm.metrics
    limits = HttpLimits(
        max_header_bytes=settings.max_header_bytes,
        max_header_count=settings.max_header_count,
        header_timeout_s=settings.header_timeout_s,
        body_timeout_s=settings.body_timeout_s,
        max_body_bytes=settings.max_body_bytes,
        max_connections=settings.max_connections,
    )
    refused, connections = metrics.http_refused, metrics.http_connections

    def report(count: int) -> None:
        connections.set(count)
        if balance is not None:
            balance.update(count)

    return protocol_class(limits, lambda reason: refused.labels(reason=reason).inc(), report)


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket of our own on the shared port (SO_REUSEPORT), not yet listening: uvicorn calls
    listen() once the app has loaded, so a worker still loading is given no connections. TCP
    as its protocol number, which is what makes asyncio turn Nagle off on every connection."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def log_config(level: str, fmt: str = "text") -> dict[str, Any]:
    """uvicorn's logging, plus our own lines ("pgenrm.*") on stderr, in every worker. Each line
    carries its request's id and bound fields (`service.core.logs`); `fmt="json"` writes every
    line, uvicorn's included, as one JSON object."""
    config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    config["filters"] = {"request": {"()": "service.core.logs.ContextFilter"}}
    if fmt == "json":
        json_lines = "service.core.logs.JsonFormatter"
        config["formatters"] = {name: {"()": json_lines} for name in ("default", "plain")}
    else:
        config["formatters"]["default"]["fmt"] += "%(request_context)s"
        config["formatters"]["plain"] = {
            "format": "%(asctime)s %(levelname)s %(name)s: %(message)s%(request_context)s"
        }
        del config["formatters"]["access"]
    config["handlers"] = {
        name: {
            "formatter": name,
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stderr",
            "filters": ["request"],
        }
        for name in ("default", "plain")
    }
    # uvicorn's access lines print raw paths (user ids): off (the app writes its own).
    config["loggers"]["uvicorn.access"] = {"handlers": [], "propagate": False}
    config["root"] = {"handlers": ["plain"], "level": level.upper()}
    return config
