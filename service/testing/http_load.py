"""A minimal HTTP/1.1 keep-alive client for load generation: pre-encoded JSON POSTs over asyncio
streams.

The benches run the client on the same two cores as the server, so every millisecond the client
spends building and parsing requests is taken from the server it measures. httpx (even over the
service's lean transport) cost ~1.1 ms of CPU per warm score on this machine; this costs a
fraction of that, as a load generator such as wrk does. It speaks only what the benches need:
`Content-Length` bodies, keep-alive, and the server's `connection: close` (it reconnects).
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit


class HTTPError(Exception):
    """A response this client cannot read (no Content-Length, or a broken status line)."""


class Connection:
    """One keep-alive connection to `url`'s host (one per simulated client)."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or parts.hostname is None:
            raise ValueError(f"an http:// URL with a host is needed, got {url!r}")
        self._host, self._port = parts.hostname, parts.port or 80
        self._authority = f"{self._host}:{self._port}".encode()
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    def request(self, path: str, body: bytes) -> bytes:
        """The bytes of a JSON POST of `body` to `path` (encode once, send many times)."""
        head = (
            b"POST " + path.encode() + b" HTTP/1.1\r\nhost: " + self._authority + b"\r\n"
            b"content-type: application/json\r\ncontent-length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
        )
        return head + body

    async def send(self, request: bytes) -> tuple[int, bytes]:
        """(status, body) of one pre-encoded request. A reused connection the server closed
        while idle is reopened once, before any byte of the answer arrived."""
        for attempt in range(2):
            reused = self._streams is not None
            reader, writer = self._streams or await self._open()
            try:
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                self.close()
                if reused and attempt == 0:
                    continue
                raise
            return await self._rest(reader, head)
        raise AssertionError("unreachable")

    async def _rest(self, reader: asyncio.StreamReader, head: bytes) -> tuple[int, bytes]:
        lines = head.decode("latin-1").split("\r\n")
        try:
            status = int(lines[0].split(" ", 2)[1])
        except (IndexError, ValueError) as error:
            self.close()
            raise HTTPError(f"bad status line {lines[0]!r}") from error
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip().lower()
        if "content-length" not in headers:
            self.close()
            raise HTTPError(f"status {status} without a Content-Length: {headers}")
        body = await reader.readexactly(int(headers["content-length"]))
        if headers.get("connection") == "close":
            self.close()
        return status, body

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        self._streams = await asyncio.open_connection(self._host, self._port)
        return self._streams

    def close(self) -> None:
        if self._streams is not None:
            self._streams[1].close()
            self._streams = None
