"""Build what settings name: backends, caches, the user store, group and idempotency stores.

The one place that knows every implementation; everything else receives what it needs.
"""

from __future__ import annotations

from functools import partial

from service.backends.embedded.backend import EmbeddedBackend
from service.backends.embedded.critic import EmbeddedCritic
from service.backends.embedded.params import load_params
from service.backends.openai.backend import OpenAIBackend, OpenAIOptions
from service.backends.openai.critic import OpenAICritic
from service.cache.memory import MemoryStore
from service.cache.redis import RedisStore
from service.coordination.groups import GroupAssembler, MemoryGroups
from service.coordination.idempotency import Idempotency, MemoryIdempotency, RedisIdempotency
from service.coordination.ratelimit import RateLimiter
from service.coordination.redis_groups import RedisGroups
from service.core.config import Settings
from service.core.embedder import load_embedder
from service.core.metrics import Metrics
from service.engine.backend import Backend
from service.engine.cache import Caches, Store
from service.engine.critic import Critic
from service.users.base import UserStore
from service.users.redis import RedisUserStore
from service.users.sqlite import SQLiteUserStore


def build_caches(settings: Settings, metrics: Metrics | None = None) -> Caches:
    store: Store
    if settings.redis_url:
        store = RedisStore(settings.redis_url, metrics, timeout_s=settings.redis_timeout_s)
    else:
        store = MemoryStore(settings.cache_max_entries, settings.cache_max_bytes)
    return Caches(store, metrics, settings.cache_ttl_s)


def build_embedded(settings: Settings, caches: Caches | None = None) -> EmbeddedBackend:
    embedder = partial(
        load_embedder,
        settings.embedder,
        max_seq_length=settings.embedder_max_seq_length,
        cache_size=settings.embedder_cache_size,
        cache_bytes=settings.embedder_cache_bytes,
        disk_cache=settings.embedder_disk_cache,
        precision=settings.embedder_precision,
        runtime=settings.embedder_runtime,
        onnx_dir=settings.embedder_onnx_dir,
    )
    return EmbeddedBackend(
        embedder,
        load_params(settings.embedded_params),
        caches,
        background_nice=settings.background_nice,
    )


def build_openai(settings: Settings) -> OpenAIBackend:
    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
    affinity = settings.openai_affinity_key
    return OpenAIBackend(
        OpenAIOptions(
            urls=tuple(settings.openai_urls),
            model=settings.openai_model,
            api_key=key,
            temperature=settings.openai_temperature,
            top_p=settings.openai_top_p,
            max_tokens=settings.openai_max_tokens,
            connect_timeout_s=settings.openai_connect_timeout_s,
            read_timeout_s=settings.openai_read_timeout_s,
            retries=settings.openai_retries,
            max_concurrency=settings.openai_max_concurrency,
            structured=settings.openai_structured,
            structured_schema=settings.openai_structured_schema,
            health_interval_s=settings.openai_health_interval_s,
            capabilities=settings.openai_capabilities,
            affinity_header=settings.openai_affinity_header,
            affinity_key=affinity.get_secret_value().encode() if affinity else None,
        )
    )


def build_users(settings: Settings) -> UserStore:
    """Redis when configured (shared by replicas), else one SQLite file under the state dir."""
    if settings.redis_url:
        return RedisUserStore(settings.redis_url, settings.max_stored_pairs)
    return SQLiteUserStore(settings.state_dir / "users.sqlite3", settings.max_stored_pairs)


def build_groups(settings: Settings) -> GroupAssembler:
    if settings.redis_url:
        return RedisGroups(
            settings.redis_url,
            settings.group_wait_s,
            settings.max_pending_groups,
            deadline_s=settings.score_deadline_s,
        )
    return MemoryGroups(settings.group_wait_s, settings.max_pending_groups)


def build_limiter(settings: Settings) -> RateLimiter:
    """Key budgets shared by every process and replica through Redis when configured."""
    if settings.redis_url:
        return RateLimiter.redis(settings.redis_url, settings.redis_timeout_s)
    return RateLimiter()


def build_idempotency(settings: Settings) -> Idempotency:
    if settings.redis_url:
        return RedisIdempotency(
            settings.redis_url, settings.idempotency_ttl_s, wait_s=settings.score_deadline_s
        )
    return MemoryIdempotency(settings.idempotency_ttl_s, max_bytes=settings.idempotency_max_bytes)


def build_backend(settings: Settings, caches: Caches | None = None) -> Backend:
    if settings.backend == "openai":
        return build_openai(settings)
    return build_embedded(settings, caches)


def build_fallback(settings: Settings, caches: Caches | None = None) -> Backend | None:
    """The embedded backend behind an LLM backend, when degraded answers are enabled."""
    if settings.backend != "embedded" and settings.fallback_embedded:
        return build_embedded(settings, caches)
    return None


def build_critic(backend: Backend, embedded: EmbeddedBackend | None) -> Critic | None:
    """The critique reward's critic: the LLM itself when the backend is one, else the
    embedded critic on the embedded backend's embedder (once it is loaded); None for a backend
    of neither kind."""
    if isinstance(backend, OpenAIBackend):
        return OpenAICritic(backend)
    if embedded is None:
        return None
    return EmbeddedCritic(provider=lambda: embedded.embedder if embedded.ready else None)
