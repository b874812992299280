"""Request ids, bound log fields and the JSON format, and the app's side of a client that
left mid-body, in process (the HTTP protocol's side is in the server tests)."""

from __future__ import annotations

import asyncio
import contextvars
import io
import json
import logging
import re
from typing import Any

import pytest

from service.app import create_app
from service.core import logs
from service.core.config import Settings


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("abc-123", True),
        (b"trace.1:span_2-x", True),
        ("x" * 128, True),
        ("x" * 129, False),
        ("", False),
        ("has space", False),
        ("new\nline", False),
        ("ünïcode", False),
        (None, False),
    ],
)
def test_a_request_id_is_kept_only_when_sane(given: str | bytes | None, kept: bool) -> None:
    made = logs.request_id(given)
    if kept:
        assert made == (given.decode() if isinstance(given, bytes) else given)
    else:
        assert re.fullmatch(r"[0-9a-f]{32}", made)


def _logger(formatter: logging.Formatter) -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(logs.ContextFilter())
    handler.setFormatter(formatter)
    logger = logging.getLogger(f"pgenrm.test.{id(stream)}")
    logger.propagate = False
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    return logger, stream


def test_json_lines_carry_the_request_id_and_bound_fields() -> None:
    logger, stream = _logger(logs.JsonFormatter())

    def request() -> None:
        logs.begin("req-1")
        logs.bind(key="trainer-a", tenant="lab")
        logger.info("scored %d candidates", 4, extra={"data": {"status": 200}})
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("failed")

    contextvars.copy_context().run(request)
    logger.info("outside any request")
    first, second, third = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["message"] == "scored 4 candidates" and first["level"] == "INFO"
    assert first["logger"] == logger.name and re.fullmatch(r"\d{4}-.*T.*\.\d{3}Z", first["time"])
    assert (first["request_id"], first["key"], first["tenant"]) == ("req-1", "trainer-a", "lab")
    assert first["status"] == 200
    assert second["request_id"] == "req-1" and "ValueError: boom" in second["exception"]
    assert "request_id" not in third


def test_text_lines_end_with_the_request_fields() -> None:
    logger, stream = _logger(logging.Formatter("%(message)s%(request_context)s"))

    def request() -> None:
        logs.begin("req-2")
        logs.bind(tenant="lab")
        logger.info("hello")

    contextvars.copy_context().run(request)
    assert stream.getvalue() == "hello request_id=req-2 tenant=lab\n"


async def test_a_field_bound_in_a_worker_thread_reaches_the_request_s_later_lines() -> None:
    async def request() -> dict[str, str]:
        logs.begin("req-3")
        await asyncio.to_thread(logs.bind, key="trainer-b")  # e.g. a sync dependency
        return logs.bound()

    assert await asyncio.create_task(request()) == {"request_id": "req-3", "key": "trainer-b"}
    assert logs.bound() == {}  # the request's task had its own context


async def _call(app: Any, headers: list[tuple[bytes, bytes]], events: list[Any]) -> list[Any]:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/score",
        "raw_path": b"/v1/score",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"t"), (b"content-type", b"application/json"), *headers],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 2),
        "state": {},
    }
    sent: list[Any] = []

    async def receive() -> Any:
        return events.pop(0) if events else {"type": "http.disconnect"}

    async def send(message: Any) -> None:
        sent.append(message)

    await asyncio.create_task(app(scope, receive, send))  # its own task, as under uvicorn
    return sent


async def test_a_client_that_leaves_mid_body_is_a_499_in_one_warning_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = create_app(Settings())
    partial = {"type": "http.request", "body": b'{"user_id": "u', "more_body": True}
    with caplog.at_level(logging.INFO):
        sent = await _call(app, [(b"x-request-id", b"left-1")], [partial])
    start = next(m for m in sent if m["type"] == "http.response.start")
    assert start["status"] == 499 and (b"x-request-id", b"left-1") in start["headers"]
    labels = {"route": "/v1/score", "method": "POST", "status": "499"}
    registry = app.state.pgenrm.metrics.registry
    assert registry.get_sample_value("pgenrm_requests_total", labels) == 1
    left = {"route": "/v1/score"}
    assert registry.get_sample_value("pgenrm_client_disconnects_total", left) == 1
    records = [r for r in caplog.records if r.name.startswith(("pgenrm", "uvicorn"))]
    assert [(r.name, r.levelname) for r in records] == [("pgenrm.access", "WARNING")]
    assert records[0].exc_info is None
