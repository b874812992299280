"""Helpers of the client tests: a scripted loopback HTTP fault server, /metrics counts, and the
trainer-suite gate (skip when a trainer is not installed, fail under PGENRM_REQUIRE_TRAINERS=1)."""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NoReturn, cast

import httpx
import pytest
from pgenrm_client.types import HistoryPair

from tests.helpers import history_json


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = b"{}"
    headers: dict[str, str] = field(default_factory=dict)

    @staticmethod
    def json(status: int, payload: object, **headers: str) -> Reply:
        return Reply(
            status, json.dumps(payload).encode(), {"Content-Type": "application/json", **headers}
        )

    @staticmethod
    def error(status: int, kind: str, message: str = "scripted", **headers: str) -> Reply:
        envelope: dict[str, Any] = {
            "error": {"type": kind, "message": message, "field": None, "details": []}
        }
        return Reply.json(status, envelope, **headers)


@dataclass(frozen=True)
class Drop:
    """Close the connection without answering."""


@dataclass(frozen=True)
class Hang:
    """Answer nothing until the server stops."""


Step = Reply | Drop | Hang


@dataclass(frozen=True)
class Attempt:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class FaultServer:
    """A real HTTP server on a free loopback port that plays `steps` in order (repeating the
    last one) and records every attempt it received."""

    def __init__(self) -> None:
        self.steps: list[Step] = [Reply()]
        self.attempts: list[Attempt] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                step = owner._record(Attempt(self.command, self.path, dict(self.headers), body))
                if isinstance(step, Hang):
                    owner._stop.wait()
                    self.close_connection = True
                    return
                if isinstance(step, Drop):
                    self.close_connection = True
                    return
                try:
                    self.send_response(step.status)
                    for name, value in step.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(step.body)))
                    self.end_headers()
                    self.wfile.write(step.body)
                except OSError:  # the client gave up (a timeout): nothing to tell it
                    self.close_connection = True

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def play(self, *steps: Step) -> None:
        with self._lock:
            self.steps = list(steps)
            self.attempts = []

    def _record(self, attempt: Attempt) -> Step:
        with self._lock:
            self.attempts.append(attempt)
            return self.steps.pop(0) if len(self.steps) > 1 else self.steps[0]

    def keys(self) -> list[str | None]:
        return [a.headers.get("Idempotency-Key") for a in self.attempts]

    def start(self) -> FaultServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


@contextmanager
def fault_server() -> Iterator[FaultServer]:
    server = FaultServer().start()
    try:
        yield server
    finally:
        server.stop()


_REQUESTS = re.compile(r"^pgenrm_requests_total\{(?P<labels>[^}]*)\} (?P<value>\S+)$", re.M)


def requests_total(url: str, route: str, method: str = "POST") -> float:
    """Requests the server counted on `route` (every status), from its /metrics."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    total = 0.0
    for match in _REQUESTS.finditer(text):
        labels = match["labels"]
        if f'route="{route}"' in labels and f'method="{method}"' in labels:
            total += float(match["value"])
    return total


def trainer_missing(what: str) -> NoReturn:
    """Skip (or fail under PGENRM_REQUIRE_TRAINERS=1): `what` is not installed here."""
    if os.environ.get("PGENRM_REQUIRE_TRAINERS") == "1":
        pytest.fail(f"{what} (required: PGENRM_REQUIRE_TRAINERS=1)")
    pytest.skip(what)


def history(kind: str) -> list[HistoryPair]:
    """`tests.helpers.history_json`, typed as the client's history pairs."""
    return cast(list[HistoryPair], history_json(kind))
