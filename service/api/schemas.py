"""Wire models of the HTTP API: what `/v1/score` accepts and returns.

Shape only (types, required fields, unknown keys rejected); limits that are settings (sizes,
counts) are checked by `service.api.serving` so they can change without a new schema.
"""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from service.core.chain import Criterion, CriterionScore, EvaluationChain, ParseFailure, Persona

Text = Annotated[str, StringConstraints(min_length=1)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Message(_Strict):
    role: Literal["system", "user", "assistant"]
    content: str


def _answer_text(value: object) -> object:
    """PersonalRewardBench writes answers as `{"role": "assistant", "content": ...}`; accept
    that as well as a plain string, and nothing else."""
    if isinstance(value, dict):
        if set(value) - {"role", "content"} or value.get("role", "assistant") != "assistant":
            raise ValueError('an answer is a string or {"role": "assistant", "content": "..."}')
        return value.get("content")
    return value


def _check_context(context: list[Message] | None) -> list[Message] | None:
    if context is None:
        return None
    if not context:
        raise ValueError("must hold at least one message")
    if context[-1].role != "user":
        raise ValueError("the last message must be the user's turn being answered")
    if not any(m.content.strip() for m in context if m.role == "user"):
        raise ValueError("has no non-empty user message")
    return context


def _check_prompt(prompt: str | None, info: ValidationInfo) -> str | None:
    """Runs after `context` (declared first): exactly one of the two must be given."""
    has_context = info.data.get("context") is not None
    if prompt is not None and has_context:
        raise ValueError("give `prompt` or `context`, not both")
    if prompt is None and not has_context and "context" in info.data:
        raise ValueError("give `prompt` (string) or `context` (list of messages)")
    if prompt is not None and not prompt.strip():
        raise ValueError("must not be empty")
    return prompt


class HistoryPair(_Strict):
    """One past judgement by this user."""

    context: list[Message] | None = Field(None, description="Conversation the answers respond to.")
    prompt: str | None = Field(
        None, validate_default=True, description="Single-turn alternative to `context`."
    )
    chosen: Text = Field(description="The answer the user preferred (string or assistant message).")
    rejected: Text = Field(description="The answer the user passed over.")
    feedback: str | None = Field(None, description="Optional free-text feedback on the choice.")

    _context = field_validator("context")(_check_context)
    _prompt = field_validator("prompt")(_check_prompt)
    _answers = field_validator("chosen", "rejected", mode="before")(_answer_text)


class ScalingRequest(_Strict):
    ind: int = Field(ge=0, description="Individual-level samples (Ind-N).")
    pro: int = Field(0, ge=0, description="Prototype-level samples (Pro-M), one per neighbour.")

    @model_validator(mode="after")
    def _some(self) -> Self:
        if self.ind + self.pro == 0:
            raise ValueError("`scaling` asks for no samples: set `ind` or `pro` above 0")
        return self


TraceLevel = Literal["none", "summary", "samples"]


class ScoreRequest(_Strict):
    user_id: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    history: list[HistoryPair] = Field(default_factory=list)
    context: list[Message] | None = Field(None, description="Conversation ending in a user turn.")
    prompt: str | None = Field(
        None, validate_default=True, description="Single-turn alternative to `context`."
    )
    candidates: list[Text] = Field(min_length=2, description="The responses to score (2..K).")
    scaling: ScalingRequest | None = None
    return_traces: TraceLevel = Field(
        "summary", description="none | summary (one chain) | samples (every sample's chain)."
    )
    seed: int | None = Field(None, ge=0, description="Fix sampling; default derives from content.")

    @field_validator("return_traces", mode="before")
    @classmethod
    def _bool_traces(cls, value: object) -> object:
        if isinstance(value, bool):
            return "samples" if value else "none"
        return value

    _context = field_validator("context")(_check_context)
    _prompt = field_validator("prompt")(_check_prompt)


class CandidateResult(BaseModel):
    index: int
    score: float = Field(description="Fused reward on the 1-10 scale.")
    rank: int = Field(description="1 = best; equal scores share a rank.")
    ind_score: float | None = Field(None, description="Mean over valid individual-level samples.")
    pro_score: float | None = Field(None, description="Mean over valid prototype-level samples.")


class LevelCounts(BaseModel):
    requested: int
    valid: int
    failed: int
    failures: dict[str, int] = Field(default_factory=dict, description="Failed samples by reason.")


class SampleCounts(BaseModel):
    ind: LevelCounts
    pro: LevelCounts
    retried: dict[str, int] = Field(default_factory=dict, description="Re-requested, by reason.")


class CandidateTrace(BaseModel):
    index: int
    overall: float
    criteria: list[CriterionScore]


class Trace(BaseModel):
    """The evaluation chain that explains the scores: the sample closest to the aggregate."""

    level: Literal["ind", "pro"]
    source: str
    persona: Persona
    criteria: list[Criterion]
    candidates: list[CandidateTrace]
    flags: list[str]


class SampleTrace(BaseModel):
    level: Literal["ind", "pro"]
    source: str
    chain: EvaluationChain | None = None
    failure: ParseFailure | None = None


class Traces(BaseModel):
    summary: Trace | None
    samples: list[SampleTrace] | None = None


class ScoreResponse(BaseModel):
    user_id: str
    scores: list[CandidateResult]
    preferred: int = Field(description="Index of the best candidate (lowest index among ties).")
    margin: float = Field(description="Best score minus the runner-up's.")
    samples: SampleCounts
    traces: Traces | None
    backend: str
    model: str
    prompt_version: str
    prototypes_version: str | None
    cold_start: bool = Field(False, description="Scored at prototype level only (no history).")
    degraded: bool = Field(False, description="Answered by the fallback backend.")
    seed: int
    latency_ms: float
