"""Bounded HTTP over raw sockets: the body limit while a body streams, header size and count,
slow headers and bodies, the connection cap; keep-alive and pipelining still work."""

from __future__ import annotations

import contextlib
import http.client
import select
import socket
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest

from tests.server.conftest import (
    SAFETY_S,
    Server,
    body_of,
    header_of,
    read_until_closed,
    status_of,
)

pytestmark = pytest.mark.slow  # a real server subprocess: the full tier only

SCORE = b"POST /v1/score HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
MB = 1 << 20


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def refused_total(server: Server, reason: str) -> float:
    text = httpx.get(f"{server.url}/metrics", timeout=SAFETY_S).text
    line = f'pgenrm_http_refused_total{{reason="{reason}"}}'
    return sum(float(x.split()[-1]) for x in text.splitlines() if x.startswith(line))


def test_a_chunked_body_over_the_limit_is_refused_before_it_is_read_whole(server: Server) -> None:
    """128 MB offered in 1 MB chunks against a 1 MB limit: the server stops reading at the
    limit and answers 413, so the client cannot push the rest and the server's memory does
    not move (it read ~201 MB into memory before)."""
    before = rss(server.pid)
    peak = before
    sending = True

    def watch() -> None:  # a transient buffer would be freed again: sample while sending
        nonlocal peak
        while sending:
            peak = max(peak, rss(server.pid))
            time.sleep(0.005)

    watcher = threading.Thread(target=watch)
    watcher.start()
    chunk = b"%x\r\n" % MB + b"x" * MB + b"\r\n"
    sent = 0
    with server.connect() as sock:
        try:
            sock.sendall(SCORE + b"Transfer-Encoding: chunked\r\n\r\n")
            for _ in range(128):
                sock.sendall(chunk)  # a server that stops reading but stays open: timeout, fail
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = read_until_closed(sock)
    time.sleep(0.2)
    sending = False
    watcher.join()
    assert sent < 64 * MB, f"the server read {sent / MB:.0f} MB of a body over its 1 MB limit"
    assert peak - before < 30 * MB, f"server RSS grew {(peak - before) / MB:.0f} MB"
    if answer:  # the answer is written before the close, but a reset may drop it
        assert status_of(answer) == 413
        assert body_of(answer)["error"]["type"] == "payload_too_large"
    assert refused_total(server, "body_too_large") >= 1


def test_a_declared_length_over_the_limit_is_refused_at_the_headers(server: Server) -> None:
    with server.connect() as sock:
        sock.sendall(SCORE + b"Content-Length: 200000000\r\n\r\n")  # no body follows
        answer = read_until_closed(sock)
    assert status_of(answer) == 413
    error = body_of(answer)["error"]
    assert error["field"] == "body" and "200,000,000" in error["message"]
    assert header_of(answer, "connection") == "close"


def test_oversized_headers_and_too_many_headers_get_431(server: Server) -> None:
    big = b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n"
    many = b"GET /healthz HTTP/1.1\r\nHost: t\r\n" + b"".join(
        b"X-H%d: v\r\n" % i for i in range(30)
    )
    for request in (big, many + b"\r\n"):
        with server.connect() as sock:
            sock.sendall(request)
            answer = read_until_closed(sock)
        assert status_of(answer) == 431
        assert body_of(answer)["error"] == {
            "type": "headers_too_large",
            "message": body_of(answer)["error"]["message"],
            "field": "headers",
            "details": [],
        }
    # a megabyte of header is refused once the limit is read, not buffered whole
    with server.connect() as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(b"GET /healthz HTTP/1.1\r\nX-Big: " + b"a" * MB)
        answer = read_until_closed(sock)
    assert not answer or status_of(answer) == 431
    assert refused_total(server, "too_many_headers") >= 1


def drip(sock: socket.socket, data: bytes, every_s: float = 0.2) -> tuple[bytes, float]:
    """Send `data` a byte at a time until the server closes; what it answered, and when."""
    started = time.monotonic()
    for i in range(len(data)):
        readable, _, _ = select.select([sock], [], [], every_s)
        if readable:
            break
        try:
            sock.sendall(data[i : i + 1])
        except (BrokenPipeError, ConnectionResetError):
            break
    else:
        raise AssertionError("the server let a slow client send everything")
    return read_until_closed(sock), time.monotonic() - started


def test_slow_headers_and_slow_bodies_are_closed(server: Server) -> None:
    """Headers or a body trickled a byte every 0.2 s: closed with 408 once the configured
    second is up (bytes still arriving do not restart the clock)."""
    headers = b"GET /healthz HTTP/1.1\r\nHost: t\r\n" + b"X-Pad: " + b"p" * 500 + b"\r\n\r\n"
    with server.connect() as sock:
        answer, _ = drip(sock, headers)
    # closed long before the 100 s the drip would take (drip() fails if it could send it all)
    assert status_of(answer) == 408 and body_of(answer)["error"]["field"] == "headers"

    with server.connect() as sock:
        sock.sendall(SCORE + b"Content-Length: 400\r\n\r\n")
        answer, _ = drip(sock, b"{" + b" " * 398 + b"}")
    assert status_of(answer) == 408 and body_of(answer)["error"]["field"] == "body"

    # many half-sent requests at once: every one is closed
    socks = [server.connect() for _ in range(5)]
    for sock in socks:
        sock.sendall(SCORE + b"Content-Length: 100\r\n\r\n{")
    for sock in socks:
        with sock:
            assert status_of(read_until_closed(sock)) == 408
    # the app counted them with the status the client got, never as 500
    text = httpx.get(f"{server.url}/metrics", timeout=SAFETY_S).text
    assert 'route="/v1/score",status="408"' in text
    assert 'status="500"' not in text
    assert refused_total(server, "header_timeout") >= 1
    assert refused_total(server, "body_timeout") >= 6


def test_a_connection_that_never_sends_is_closed_quietly(server: Server) -> None:
    with server.connect() as sock:
        assert read_until_closed(sock) == b""  # no 408 thrown at a pre-opened connection
    assert refused_total(server, "idle_timeout") >= 1


def test_keep_alive_and_pipelining_still_work(server: Server) -> None:
    with server.connect() as sock:  # three requests in one write; the last asks to close
        get = b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\nGET /readyz HTTP/1.1\r\nHost: t\r\n\r\n"
        sock.sendall(get + b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        assert read_until_closed(sock).count(b"HTTP/1.1 200 OK\r\n") == 3
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=SAFETY_S)
    try:
        connection.request("GET", "/healthz")
        assert connection.getresponse().read() == b'{"status":"ok"}'
        first = connection.sock
        connection.request("GET", "/healthz")  # on the same, kept-alive connection
        assert connection.getresponse().status == 200 and connection.sock is first
    finally:
        connection.close()


def test_connections_over_the_cap_are_refused(server: Server) -> None:
    """8 per worker here: keep-alive connections that each had an answer hold the places, the
    next one gets 503 and is closed; once one of them leaves, a new one is served."""
    held: list[socket.socket] = []
    refused = b""
    try:
        for _ in range(9):
            sock = server.connect()
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            answer = sock.recv(65536)
            if answer.startswith(b"HTTP/1.1 503"):
                refused = answer + read_until_closed(sock)
                sock.close()
                break
            assert answer.startswith(b"HTTP/1.1 200"), answer
            held.append(sock)
        assert refused, f"{len(held)} connections held and none refused"
        assert len(held) <= 8
        assert body_of(refused)["error"]["type"] == "unavailable"
        assert header_of(refused, "retry-after") == "1"
        held.pop().close()
        deadline = time.monotonic() + SAFETY_S
        while True:  # the server notices the close at its next loop turn
            with server.connect() as sock:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                answer = read_until_closed(sock)
            if status_of(answer) == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert status_of(answer) == 200
    finally:
        for sock in held:
            sock.close()
    assert refused_total(server, "too_many_connections") >= 1


def test_request_ids_reach_refusals(server: Server) -> None:
    given = f"refused-{uuid.uuid4().hex[:8]}"
    with server.connect() as sock:
        sock.sendall(
            SCORE + f"X-Request-ID: {given}\r\n".encode() + b"Content-Length: 9999999\r\n\r\n"
        )
        answer = read_until_closed(sock)
    assert status_of(answer) == 413 and header_of(answer, "x-request-id") == given
    lines = server.lines_of(given)
    assert [(line["logger"], line["level"]) for line in lines] == [("pgenrm.http", "WARNING")]
