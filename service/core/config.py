"""Service settings: environment variables with prefix `PGENRM_`, validated at start-up.

Built once by the CLI (or a test) and passed to `create_app(settings)`; nothing reads the
environment at import time.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def _default_state_dir() -> Path:
    root = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    return root / "pgenrm"


class WorkerCapabilities(BaseModel):
    """What one OpenAI-compatible server can do, when it should be set rather than detected
    (`PGENRM_OPENAI_CAPABILITIES`); None: detect it."""

    model_config = ConfigDict(extra="forbid")

    health: Literal["health", "models"] | None = None
    n: bool | None = None
    dialect: Literal["structured_outputs", "response_format", "json_object"] | None = None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PGENRM_", extra="forbid", validate_default=True)

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    workers: int = Field(
        1,
        ge=1,
        le=64,
        description="Server processes (one per core); each has its own in-process cache, "
        "so set PGENRM_REDIS_URL to share one.",
    )
    backend: Literal["embedded", "openai"] = Field(
        "embedded", description="embedded (CPU, no LLM) or openai (vLLM or any compatible server)."
    )

    # OpenAI-compatible backend (vLLM serving P-GenRM-8B in production).
    openai_urls: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Worker base URLs, comma-separated (e.g. http://vllm:8000/v1).",
    )
    openai_model: str | None = Field(
        None, description="Model name; default: discovered at /v1/models."
    )
    openai_api_key: SecretStr | None = None
    openai_temperature: float = Field(1.0, ge=0, le=2)
    openai_top_p: float = Field(1.0, gt=0, le=1)
    openai_max_tokens: int = Field(2048, ge=16)
    openai_connect_timeout_s: float = Field(5.0, gt=0)
    openai_read_timeout_s: float = Field(120.0, gt=0)
    openai_retries: int = Field(2, ge=0, le=10)
    openai_max_concurrency: int = Field(
        64, ge=1, description="Requests in flight per gateway process."
    )
    openai_structured: Literal[
        "off", "auto", "structured_outputs", "response_format", "json_object"
    ] = Field(
        "off",
        description="Constrained JSON output for generic judges (off for P-GenRM): auto "
        "detects each server's dialect; a dialect is tried first.",
    )
    openai_structured_schema: Literal["chain", "scores"] = Field(
        "chain",
        description="What constrained output holds: the whole chain, or each response's "
        "overall score alone (a few tokens, for slow grammar engines).",
    )
    openai_capabilities: dict[str, WorkerCapabilities] = Field(
        default_factory=dict,
        description="JSON: per worker URL (or '*'), capabilities set instead of detected.",
    )
    openai_affinity_header: str = Field(
        "x-user-id",
        pattern=r"^[A-Za-z0-9-]*$",
        description="Header carrying a keyed hash of the routing key (the user) on every "
        "backend call, for a session-routing router (empty: none).",
    )
    openai_affinity_key: SecretStr | None = Field(
        None, description="Key of that hash; the same on every gateway (default: built in)."
    )
    openai_health_interval_s: float = Field(5.0, gt=0)
    fallback_embedded: bool = Field(
        False, description="When every worker is down, answer with the embedded backend (degraded)."
    )
    score_deadline_s: float = Field(180.0, gt=0, description="Total time for one score.")
    shuffle_candidates: bool = Field(
        False, description="Rotate candidate positions across samples to cancel position bias."
    )

    # Embedded backend.
    embedder: str = Field(
        "minilm", description="'minilm' (bundled) or a sentence-transformers path."
    )
    embedder_max_seq_length: int | None = Field(
        64,
        ge=16,
        le=8192,
        description="Tokens per text the embedder reads; the packaged params were learnt at 64 "
        "(a cold score embeds every history answer and candidate: 64 tokens halve its cost).",
    )
    embedder_cache_size: int = Field(50_000, ge=0, description="Text embeddings kept in memory.")
    embedder_cache_bytes: int = Field(
        128 << 20, ge=0, description="Bytes of those embeddings (and their keys) per process."
    )
    embedder_precision: Literal["auto", "float32", "bfloat16"] = Field(
        "auto",
        description="bfloat16: ~2.6x faster embedding on CPUs with AMX/AVX512-BF16 (auto picks "
        "it there, float32 elsewhere).",
    )
    embedder_runtime: Literal["torch", "onnx", "onnx-int8"] = Field(
        "onnx-int8",
        description="What runs the transformer: torch, or ONNX Runtime in float32 or int8 "
        "(mean-pooling models; exported once into PGENRM_EMBEDDER_ONNX_DIR).",
    )
    embedder_onnx_dir: Path | None = Field(
        None, description="Where ONNX exports are kept; default: ~/.cache/pgenrm/onnx."
    )
    embedder_disk_cache: Path | None = Field(
        None, description="SQLite file caching embeddings across runs (batch jobs default to one)."
    )
    embedded_params: Path | None = Field(
        None, description="Learnt embedded-backend parameters; default: the packaged file if any."
    )

    # Prototype-level scaling (an artefact written by `pgenrm prototypes learn`).
    prototypes_dir: Path | None = Field(
        None, description="Artefact root; its LATEST version is served."
    )
    prototypes_watch_s: float = Field(
        30.0, ge=0, description="Poll LATEST for a new version this often (0: reload by API only)."
    )
    prototype_history_k: int = Field(3, ge=1, le=32, description="Few-shot pairs per neighbour.")

    # Access: API keys (scopes, tenants, limits), per-key rate limits and cost budgets.
    api_keys_file: Path | None = Field(
        None, description="JSON file of API keys (hashed secrets; see service/core/keys.py)."
    )
    api_keys: SecretStr | None = Field(None, description="The same JSON, inline.")
    insecure: bool = Field(
        False,
        description="Listen beyond loopback with no API keys (anyone who can connect may "
        "score and store users). Without keys and without this, only loopback is served.",
    )
    default_requests_per_s: float = Field(
        200.0, gt=0, description="Requests per second per key when its entry does not say."
    )
    default_cost_per_minute: int = Field(
        600_000, ge=1, description="Scoring cost units per minute per key when not said."
    )
    default_max_concurrent_expensive: int = Field(
        4, ge=1, description="Expensive scoring calls in flight per key and worker."
    )
    expensive_cost: int = Field(
        2_000, ge=1, description="A scoring call of at least this cost counts as expensive."
    )
    background_nice: int = Field(
        10,
        ge=0,
        le=19,
        description="How much lower the OS priority of expensive calls' CPU work is (nice "
        "increment; 0: same priority). Cheap calls then keep their latency beside them.",
    )

    # Browsers.
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Origins allowed to call from a browser, comma-separated (default: none).",
    )
    docs_enabled: bool = Field(
        True, description="Serve /docs, /redoc and /openapi.json (turn off in production)."
    )

    # Caches (personas, profiles, text embeddings).
    redis_url: str | None = Field(
        None, description="redis://host:port/db; unset: an in-process LRU cache."
    )
    cache_ttl_s: float = Field(3600.0, gt=0, description="Lifetime of a cached entry.")
    cache_max_entries: int = Field(10_000, ge=0, description="In-process cache size cap.")
    cache_max_bytes: int = Field(
        256 << 20, ge=0, description="In-process cache bytes cap (values, keys, bookkeeping)."
    )
    redis_timeout_s: float = Field(0.25, gt=0, description="Redis socket timeout per call.")

    # Test-time scaling.
    default_ind: int = Field(8, ge=0, description="Ind-N when a request does not say.")
    default_pro: int = Field(
        4, ge=0, description="Pro-M when a request does not say and prototypes are loaded."
    )
    ind_weight: float = Field(0.5, ge=0)
    pro_weight: float = Field(0.5, ge=0)
    parse_retries: int = Field(1, ge=0, le=5)

    # Request limits: beyond these a request gets a 4xx naming the field.
    max_ind: int = Field(64, ge=1)
    max_pro: int = Field(32, ge=0)
    max_candidates: int = Field(16, ge=1)
    max_history: int = Field(64, ge=0)
    max_text_chars: int = Field(32_000, ge=1)
    max_body_bytes: int = Field(4_000_000, ge=1_000)

    # HTTP limits, enforced by the server as bytes arrive (each worker process on its own):
    # no client can hold a connection, memory or a worker's attention for free.
    max_header_bytes: int = Field(
        32_768,
        ge=1_024,
        description="Request line and headers together; beyond: 431 (the parser would "
        "otherwise buffer a header of any size).",
    )
    max_header_count: int = Field(100, ge=8, description="Headers in one request; beyond: 431.")
    header_timeout_s: float = Field(
        10.0,
        gt=0,
        description="Time to send a request's line and headers, from the connection or the "
        "request's first byte; then 408 and close (slow-header clients hold connections).",
    )
    body_timeout_s: float = Field(
        30.0,
        gt=0,
        description="Time to send a request's whole body after its headers; then 408 and "
        "close (a body sent a few bytes a second would hold its connection forever).",
    )
    keep_alive_timeout_s: float = Field(
        5.0, gt=0, description="An idle keep-alive connection is closed after this."
    )
    max_connections: int = Field(
        2048,
        ge=1,
        description="Open connections per worker process; beyond, a new one gets 503 and is "
        "closed at once (file descriptors and memory stay bounded).",
    )

    # Stored users (PUT /v1/users/{id}): Redis when PGENRM_REDIS_URL is set, else SQLite.
    state_dir: Path = Field(
        default_factory=lambda: _default_state_dir(),
        description="Directory of the SQLite user store (shared by the workers of one host).",
    )
    max_stored_pairs: int = Field(
        256, ge=1, description="History pairs kept per stored user (the oldest go first)."
    )
    max_attributes: int = Field(32, ge=0, description="Attributes per stored user.")

    # Trainer-facing scoring: groups of per-sample calls, batches, retried calls.
    group_wait_s: float = Field(
        2.0,
        gt=0,
        le=600,
        description="How long a group's first member waits for the rest before the group is "
        "scored with what arrived (flagged partial).",
    )
    max_pending_groups: int = Field(10_000, ge=1, description="Groups assembling at once.")
    max_group_size: int = Field(64, ge=1, description="Members of one group.")
    batch_max_items: int = Field(512, ge=1, description="Items in one /v1/score/batch call.")
    batch_concurrency: int = Field(
        16, ge=1, description="Items of one batch scored at once inside the gateway."
    )
    idempotency_ttl_s: float = Field(
        600.0,
        gt=0,
        description="How long the answer to a call with an Idempotency-Key is kept for retries.",
    )
    idempotency_max_bytes: int = Field(
        64 << 20,
        ge=0,
        description="Bytes of those answers kept per process without Redis (the oldest go first).",
    )

    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["text", "json"] = Field(
        "text",
        description="json: one object per line (time, level, logger, message, request_id, "
        "key, tenant) for a log pipeline to index; text for people.",
    )

    @field_validator("openai_urls", "cors_origins", mode="before")
    @classmethod
    def _split_urls(cls, value: object) -> object:
        if isinstance(value, str):
            return [u.strip() for u in value.split(",") if u.strip()]
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.backend == "openai" and not self.openai_urls:
            raise ValueError(
                "backend=openai needs PGENRM_OPENAI_URLS (comma-separated worker URLs)"
            )
        if self.default_ind > self.max_ind:
            raise ValueError("default_ind must not exceed max_ind")
        if self.default_pro > self.max_pro:
            raise ValueError("default_pro must not exceed max_pro")
        if self.ind_weight + self.pro_weight <= 0:
            raise ValueError("ind_weight + pro_weight must be positive")
        if "*" in self.cors_origins:
            raise ValueError("cors_origins: list the origins; '*' would let any site call")
        return self
