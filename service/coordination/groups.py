"""Group assembly: per-sample calls that belong together are scored together, in one plan.

A trainer that asks for one reward per rollout (OpenRLHF, veRL) sends a group's members as
separate calls. Each member joins its group; when `size` members arrived, or when the first
one has waited `wait_s`, the group closes and one caller scores every member that arrived
(flagged partial when short), and each member gets its own answer. A member arriving after the
group closed is scored alone (also flagged partial).

`score` turns the members (JSON-able dicts) into one result per member (JSON-able dicts). In
process (`MemoryGroups`, here) the callables and futures stay in memory; through Redis
(`service.coordination.redis_groups`), members and results travel as JSON, so members may reach
different worker processes or replicas.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from service.core.errors import Unavailable

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


async def alone(member: Member, score: Scorer) -> Joined:
    """A member whose group was scored without it (it came too late): scored by itself."""
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
