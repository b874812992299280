"""The lean HTTP/1.1 transport against tiny raw servers: keep-alive reuse, stale connections,
timeouts and refused connections map to httpx's own exceptions."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from service.backends.openai._transport import LeanTransport

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        (
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        ),
        0,
    )
    return await reader.readexactly(length)


def _reply(body: bytes, *, close: bool = False) -> bytes:
    extra = b"Connection: close\r\n" if close else b""
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), extra, body)


async def serve(handler: Handler) -> AsyncIterator[str]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        await server.wait_closed()


def request(url: str, body: bytes = b"{}", read: float = 2.0) -> httpx.Request:
    return httpx.Request(
        "POST", url, content=body, extensions={"timeout": {"connect": 2.0, "read": read}}
    )


async def test_keep_alive_reuses_one_connection() -> None:
    connections = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        try:
            while True:
                body = await _read_request(reader)
                writer.write(_reply(b"echo:" + body))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    transport = LeanTransport()
    async for url in serve(handler):
        for i in range(3):
            response = await transport.handle_async_request(request(url, f"{i}".encode()))
            assert response.status_code == 200 and response.content == f"echo:{i}".encode()
        await transport.aclose()
    assert connections == 1


async def test_a_connection_the_server_dropped_is_retried_on_a_fresh_one() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(_reply(b"ok"))  # keep-alive promised, then the server drops it
        await writer.drain()
        writer.close()

    transport = LeanTransport()
    async for url in serve(handler):
        first = await transport.handle_async_request(request(url))
        await asyncio.sleep(0.05)
        second = await transport.handle_async_request(request(url))
        assert first.content == second.content == b"ok"
        await transport.aclose()


async def test_timeouts_and_refusals_are_httpx_errors() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await asyncio.sleep(5)
        finally:
            writer.close()

    transport = LeanTransport()
    async for url in serve(silent):
        with pytest.raises(httpx.ReadTimeout):
            await transport.handle_async_request(request(url, read=0.1))
    with pytest.raises(httpx.ConnectError):
        await transport.handle_async_request(request(url))  # the server is gone
    await transport.aclose()
