"""The wire shapes of the pgenrm API as TypedDicts (plain dicts at run time, typed for checkers).

Requests are built from these; responses are the server's JSON, typed as these (not validated
field by field: the server owns the schema, see its /docs).
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict

Normalize = Literal["unit", "zscore"]
UnknownUser = Literal["error", "cold_start"]
TraceLevel = Literal["none", "summary", "samples"]


class Message(TypedDict):
    role: str
    content: str


class HistoryPair(TypedDict, total=False):
    """One past judgement: `prompt` (str) or `context` (messages), `chosen`, `rejected`."""

    prompt: str
    context: list[Message]
    chosen: str
    rejected: str
    feedback: str


class GroupRef(TypedDict):
    """This call is one of `size` members (calls) scored together as group `id`."""

    id: str
    size: int


class Scaling(TypedDict, total=False):
    ind: int
    pro: int


class RewardOptions(TypedDict, total=False):
    normalize: Normalize
    fallback: float | None


class ScoreOptions(TypedDict, total=False):
    """The optional parts of a score request (keyword arguments of `score(...)`)."""

    prompt: str
    context: list[Message]
    history: list[HistoryPair]
    reference: str
    group: GroupRef
    scaling: Scaling
    normalize: Normalize
    fallback: float | None
    unknown_user: UnknownUser
    return_traces: TraceLevel
    seed: int


class ScoreRequest(TypedDict, total=False):
    """A `/v1/score` body (also one item of `/v1/score/batch`)."""

    user_id: str
    candidates: list[str]
    prompt: str
    context: list[Message]
    history: list[HistoryPair]
    reference: str
    group: GroupRef
    scaling: Scaling
    reward: RewardOptions
    unknown_user: UnknownUser
    return_traces: TraceLevel
    seed: int


class CandidateResult(TypedDict):
    index: int
    status: Literal["ok", "failed"]
    reason: str | None
    score: float | None
    reward: float | None
    fallback: bool
    score_std: float | None
    valid_samples: int
    rank: int | None
    ind_score: float | None
    pro_score: float | None


class HistoryUsed(TypedDict):
    source: Literal["inline", "stored", "none"]
    version: int | None
    pairs: int


class GroupInfo(TypedDict):
    id: str
    size: int
    arrived: int
    partial: bool
    candidates: int


class ScoreResponse(TypedDict):
    user_id: str
    scores: list[CandidateResult]
    preferred: int | None
    margin: float | None
    confidence: float | None  # P(preferred beats the runner-up), null with < 2 scored
    reference_score: float | None
    history: HistoryUsed
    group: GroupInfo | None
    samples: dict[str, Any]
    traces: dict[str, Any] | None
    backend: str
    model: str
    prompt_version: str
    prototypes_version: str | None
    cold_start: bool
    degraded: bool
    seed: int | None
    latency_ms: float


class ErrorBody(TypedDict):
    type: str
    message: str
    field: str | None
    details: list[dict[str, Any]]


class BatchItem(TypedDict):
    index: int
    status: int
    outcome: Literal["ok", "error"]
    response: ScoreResponse | None
    error: ErrorBody | None


class BatchResponse(TypedDict):
    results: list[BatchItem]
    ok: int
    failed: int
    latency_ms: float


AttributeValue = str | int | float | bool


class UserInfo(TypedDict):
    user_id: str
    version: int
    pairs: int
    attributes: dict[str, AttributeValue]
    updated_at: float
    dropped: int
    history: list[HistoryPair] | None


class UserDeleted(TypedDict):
    user_id: str
    deleted: bool
    cached_entries_dropped: int


class RewardResponse(TypedDict):
    """`/get_reward` (OpenRLHF): one entry per query in each list."""

    rewards: list[float]
    scores: list[float]
    extra_logs: dict[str, list[float]]
