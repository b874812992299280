"""One real `pgenrm serve` subprocess with tight HTTP limits, shared by this folder's tests.

The limits live in the server's HTTP protocol, which only runs under a real server: these
tests speak raw HTTP over loopback sockets to it and read its JSON log.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from service.testing.server_process import served, server_pids

LIMITS = {
    "PGENRM_MAX_BODY_BYTES": "1000000",
    "PGENRM_MAX_HEADER_BYTES": "8192",
    "PGENRM_MAX_HEADER_COUNT": "20",
    "PGENRM_HEADER_TIMEOUT_S": "1",
    "PGENRM_BODY_TIMEOUT_S": "1",
    "PGENRM_KEEP_ALIVE_TIMEOUT_S": "30",  # held keep-alive connections fill the cap at leisure
    "PGENRM_MAX_CONNECTIONS": "8",
    "PGENRM_LOG_FORMAT": "json",
    "PGENRM_LOG_LEVEL": "info",
}
SAFETY_S = 30.0  # how long a socket waits for the server before the test fails


@dataclass(frozen=True)
class Server:
    url: str
    port: int
    pid: int
    log: Path

    def connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=SAFETY_S)
        return sock

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def log_lines(self) -> list[dict[str, Any]]:
        """The server's JSON log lines (other output, e.g. progress bars, is skipped)."""
        text = self.log_text()
        complete = text[: text.rfind("\n") + 1]  # the last line may be half-written yet
        return [json.loads(line) for line in complete.splitlines() if line.startswith("{")]

    def lines_of(self, request_id: str) -> list[dict[str, Any]]:
        """The log lines of one request, once there is one (the access line is written just
        after the response is sent, so a client can be quicker than it)."""
        deadline = time.monotonic() + SAFETY_S
        while True:
            lines = [line for line in self.log_lines() if line.get("request_id") == request_id]
            if lines or time.monotonic() > deadline:
                return lines
            time.sleep(0.05)


@pytest.fixture(scope="package")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    log = tmp_path_factory.mktemp("server") / "server.log"
    with log.open("wb") as out, served(LIMITS, log=out) as url:
        port = int(url.rsplit(":", 1)[1])
        yield Server(url, port, server_pids(url)[0], log)


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (a reset counts as closed);
    a server that keeps it open fails the test after SAFETY_S."""
    received = b""
    while True:
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            return received
        if not data:
            return received
        received += data


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


def body_of(response: bytes) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(response.split(b"\r\n\r\n", 1)[1])
    return loaded


def header_of(response: bytes, name: str) -> str | None:
    head = response.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")[1:]
    pairs = [line.split(":", 1) for line in head]
    values = [value.strip() for key, value in pairs if key.strip().lower() == name.lower()]
    return values[0] if values else None
