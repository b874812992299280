"""uvicorn's httptools protocol with the limits it lacks, enforced as the bytes arrive.

uvicorn (0.54, httptools) lets the app read a chunked body of any size before the app can
refuse it, never times out a client that sends its headers or body a few bytes a second, buffers
a header of any size, and keeps every connection it is given. This subclass bounds each:

- request line and headers: `max_header_bytes` in all (the parser is never fed more) and
  `max_header_count` headers, else 431;
- body: a Content-Length over `max_body_bytes` gets 413 at the headers, the body unread; a
  chunked one gets 413 as soon as it passes the limit (never buffered whole);
- time: the headers within `header_timeout_s` of the connection (or of the request's first
  byte on a kept-alive one), the body within `body_timeout_s` of the headers, else 408 (a
  connection that never sent a byte is just closed). Time the server makes a client wait
  (reading paused while the app catches up, a pipelined request queued) does not count;
- connections: past `max_connections` in this worker a new one gets 503 and is closed at once;
  the count of those it holds goes to `on_connections` at every change (the workers' balance,
  `service._connection_balance`).

Each refusal is answered with the API's error envelope and `connection: close`, written by the
protocol itself, logged in one line and counted (`on_refused`). After answering, what the client
still sends is read and dropped for up to a second, so that it reads the answer, not a reset.
A request whose app already runs (refused mid-body) is marked in its scope (`REFUSED_KEY`): the
app then sees a disconnect, and counts the request with the status the client was given.

Imported only by `service.server`, which hands `protocol_class(...)` to uvicorn as `http=`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, cast

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from service.api.middleware import REFUSED_KEY, REQUEST_ID_KEY
from service.core import logs

log = logging.getLogger("pgenrm.http")
_LINGER_S = 1.0
_CAP_WARNING_EVERY_S = 10.0


@dataclass(frozen=True)
class HttpLimits:
    max_header_bytes: int
    max_header_count: int
    header_timeout_s: float
    body_timeout_s: float
    max_body_bytes: int
    max_connections: int


@dataclass(frozen=True)
class _Setup:
    limits: HttpLimits
    on_refused: Callable[[str], None]  # the reason (a metric label)
    on_connections: Callable[[int], None] | None  # connections this worker now holds


@dataclass(frozen=True)
class _Refusal:
    reason: str
    status: int
    type: str
    message: str
    field: str | None


def protocol_class(
    limits: HttpLimits,
    on_refused: Callable[[str], None],
    on_connections: Callable[[int], None] | None = None,
) -> type[LimitedHttpToolsProtocol]:
    """The protocol class for uvicorn's `http=`, bound to these limits, the refusal counter
    and the report of how many connections this worker holds."""

    class Configured(LimitedHttpToolsProtocol):
        setup = _Setup(limits, on_refused, on_connections)

    return Configured


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    setup: ClassVar[_Setup]
    _cap_warned_at: ClassVar[float] = 0.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._timer: asyncio.TimerHandle | None = None
        self._phase: Literal["head", "body"] = "head"
        self._awaiting_head = True  # the next bytes belong to a request line or headers
        self._head_fed = 0  # bytes given to the parser since it began waiting for a head
        self._started = False  # the current request's first byte arrived
        self._header_bytes = self._header_count = self._body_bytes = 0
        self._refused = False
        self._linger_budget = 0

    # Connection

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if len(self.connections) >= self.setup.limits.max_connections:
            self.transport = cast(asyncio.Transport, transport)
            self._refused = True
            refusal = _Refusal(
                "too_many_connections",
                503,
                "unavailable",
                f"this worker holds its {self.setup.limits.max_connections:,} connections "
                "(PGENRM_MAX_CONNECTIONS); retry shortly",
                None,
            )
            self.transport.write(self._answer(refusal, logs.request_id(None)))
            self.transport.close()
            self.setup.on_refused(refusal.reason)
            now = time.monotonic()
            if now - LimitedHttpToolsProtocol._cap_warned_at >= _CAP_WARNING_EVERY_S:
                LimitedHttpToolsProtocol._cap_warned_at = now  # a flood logs once in a while
                log.warning("refusing connections: %s", refusal.message)
            return
        super().connection_made(transport)  # type: ignore[arg-type]
        self._arm(self.setup.limits.header_timeout_s)
        self._report_connections()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timer()
        super().connection_lost(exc)
        self._report_connections()

    def _report_connections(self) -> None:
        if self.setup.on_connections is not None:
            self.setup.on_connections(len(self.connections))

    def data_received(self, data: bytes) -> None:
        if not self._refused:
            data = self._feed(data)
        if self._refused and data:  # lingering after an answer: dropped, up to a budget
            self._linger_budget -= len(data)
            if self._linger_budget <= 0:
                self.transport.close()

    def _feed(self, data: bytes) -> bytes:
        """Parse `data`; what is left unparsed after a refusal is returned. While a head is
        awaited the parser gets at most what is left of the limit: it buffers a header whole
        before calling on_header, so it must never be handed more."""
        limit = self.setup.limits.max_header_bytes
        while self._awaiting_head and len(data) > limit - self._head_fed:
            room = limit - self._head_fed
            if room <= 0:
                self._refuse(self._headers_too_large())
                return data
            piece, data = data[:room], data[room:]
            self._head_fed += room
            super().data_received(piece)
            if self._refused or self.transport.is_closing():
                return data
        if self._awaiting_head:
            self._head_fed += len(data)
        super().data_received(data)
        return b""

    def handle_websocket_upgrade(self) -> None:
        self._cancel_timer()
        super().handle_websocket_upgrade()

    # Parser callbacks

    def on_message_begin(self) -> None:
        if self._refused:
            return
        self._started = True
        self._header_bytes = self._header_count = self._body_bytes = 0
        if self._timer is None:  # a kept-alive connection's next request
            self._arm(self.setup.limits.header_timeout_s)
        super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        if self._refused:
            return
        self._header_bytes += len(url)
        if self._header_bytes > self.setup.limits.max_header_bytes:
            self._refuse(self._headers_too_large())
            return
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._refused:
            return
        limits = self.setup.limits
        self._header_count += 1
        self._header_bytes += len(name) + len(value) + 4  # ": " and CRLF
        if self._header_count > limits.max_header_count:
            message = f"more than {limits.max_header_count} headers (PGENRM_MAX_HEADER_COUNT)"
            self._refuse(_Refusal("too_many_headers", 431, "headers_too_large", message, "headers"))
            return
        if self._header_bytes > limits.max_header_bytes:
            self._refuse(self._headers_too_large())
            return
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        if self._refused:
            return
        self._awaiting_head = False
        limit = self.setup.limits.max_body_bytes
        declared = next((v for k, v in self.headers if k == b"content-length"), b"")
        if declared.isdigit() and int(declared) > limit:
            self._refuse(self._too_large(int(declared)))  # the body is never read
            return
        self._phase = "body"
        self._cancel_timer()
        self._arm(self.setup.limits.body_timeout_s)
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if self._refused:
            return
        self._body_bytes += len(body)
        if self._body_bytes > self.setup.limits.max_body_bytes:
            self._refuse(self._too_large(None))
            return
        super().on_body(body)

    def on_message_complete(self) -> None:
        if self._refused:
            return
        self._cancel_timer()
        self._phase, self._awaiting_head, self._head_fed, self._started = "head", True, 0, False
        super().on_message_complete()

    # Timeouts

    def _arm(self, seconds: float) -> None:
        self._cancel_timer()
        self._timer = self.loop.call_later(seconds, self._timed_out)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _timed_out(self) -> None:
        self._timer = None
        if self._refused or self.transport.is_closing():
            return
        limits = self.setup.limits
        head = self._phase == "head"
        if self._waiting_on_us():
            self._arm(limits.header_timeout_s if head else limits.body_timeout_s)
        elif head and not self._started:  # never sent a byte (a pre-opened connection)
            self.setup.on_refused("idle_timeout")
            self.transport.close()
        elif head:
            message = f"request headers not received within {limits.header_timeout_s:g} s"
            self._refuse(_Refusal("header_timeout", 408, "request_timeout", message, "headers"))
        else:
            message = f"request body not received within {limits.body_timeout_s:g} s"
            self._refuse(_Refusal("body_timeout", 408, "request_timeout", message, "body"))

    def _waiting_on_us(self) -> bool:
        """True when the client is not the slow one: reading is paused (the app has not taken
        the body yet, or a pipelined request is queued), or an earlier response is under way."""
        if self.flow.read_paused:
            return True
        busy = self.cycle is not None and not self.cycle.response_complete
        return self._phase == "head" and busy

    # Refusals

    def _headers_too_large(self) -> _Refusal:
        limit = self.setup.limits.max_header_bytes
        message = f"request line and headers exceed {limit:,} bytes (PGENRM_MAX_HEADER_BYTES)"
        return _Refusal("headers_too_large", 431, "headers_too_large", message, "headers")

    def _too_large(self, declared: int | None) -> _Refusal:
        limit = self.setup.limits.max_body_bytes
        size = "" if declared is None else f" of {declared:,} bytes"
        message = f"request body{size} exceeds the limit of {limit:,} (PGENRM_MAX_BODY_BYTES)"
        return _Refusal("body_too_large", 413, "payload_too_large", message, "body")

    def _refuse(self, refusal: _Refusal) -> None:
        """Answer (when nothing of another response is on the wire), log, count, linger."""
        self._refused = True
        self._cancel_timer()
        request_id = self._request_id()
        in_app = self._phase == "body" and self.cycle is not None and not self.pipeline
        if self._phase == "head":
            idle = self.cycle is None or self.cycle.response_complete
            answer = idle and not self.pipeline
        else:
            answer = in_app and not self.cycle.response_started
        if in_app:  # its app is waiting for the body: it gets a disconnect instead
            if answer:
                cast(dict[str, Any], self.scope)[REFUSED_KEY] = refusal.status
            self.cycle.disconnected = True
            self.cycle.message_event.set()
        fields = {"request_id": request_id}
        log.warning(
            "refused %d %s: %s",
            refusal.status,
            refusal.reason,
            refusal.message,
            extra={"request_fields": fields},
        )
        self.setup.on_refused(refusal.reason)
        if not answer:
            self.transport.close()
            return
        self.transport.write(self._answer(refusal, request_id))
        if not self.transport.can_write_eof():
            self.transport.close()
            return
        self.transport.write_eof()  # the answer, then FIN; keep reading so it is not reset
        self._linger_budget = self.setup.limits.max_body_bytes
        self.flow.resume_reading()
        self._timer = self.loop.call_later(_LINGER_S, self.transport.close)

    def _request_id(self) -> str:
        """The id the app gave this request, else the client's (if sane), else a new one."""
        scope = cast(dict[str, Any] | None, self.scope if self._phase == "body" else None)
        if scope is not None and isinstance(scope.get(REQUEST_ID_KEY), str):
            return str(scope[REQUEST_ID_KEY])
        given = next((v for k, v in self.headers or [] if k == b"x-request-id"), None)
        request_id = logs.request_id(given)
        if scope is not None:  # the app, if it has not started yet, will use the same id
            scope[REQUEST_ID_KEY] = request_id
        return request_id

    def _answer(self, refusal: _Refusal, request_id: str) -> bytes:
        error = {"type": refusal.type, "message": refusal.message, "field": refusal.field}
        body = json.dumps({"error": {**error, "details": []}}).encode()
        head = [STATUS_LINE[refusal.status]]
        for name, value in self.server_state.default_headers:
            head += [name, b": ", value, b"\r\n"]
        head += [
            b"content-type: application/json\r\n",
            b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n",
            b"x-request-id: %s\r\n" % request_id.encode(),
        ]
        if refusal.status == 503:
            head.append(b"retry-after: 1\r\n")
        return b"".join([*head, b"\r\n", body])
