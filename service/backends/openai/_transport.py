"""A lean HTTP/1.1 keep-alive transport for the shared `httpx.AsyncClient`.

httpx's default pool re-checks every idle connection's socket on each request and response
(through anyio's attribute machinery); with a score's nine concurrent calls that was 60% of the
gateway's CPU per score. This transport keeps httpx's client API, timeouts and exceptions, and
drives `h11` (httpx's own HTTP/1.1 state machine) over plain asyncio streams: one idle list per
origin, a connection cap, and one transparent retry when a reused keep-alive connection turns
out to have been closed by the server before it answered. No proxies, no HTTP/2.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import h11
import httpx

_READ_SIZE = 1 << 16


@dataclass
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    state: h11.Connection

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


class _Stale(Exception):
    """A reused connection was closed by the peer before any response byte."""


class LeanTransport(httpx.AsyncBaseTransport):
    def __init__(self, max_connections: int = 100) -> None:
        self._idle: dict[tuple[str, str, int], list[_Connection]] = defaultdict(list)
        self._slots: dict[tuple[str, str, int], asyncio.Semaphore] = {}
        self._max = max_connections
        self._ssl: ssl.SSLContext | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        port = url.port or (443 if url.scheme == "https" else 80)
        origin = (url.scheme, url.host, port)
        timeouts: dict[str, float | None] = request.extensions.get("timeout", {})
        slot = self._slots.setdefault(origin, asyncio.Semaphore(self._max))
        body = await request.aread()
        async with slot:
            for _ in range(2):
                reused = bool(self._idle[origin])
                conn = self._idle[origin].pop() if reused else await self._connect(origin, timeouts)
                try:
                    return await self._exchange(conn, request, body, origin, timeouts, reused)
                except _Stale:
                    # The server dropped an idle connection; the others idle as long were
                    # likely dropped too (a keep-alive timeout): retry on a fresh one.
                    conn.close()
                    for idle in self._idle.pop(origin, []):
                        idle.close()
            raise httpx.RemoteProtocolError("server closed the connection", request=request)

    async def _connect(self, origin: tuple[str, str, int], timeouts: dict[str, Any]) -> _Connection:
        scheme, host, port = origin
        context = None
        if scheme == "https":
            self._ssl = self._ssl or ssl.create_default_context()
            context = self._ssl
        try:
            # asyncio.timeout, not wait_for: on 3.11 a wait_for cancelled just as the connection
            # opened drops the connection unclosed (a ResourceWarning when it is collected).
            async with asyncio.timeout(timeouts.get("connect")):
                reader, writer = await asyncio.open_connection(host, port, ssl=context)
        except TimeoutError as error:
            raise httpx.ConnectTimeout(f"connect to {host}:{port} timed out") from error
        except OSError as error:
            raise httpx.ConnectError(f"cannot connect to {host}:{port}: {error}") from error
        return _Connection(reader, writer, h11.Connection(h11.CLIENT))

    async def _exchange(
        self,
        conn: _Connection,
        request: httpx.Request,
        body: bytes,
        origin: tuple[str, str, int],
        timeouts: dict[str, Any],
        reused: bool,
    ) -> httpx.Response:
        state = conn.state
        headers = list(request.headers.raw)
        try:
            conn.writer.write(
                state.send(
                    h11.Request(method=request.method, target=request.url.raw_path, headers=headers)
                )
                + state.send(h11.Data(data=body))
                + state.send(h11.EndOfMessage())
            )
            await conn.writer.drain()
            response, chunks = None, []
            while True:
                event = state.next_event()
                if event is h11.NEED_DATA:
                    data = await asyncio.wait_for(
                        conn.reader.read(_READ_SIZE), timeouts.get("read")
                    )
                    if not data and reused and response is None:
                        raise _Stale()
                    state.receive_data(data)
                elif isinstance(event, h11.Response):
                    response = event
                elif isinstance(event, h11.Data):
                    chunks.append(bytes(event.data))
                elif isinstance(event, h11.EndOfMessage):
                    break
                elif isinstance(event, h11.ConnectionClosed):
                    raise httpx.RemoteProtocolError(
                        "connection closed mid-response", request=request
                    )
        except _Stale:
            raise
        except TimeoutError as error:
            conn.close()
            raise httpx.ReadTimeout("read timed out", request=request) from error
        except (ConnectionError, OSError) as error:
            conn.close()
            if reused and response is None:
                raise _Stale() from error
            raise httpx.ReadError(str(error), request=request) from error
        except h11.ProtocolError as error:
            conn.close()
            raise httpx.RemoteProtocolError(str(error), request=request) from error
        except BaseException:
            conn.close()  # cancelled mid-exchange: the connection's state is unknown
            raise
        assert response is not None
        if state.our_state is h11.DONE and state.their_state is h11.DONE:
            state.start_next_cycle()
            self._idle[origin].append(conn)
        else:
            conn.close()
        return httpx.Response(
            response.status_code,
            headers=list(response.headers),
            content=b"".join(chunks),
            request=request,
        )

    async def aclose(self) -> None:
        idle = [conn for conns in self._idle.values() for conn in conns]
        self._idle.clear()
        for conn in idle:
            conn.close()
            with contextlib.suppress(Exception):
                await conn.writer.wait_closed()
