"""Users in Redis: shared by every worker and replica, survives gateway restarts.

One key per user holding the record as JSON, with no TTL. Appends are optimistic transactions
(WATCH, read, MULTI/EXEC, again if another writer got in between), so concurrent appends from
different replicas never lose a pair.
"""

from __future__ import annotations

from collections.abc import Callable

from redis.exceptions import WatchError

from service.core.redis import REDIS_DOWN, connect
from service.users.base import StoredUser, UserStore, UserStoreError

PREFIX = "pgenrm:user:"
_ATTEMPTS = 20


class RedisUserStore(UserStore):
    name = "redis"

    def __init__(self, url: str, max_pairs: int, timeout_s: float = 1.0) -> None:
        super().__init__(max_pairs)
        self._redis = connect(url, timeout_s)

    async def get(self, user_id: str) -> StoredUser | None:
        try:
            raw = await self._redis.get(PREFIX + user_id)
        except REDIS_DOWN as error:
            raise UserStoreError(f"user store (redis): {error}") from error
        return None if raw is None else StoredUser.from_json(user_id, raw)

    async def _update(
        self, user_id: str, change: Callable[[StoredUser | None], StoredUser | None]
    ) -> StoredUser | None:
        key = PREFIX + user_id
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                for _ in range(_ATTEMPTS):
                    try:
                        await pipe.watch(key)
                        raw = await pipe.get(key)
                        old = None if raw is None else StoredUser.from_json(user_id, raw)
                        record = change(old)
                        if record is None:
                            await pipe.unwatch()  # type: ignore[no-untyped-call]
                            return None
                        pipe.multi()  # type: ignore[no-untyped-call]
                        pipe.set(key, record.to_json())
                        await pipe.execute()
                        return record
                    except WatchError:
                        continue
        except REDIS_DOWN as error:
            raise UserStoreError(f"user store (redis): {error}") from error
        raise UserStoreError(f"user {user_id!r} changed {_ATTEMPTS} times during one write")

    async def delete(self, user_id: str) -> bool:
        try:
            return bool(await self._redis.delete(PREFIX + user_id))
        except REDIS_DOWN as error:
            raise UserStoreError(f"user store (redis): {error}") from error

    async def close(self) -> None:
        await self._redis.aclose()
