"""Idempotency keys: a retried call (same `Idempotency-Key`) is answered once, not scored twice.

The first call with a key runs; a duplicate that arrives while it runs waits for its answer;
one that arrives later gets the stored answer (for `ttl_s`). Answers with a 5xx or 429 status
are not stored: retrying those should run again. Reusing a key for a different body is a 422.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from typing import Any

from cachetools import TTLCache

from service.core.errors import InvalidRequest, Unavailable
from service.core.lru import ENTRY_OVERHEAD, digest, sizeof
from service.core.redis import REDIS_DOWN, connect

Result = dict[str, Any]  # {"status": HTTP status, "body": JSON body}
Work = Callable[[], Awaitable[Result]]


def storable(result: Result) -> bool:
    status = int(result["status"])
    return status < 500 and status != 429


def _reused(key: str) -> InvalidRequest:
    return InvalidRequest(
        f"Idempotency-Key {key!r} was already used for a different request body",
        field="Idempotency-Key",
    )


class Idempotency(ABC):
    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s

    @abstractmethod
    async def run(self, key: str, fingerprint: str, work: Work) -> tuple[Result, bool]:
        """The answer for this key (running `work` if nobody has), and whether it is a replay."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


class MemoryIdempotency(Idempotency):
    """This process's answers, for `ttl_s`: at most `max_keys` of them and `max_bytes` (each kept
    as its JSON under a digest of its key, so its size is what counts; the oldest go first)."""

    def __init__(self, ttl_s: float, max_keys: int = 100_000, max_bytes: int = 64 << 20) -> None:
        super().__init__(ttl_s)
        self._done: TTLCache[bytes, _Answer] = TTLCache(
            maxsize=max(max_bytes, 1), ttl=ttl_s, getsizeof=_answer_size
        )
        self._running: dict[str, tuple[str, asyncio.Future[Result]]] = {}
        self.max_keys = max_keys
        self.max_bytes = max_bytes

    async def run(self, key: str, fingerprint: str, work: Work) -> tuple[Result, bool]:
        stored = self._done.get(digest(key))
        if stored is not None:
            if stored[0] != fingerprint:
                raise _reused(key)
            return {"status": stored[1], "body": json.loads(stored[2])}, True
        running = self._running.get(key)
        if running is not None:
            if running[0] != fingerprint:
                raise _reused(key)
            return await asyncio.shield(running[1]), True
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._running[key] = (fingerprint, future)
        try:
            result = await work()
        except BaseException as error:
            future.set_exception(error)
            future.exception()  # retrieved: no "never retrieved" warning when nobody waited
            raise
        finally:
            del self._running[key]
        if storable(result):
            self._keep(digest(key), fingerprint, result)
        future.set_result(result)
        return result, False

    @property
    def nbytes(self) -> int:
        """Bytes of the answers kept, as counted against `max_bytes`."""
        return int(self._done.currsize)

    def _keep(self, name: bytes, fingerprint: str, result: Result) -> None:
        body = json.dumps(result["body"], separators=(",", ":")).encode()
        answer = (fingerprint, int(result["status"]), body)
        size = sizeof(name) + sizeof(answer) + ENTRY_OVERHEAD
        if self.max_keys <= 0 or size > self.max_bytes:
            return  # a retry runs again: slower, never wrong
        self._done[name] = (*answer, size)
        while len(self._done) > self.max_keys:
            self._done.popitem()


_Answer = tuple[str, int, bytes, int]  # fingerprint, status, JSON body, bytes counted


def _answer_size(answer: _Answer) -> int:
    return answer[3]


class RedisIdempotency(Idempotency):
    """Keys shared by every worker and replica: a `pending` marker (SET NX), then the answer."""

    def __init__(self, url: str, ttl_s: float, *, wait_s: float = 300.0, poll_s: float = 0.05):
        super().__init__(ttl_s)
        self._redis = connect(url, timeout_s=2.0)
        self._wait_s = wait_s
        self._poll_s = poll_s

    @staticmethod
    def _key(key: str) -> str:
        return "pgenrm:idem:" + hashlib.blake2b(key.encode(), digest_size=16).hexdigest()

    async def run(self, key: str, fingerprint: str, work: Work) -> tuple[Result, bool]:
        name = self._key(key)
        ttl_ms = int(self.ttl_s * 1000)
        pending = json.dumps({"fp": fingerprint})
        deadline = time.monotonic() + self._wait_s
        try:
            while True:
                if await self._redis.set(name, pending, nx=True, px=ttl_ms):
                    break  # ours to run
                raw = await self._redis.get(name)
                if raw is not None:
                    stored = json.loads(raw)
                    if stored["fp"] != fingerprint:
                        raise _reused(key)
                    if "result" in stored:
                        return stored["result"], True
                if time.monotonic() > deadline:
                    raise Unavailable("the first call with this Idempotency-Key is still running")
                await asyncio.sleep(self._poll_s)
        except REDIS_DOWN as error:
            raise Unavailable(f"idempotency keys need Redis, which failed: {error}") from error
        try:
            result = await work()
        except BaseException:
            await self._release(name)
            raise
        try:
            if storable(result):
                done = json.dumps({"fp": fingerprint, "result": result})
                await self._redis.set(name, done, px=ttl_ms)
            else:
                await self._redis.delete(name)
        except REDIS_DOWN:  # the answer stands; a retry would run again
            pass
        return result, False

    async def _release(self, name: str) -> None:
        with contextlib.suppress(*REDIS_DOWN):
            await self._redis.delete(name)

    async def close(self) -> None:
        await self._redis.aclose()
