"""The one seam to Redis: a configured `redis.asyncio` client and the errors that mean "down".

The cache, the user store and the group and idempotency coordination all talk to the same
Redis (`PGENRM_REDIS_URL`); they get their clients here so timeouts, reconnection and the
error classes are decided once.
"""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

# What a call to a dead, slow or restarting Redis raises.
REDIS_DOWN: tuple[type[Exception], ...] = (RedisError, OSError, TimeoutError)


def connect(url: str, timeout_s: float) -> Redis:
    """A client with short socket timeouts and one immediate retry on a fresh connection: after
    a Redis restart the pooled connections are dead, and that alone should not fail a call."""
    client: Redis = Redis.from_url(
        url,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        health_check_interval=30,
        retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
    )
    return client
