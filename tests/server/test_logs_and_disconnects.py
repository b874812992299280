"""A client that disconnects mid-body is a 499 logged in one line; request ids are taken or
made, echoed and on every JSON log line; the access line names route templates, never ids."""

from __future__ import annotations

import re
import time
import uuid

import httpx
import pytest

from tests.server.conftest import SAFETY_S, Server

pytestmark = pytest.mark.slow  # a real server subprocess: the full tier only

SCORE = b"POST /v1/score HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"


def metric(text: str, prefix: str) -> float:
    return sum(float(x.split()[-1]) for x in text.splitlines() if x.startswith(prefix))


def test_a_disconnect_mid_body_is_a_499_logged_in_one_line(server: Server) -> None:
    request_id = f"gone-{uuid.uuid4().hex[:8]}"
    with server.connect() as sock:
        head = SCORE + f"X-Request-ID: {request_id}\r\nContent-Length: 1000\r\n\r\n".encode()
        sock.sendall(head + b'{"user_id": "u1", "prom')
        time.sleep(0.2)  # the app is waiting for the rest of the body when the client leaves
    deadline = time.monotonic() + SAFETY_S
    left = 'pgenrm_requests_total{method="POST",route="/v1/score",status="499"}'
    while True:
        text = httpx.get(f"{server.url}/metrics", timeout=SAFETY_S).text
        if metric(text, left) >= 1 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert metric(text, left) >= 1, text
    assert metric(text, 'pgenrm_client_disconnects_total{route="/v1/score"}') >= 1
    assert 'status="500"' not in text
    server.lines_of(request_id)
    time.sleep(0.5)  # anything uvicorn would add about the request comes right after it
    lines = [line for line in server.log_lines() if line.get("request_id") == request_id]
    assert len(lines) == 1, lines
    assert lines[0]["level"] == "WARNING" and lines[0]["logger"] == "pgenrm.access"
    assert (lines[0]["route"], lines[0]["status"]) == ("/v1/score", 499)
    assert "Traceback" not in server.log_text()
    assert "Exception in ASGI application" not in server.log_text()


def test_request_ids_are_taken_or_made_echoed_and_logged(server: Server) -> None:
    with httpx.Client(base_url=server.url, timeout=SAFETY_S) as client:
        given = f"trace.{uuid.uuid4().hex[:8]}:span_1-a"
        assert (
            client.get("/healthz", headers={"X-Request-ID": given}).headers["x-request-id"] == given
        )
        made = client.get("/healthz").headers["x-request-id"]
        assert re.fullmatch(r"[0-9a-f]{32}", made)
        for insane in ("has space", "x" * 129, "semi;colon"):
            echoed = client.get("/healthz", headers={"X-Request-ID": insane}).headers
            assert re.fullmatch(r"[0-9a-f]{32}", echoed["x-request-id"]), insane
        missing = client.get("/no/such/path", headers={"X-Request-ID": f"{given}-404"})
        assert missing.status_code == 404
        assert missing.headers["x-request-id"] == f"{given}-404"
    access = server.lines_of(given)
    assert len(access) == 1
    assert access[0]["logger"] == "pgenrm.access"
    assert (access[0]["method"], access[0]["route"], access[0]["status"]) == (
        "GET",
        "/healthz",
        200,
    )
    assert isinstance(access[0]["duration_ms"], float)
    assert server.lines_of(made)
    lines = server.log_lines()
    assert all({"time", "level", "logger", "message"} <= line.keys() for line in lines)
    assert any(line["logger"].startswith("uvicorn") for line in lines)  # uvicorn's, as JSON


def test_the_access_line_names_the_route_never_the_user(server: Server) -> None:
    user = f"private-user-{uuid.uuid4().hex}"
    request_id = f"user-{uuid.uuid4().hex[:8]}"
    r = httpx.get(
        f"{server.url}/v1/users/{user}", headers={"X-Request-ID": request_id}, timeout=SAFETY_S
    )
    assert r.headers["x-request-id"] == request_id
    (line,) = server.lines_of(request_id)
    assert line["route"] == "/v1/users/{user_id}" and line["status"] == r.status_code
    assert user not in server.log_text()
