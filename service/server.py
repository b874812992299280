"""Run the app under uvicorn: one process, or `workers` processes sharing one socket.

One Python process scores on one core (the GIL), so a gateway on a multi-core machine runs one
worker per core. Each worker builds its own app from the environment (uvicorn's factory mode)
and keeps its own in-process cache; Prometheus values are shared through a directory, so
`/metrics` from any worker reports them all.
"""

from __future__ import annotations

import asyncio
import copy
import os
import socket
import tempfile
from contextlib import suppress
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from service.app import create_app
from service.config import Settings


class NoDelayHttp(HttpToolsProtocol):
    """uvicorn's HTTP protocol with Nagle's algorithm off on every connection.

    asyncio turns it off only for sockets whose protocol number says TCP; the listening socket
    uvicorn opens for several workers says 0, so a keep-alive client then waited ~40 ms
    (Nagle against delayed ACK) for every response.
    """

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            with suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)


def serve(settings: Settings, overrides: dict[str, Any]) -> None:
    """Serve until interrupted; `overrides` are the settings given on the command line."""
    common: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level,
        "log_config": log_config(settings.log_level),
        "http": NoDelayHttp,
        "loop": "auto",  # uvloop when installed (it is a dependency on Linux)
    }
    if settings.workers == 1:
        uvicorn.run(create_app(settings), **common)
        return
    os.environ.update({f"PGENRM_{k.upper()}": str(v) for k, v in overrides.items()})
    with tempfile.TemporaryDirectory(prefix="pgenrm-metrics-") as metrics_dir:
        os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", metrics_dir)
        uvicorn.run("service.app:create_app", factory=True, workers=settings.workers, **common)


def log_config(level: str) -> dict[str, Any]:
    """uvicorn's logging, plus our own lines ("pgenrm.*") on stderr, in every worker."""
    config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    config["formatters"]["plain"] = {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}
    config["handlers"]["plain"] = {
        "formatter": "plain",
        "class": "logging.StreamHandler",
        "stream": "ext://sys.stderr",
    }
    config["root"] = {"handlers": ["plain"], "level": level.upper()}
    return config
