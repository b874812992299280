"""The benches' load client against a real loopback socket: it keeps a connection alive, honours
the server's `connection: close`, reopens one the server closed while idle, and refuses an
answer it cannot frame."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from service.testing.http_load import Connection, HTTPError

Reply = Callable[[int, bytes], bytes]  # (connection number, request body) -> response bytes


class Server:
    """A loopback HTTP/1.1 server that answers each request with `reply` and counts
    connections; `close_after` ends every connection after that many answers."""

    def __init__(self, reply: Reply, close_after: int | None = None) -> None:
        self.reply, self.close_after = reply, close_after
        self.connections = 0
        self.url = ""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        number, answered = self.connections, 0
        try:
            while self.close_after is None or answered < self.close_after:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                body = await reader.readexactly(length)
                writer.write(self.reply(number, body))
                await writer.drain()
                answered += 1
        except asyncio.IncompleteReadError:
            pass
        writer.close()


def ok(number: int, body: bytes, extra: bytes = b"") -> bytes:
    answer = b'{"conn": %d, "echo": %s}' % (number, body)
    return b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n%s\r\n%s" % (len(answer), extra, answer)


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Server], asyncio.Future[str]]]:
    servers: list[asyncio.Server] = []

    async def start(server: Server) -> str:
        listening = await asyncio.start_server(server.handle, "127.0.0.1", 0)
        servers.append(listening)
        port = listening.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    yield lambda server: asyncio.ensure_future(start(server))
    for listening in servers:
        listening.close()
        await listening.wait_closed()


async def test_requests_share_one_keep_alive_connection(
    serve: Callable[[Server], asyncio.Future[str]],
) -> None:
    server = Server(ok)
    connection = Connection(await serve(server))
    request = connection.request("/v1/score", b'"a"')
    answers = [await connection.send(request) for _ in range(3)]
    assert answers == [(200, b'{"conn": 1, "echo": "a"}')] * 3
    assert server.connections == 1
    connection.close()


async def test_the_servers_connection_close_is_honoured(
    serve: Callable[[Server], asyncio.Future[str]],
) -> None:
    # The server would keep the connection: only the header says to close it.
    server = Server(lambda n, body: ok(n, body, b"connection: close\r\n"))
    connection = Connection(await serve(server))
    request = connection.request("/v1/score", b"1")
    assert [(await connection.send(request))[1] for _ in range(3)] == [
        b'{"conn": %d, "echo": 1}' % n for n in (1, 2, 3)
    ]
    assert server.connections == 3


async def test_a_connection_closed_while_idle_is_reopened_once(
    serve: Callable[[Server], asyncio.Future[str]],
) -> None:
    server = Server(ok, close_after=1)  # closes without saying so, like an idle timeout
    connection = Connection(await serve(server))
    request = connection.request("/v1/score", b"2")
    assert (await connection.send(request))[0] == 200
    await asyncio.sleep(0.05)  # the server's close reaches the client
    assert (await connection.send(request))[1] == b'{"conn": 2, "echo": 2}'
    assert server.connections == 2
    connection.close()


async def test_an_answer_without_a_length_is_refused(
    serve: Callable[[Server], asyncio.Future[str]],
) -> None:
    server = Server(
        lambda n, body: b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n"
    )
    connection = Connection(await serve(server))
    with pytest.raises(HTTPError, match="without a Content-Length"):
        await connection.send(connection.request("/v1/score", b"3"))
    with pytest.raises(ValueError, match="http:// URL"):
        Connection("https://example.org")
