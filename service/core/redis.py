"""The one seam to Redis: a configured `redis.asyncio` client and the errors that mean "down".

The cache, the user store and the group and idempotency coordination all talk to the same
Redis (`PGENRM_REDIS_URL`); they get their clients here so timeouts, reconnection and the
error classes are decided once.
"""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

# What a call to a dead, slow or restarting Redis raises.
REDIS_DOWN: tuple[type[Exception], ...] = (RedisError, OSError, TimeoutError)


def connect(url: str, timeout_s: float, max_connections: int = 64) -> Redis:
    """A client with short socket timeouts and one immediate retry on a fresh connection: after
    a Redis restart the pooled connections are dead, and that alone should not fail a call.

    At most `max_connections` per process: a burst of calls (hundreds of rollouts at once)
    waits up to `timeout_s` for a free one instead of opening more, or failing at once as
    redis-py's default pool does past 100."""
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=timeout_s,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        health_check_interval=30,
        retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
    )
    client: Redis = Redis.from_pool(pool)  # closing the client closes its pool
    return client
