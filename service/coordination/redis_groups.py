"""Group assembly through Redis: members may reach any worker process or replica.

Members append themselves to the group's list (a Lua script refuses them once the group is
closed). The member that completes the group, or the first to wait `wait_s`, claims it (Lua
again: exactly one claimer), scores the members it took, pushes each result onto that member's
own list and publishes the group on one channel. Each process keeps one subscription to that
channel and wakes its waiting members, which then pop their result: a waiting member holds no
Redis connection (hundreds of rollouts in flight would otherwise each hold one in BLPOP).
A member the claimer did not take (it came too late) is scored alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
from collections import defaultdict

from service.coordination.groups import (
    GroupAssembler,
    Joined,
    Member,
    Scorer,
    alone,
    failure,
)
from service.core.errors import Unavailable
from service.core.redis import REDIS_DOWN, connect

log = logging.getLogger("pgenrm.groups")

CHANNEL = "pgenrm:groups:closed"
# A waiting member checks its list this often even without a notice (one lost while the
# subscription reconnected must not leave it waiting for the whole deadline).
_RECHECK_S = 2.0

# KEYS: members list, leader key. ARGV: member JSON, ttl ms. -> list length, or -1 when closed.
_JOIN = """
if redis.call('EXISTS', KEYS[2]) == 1 then return -1 end
local n = redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return n
"""
# KEYS: members list, leader key. ARGV: ttl ms, size. -> {1, member...} for the one caller that
# closes the group, else {0, how many members the closer took}.
_CLAIM = """
local taken = redis.call('GET', KEYS[2])
if taken then return {0, tonumber(taken)} end
local members = redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[2]) - 1)
redis.call('DEL', KEYS[1])
redis.call('SET', KEYS[2], #members, 'PX', ARGV[1])
local out = {1}
for i = 1, #members do out[i + 1] = members[i] end
return out
"""


def _down(error: BaseException) -> Unavailable:
    return Unavailable(f"group assembly needs Redis, which failed: {error}")


class RedisGroups(GroupAssembler):
    def __init__(
        self, url: str, wait_s: float, max_pending: int = 10_000, *, deadline_s: float = 180.0
    ) -> None:
        super().__init__(wait_s, max_pending)
        self._deadline_s = deadline_s
        self._redis = connect(url, timeout_s=5.0)
        self._ttl_ms = int((wait_s + deadline_s + 60.0) * 1000)
        self._join = self._redis.register_script(_JOIN)
        self._claim = self._redis.register_script(_CLAIM)
        self._waiters: defaultdict[str, set[asyncio.Future[None]]] = defaultdict(set)
        self._listener: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()

    @staticmethod
    def _base(key: str) -> str:
        return "pgenrm:group:" + hashlib.blake2b(key.encode(), digest_size=16).hexdigest()

    async def join(self, key: str, size: int, member: Member, score: Scorer) -> Joined:
        await self._listen()
        base = self._base(key)
        members, leader = f"{base}:members", f"{base}:leader"
        try:
            n = int(
                await self._join(keys=[members, leader], args=[json.dumps(member), self._ttl_ms])
            )
        except REDIS_DOWN as error:
            raise _down(error) from error
        if n < 0:
            return await alone(member, score)  # the group was scored without this member
        mine = f"{base}:result:{n - 1}"
        if n < size:
            got = await self._await(base, mine, self.wait_s)
            if got is not None:
                return got
        claimed = await self._try_claim(base, size, score)
        if claimed is not None and n - 1 < len(claimed):
            return claimed[n - 1]
        if n - 1 < await self._taken(leader):  # another member is scoring this one's group
            got = await self._await(base, mine, self._deadline_s + self.wait_s)
            if got is not None:
                return got
            raise Unavailable("the member scoring this group did not answer in time")
        return await alone(member, score)

    async def _try_claim(self, base: str, size: int, score: Scorer) -> list[Joined] | None:
        members, leader = f"{base}:members", f"{base}:leader"
        try:
            reply = await self._claim(keys=[members, leader], args=[self._ttl_ms, size])
        except REDIS_DOWN as error:
            raise _down(error) from error
        if int(reply[0]) != 1:
            return None
        taken = [json.loads(raw) for raw in reply[1:]]
        try:
            outcomes = await score(taken)
        except Exception as error:  # every member must hear back, not wait out the deadline
            log.exception("scoring a group failed")
            outcomes = [failure(error)] * len(taken)
        joined = [Joined(r, len(taken), len(taken) < size) for r in outcomes]
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for i, j in enumerate(joined):
                    payload = {"result": j.result, "arrived": j.arrived, "partial": j.partial}
                    pipe.rpush(f"{base}:result:{i}", json.dumps(payload))
                    pipe.pexpire(f"{base}:result:{i}", self._ttl_ms)
                # Late members get `wait_s` to find the group closed (and go alone); after
                # that the id is free for a new group (a trainer's next step, a new epoch).
                pipe.pexpire(leader, max(1, int(self.wait_s * 1000)))
                pipe.publish(CHANNEL, base)
                await pipe.execute()
        except REDIS_DOWN as error:
            log.error("could not hand a group's results to its members: %s", error)
        return joined

    async def _taken(self, leader: str) -> int:
        with contextlib.suppress(*REDIS_DOWN):
            raw = await self._redis.get(leader)
            return int(raw) if raw is not None else 0
        return 0

    async def _await(self, base: str, key: str, timeout_s: float) -> Joined | None:
        """This member's result once its group is announced (or found on a recheck)."""
        deadline = time.monotonic() + timeout_s
        while True:
            notice: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters[base].add(notice)
            try:
                got = await self._pop(key)
                left = deadline - time.monotonic()
                if got is not None or left <= 0:
                    return got
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(notice, min(left, _RECHECK_S))
            finally:
                self._waiters[base].discard(notice)
                if not self._waiters[base]:
                    del self._waiters[base]

    async def _pop(self, key: str) -> Joined | None:
        try:
            raw = await self._redis.lpop(key)
        except REDIS_DOWN as error:
            raise _down(error) from error
        if not isinstance(raw, bytes | str):
            return None
        payload = json.loads(raw)
        return Joined(payload["result"], int(payload["arrived"]), bool(payload["partial"]))

    async def _listen(self) -> None:
        """Start this process's one subscription (once), and give it a moment to be live."""
        if self._listener is None:
            self._listener = asyncio.create_task(self._notices())
        if not self._subscribed.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._subscribed.wait(), 2.0)

    async def _notices(self) -> None:
        while True:
            pubsub = self._redis.pubsub()
            try:
                await pubsub.subscribe(CHANNEL)
                self._subscribed.set()
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if message is not None:
                        data = message["data"]
                        base = data.decode() if isinstance(data, bytes) else str(data)
                        for notice in self._waiters.get(base, ()):
                            if not notice.done():
                                notice.set_result(None)
            except REDIS_DOWN as error:
                self._subscribed.clear()
                log.warning("group notices lost their Redis subscription (%s); retrying", error)
                await asyncio.sleep(1.0)
            finally:
                with contextlib.suppress(*REDIS_DOWN):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        await self._redis.aclose()
