"""Group assembly: per-sample calls that belong together are scored together, in one plan.

A trainer that asks for one reward per rollout (OpenRLHF, veRL) sends a group's members as
separate calls. Each member joins its group; when `size` members arrived, or when the first
one has waited `wait_s`, the group closes and one caller scores every member that arrived
(flagged partial when short), and each member gets its own answer. A member arriving after the
group closed is scored alone (also flagged partial).

`score` turns the members (JSON-able dicts) into one result per member (JSON-able dicts). In
process the callables and futures stay in memory; through Redis, members and results travel as
JSON, so members may reach different worker processes or replicas.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from service.core.errors import Unavailable
from service.core.redis import REDIS_DOWN, connect

log = logging.getLogger("pgenrm.groups")

Member = dict[str, Any]
Result = dict[str, Any]  # {"status": HTTP status, "body": response or error envelope}
Scorer = Callable[[list[Member]], Awaitable[list[Result]]]


def failure(error: BaseException) -> Result:
    envelope: dict[str, Any] = {
        "type": "internal_error",
        "message": f"scoring the group failed: {type(error).__name__}",
        "field": None,
        "details": [],
    }
    return {"status": 500, "body": {"error": envelope}}


@dataclass(frozen=True)
class Joined:
    """What one member got: its result, and how its group was scored."""

    result: Result
    arrived: int  # members scored together
    partial: bool  # closed before `size` members arrived (or this member came too late)


class GroupAssembler(ABC):
    def __init__(self, wait_s: float, max_pending: int = 10_000) -> None:
        self.wait_s = wait_s
        self.max_pending = max_pending

    @abstractmethod
    async def join(self, key: str, size: int, member: Member, score: Scorer) -> Joined:
        """Wait for the group, then this member's result."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


async def _alone(member: Member, score: Scorer) -> Joined:
    [result] = await score([member])
    return Joined(result, 1, True)


@dataclass
class _Pending:
    size: int
    score: Scorer
    members: list[Member] = field(default_factory=list)
    futures: list[asyncio.Future[Joined]] = field(default_factory=list)
    timer: asyncio.TimerHandle | None = None
    closed: bool = False


class MemoryGroups(GroupAssembler):
    """One process's groups (the default without Redis)."""

    def __init__(self, wait_s: float, max_pending: int = 10_000) -> None:
        super().__init__(wait_s, max_pending)
        self._pending: dict[str, _Pending] = {}
        self._scoring: set[asyncio.Task[None]] = set()  # strong references while they run

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def join(self, key: str, size: int, member: Member, score: Scorer) -> Joined:
        loop = asyncio.get_running_loop()
        group = self._pending.get(key)
        if group is None:
            if len(self._pending) >= self.max_pending:
                raise Unavailable(
                    f"{len(self._pending)} groups are assembling (PGENRM_MAX_PENDING_GROUPS)",
                    retry_after=1,
                )
            group = _Pending(size, score)
            self._pending[key] = group
            group.timer = loop.call_later(self.wait_s, self._close, key, group)
        future: asyncio.Future[Joined] = loop.create_future()
        group.members.append(member)
        group.futures.append(future)
        if len(group.members) >= group.size:
            self._close(key, group)
        return await asyncio.shield(future)  # a caller that gives up leaves the group intact

    def _close(self, key: str, group: _Pending) -> None:
        if group.closed:
            return
        group.closed = True
        if group.timer is not None:
            group.timer.cancel()
        if self._pending.get(key) is group:
            del self._pending[key]
        task = asyncio.get_running_loop().create_task(self._score(group))
        self._scoring.add(task)
        task.add_done_callback(self._scoring.discard)

    async def _score(self, group: _Pending) -> None:
        arrived = len(group.members)
        try:
            results = await group.score(group.members)
        except BaseException as error:
            for future in group.futures:
                if not future.done():
                    future.set_exception(error)
            if not isinstance(error, Exception):
                raise
            return
        partial = arrived < group.size
        for future, result in zip(group.futures, results, strict=True):
            if not future.done():
                future.set_result(Joined(result, arrived, partial))


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


class RedisGroups(GroupAssembler):
    """Groups shared by every worker and replica on one Redis.

    Members append themselves to a list (atomically refused once the group closed). The member
    that completes the group, or the first to wait `wait_s`, claims it (atomically: one
    claimer), scores the members it took, and pushes each result to that member's own list,
    where the member is blocked in BLPOP. A member the claimer did not take is scored alone.
    """

    def __init__(
        self, url: str, wait_s: float, max_pending: int = 10_000, *, deadline_s: float = 180.0
    ) -> None:
        super().__init__(wait_s, max_pending)
        self._deadline_s = deadline_s
        # Blocking pops wait up to a score's deadline: the socket must wait longer than that.
        self._redis = connect(url, timeout_s=wait_s + deadline_s + 10.0)
        self._ttl_ms = int((wait_s + deadline_s + 60.0) * 1000)
        self._join = self._redis.register_script(_JOIN)
        self._claim = self._redis.register_script(_CLAIM)

    def _keys(self, key: str) -> tuple[str, str, str]:
        base = "pgenrm:group:" + hashlib.blake2b(key.encode(), digest_size=16).hexdigest()
        return f"{base}:members", f"{base}:leader", f"{base}:result:"

    async def join(self, key: str, size: int, member: Member, score: Scorer) -> Joined:
        members, leader, results = self._keys(key)
        try:
            n = int(
                await self._join(keys=[members, leader], args=[json.dumps(member), self._ttl_ms])
            )
        except REDIS_DOWN as error:
            raise Unavailable(f"group assembly needs Redis, which failed: {error}") from error
        if n < 0:
            return await _alone(member, score)  # the group was scored without this member
        index = n - 1
        if n < size:
            got = await self._pop(results + str(index), self.wait_s)
            if got is not None:
                return got
        claimed = await self._try_claim(members, leader, results, size, score)
        if claimed is not None and index < len(claimed):
            return claimed[index]
        taken = await self._taken(leader)
        if index < taken:  # another member is scoring this one's group
            got = await self._pop(results + str(index), self._deadline_s + self.wait_s)
            if got is not None:
                return got
            raise Unavailable("the member scoring this group did not answer in time")
        return await _alone(member, score)

    async def _try_claim(
        self, members: str, leader: str, results: str, size: int, score: Scorer
    ) -> list[Joined] | None:
        try:
            reply = await self._claim(keys=[members, leader], args=[self._ttl_ms, size])
        except REDIS_DOWN as error:
            raise Unavailable(f"group assembly needs Redis, which failed: {error}") from error
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
                    pipe.rpush(results + str(i), json.dumps(payload))
                    pipe.pexpire(results + str(i), self._ttl_ms)
                # Late members get `wait_s` to find the group closed (and go alone); after
                # that the id is free for a new group (a trainer's next step, a new epoch).
                pipe.pexpire(leader, max(1, int(self.wait_s * 1000)))
                await pipe.execute()
        except REDIS_DOWN as error:
            log.error("could not hand a group's results to its members: %s", error)
        return joined

    async def _taken(self, leader: str) -> int:
        with contextlib.suppress(*REDIS_DOWN):
            raw = await self._redis.get(leader)
            return int(raw) if raw is not None else 0
        return 0

    async def _pop(self, key: str, timeout_s: float) -> Joined | None:
        try:
            got = await self._redis.blpop([key], timeout=max(timeout_s, 0.01))
        except REDIS_DOWN as error:
            raise Unavailable(f"group assembly needs Redis, which failed: {error}") from error
        if got is None:
            return None
        payload = json.loads(got[1])
        return Joined(payload["result"], int(payload["arrived"]), bool(payload["partial"]))

    async def close(self) -> None:
        await self._redis.aclose()
