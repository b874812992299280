"""Wire models of `/v1/score`: one user, one prompt, 1..K candidates (or a group's share)."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import BaseModel, Field, field_validator, model_validator

from service.api.schemas.common import (
    HistoryPair,
    Message,
    Strict,
    UserId,
    check_context,
    check_prompt,
)
from service.core.chain import Criterion, CriterionScore, EvaluationChain, ParseFailure, Persona
from service.engine.meta_aggregate import Aggregation


class ScalingRequest(Strict):
    ind: int = Field(ge=0, description="Individual-level samples (Ind-N).")
    pro: int = Field(0, ge=0, description="Prototype-level samples (Pro-M), one per neighbour.")

    @model_validator(mode="after")
    def _some(self) -> Self:
        if self.ind + self.pro == 0:
            raise ValueError("`scaling` asks for no samples: set `ind` or `pro` above 0")
        return self


TraceLevel = Literal["none", "summary", "samples"]


class GroupRef(Strict):
    """This call carries part of a group (e.g. one rollout of a GRPO group): the gateway holds
    it until `size` members arrived (or PGENRM_GROUP_WAIT_S passed) and scores them together."""

    id: str = Field(min_length=1, max_length=256, description="Same for every member.")
    size: int = Field(ge=1, description="Members to wait for (the first member's value counts).")


class RewardOptions(Strict):
    normalize: Literal["unit", "zscore"] = Field(
        "unit",
        description="unit: reward = (score - 1) / 9, in 0..1; zscore: standardised within the "
        "request's (or the group's) scored candidates.",
    )
    fallback: float | None = Field(
        None,
        description="Reward for a candidate that could not be scored (default: null, never a "
        "made-up number); every use is counted in pgenrm_fallback_rewards_total.",
    )


UnknownUser = Literal["error", "cold_start"]


class ScoreRequest(Strict):
    user_id: UserId
    history: list[HistoryPair] | None = Field(
        None,
        description="The user's past judgements; omitted: the stored history "
        "(PUT /v1/users/{id}); []: none (a cold start).",
    )
    context: list[Message] | None = Field(None, description="Conversation ending in a user turn.")
    prompt: str | None = Field(
        None, validate_default=True, description="Single-turn alternative to `context`."
    )
    candidates: list[str] = Field(
        min_length=1,
        description="The responses to score (1..K). An empty or over-long one is not scored: it "
        "gets status `failed` and a reason.",
    )
    reference: str | None = Field(
        None,
        min_length=1,
        description="A reference answer scored beside the candidates (not returned as one), "
        "anchoring a single candidate's score.",
    )
    group: GroupRef | None = None
    scaling: ScalingRequest | None = None
    reward: RewardOptions = Field(default_factory=RewardOptions)
    unknown_user: UnknownUser = Field(
        "error",
        description="With no `history` and no stored user: error (404) or score as a cold start.",
    )
    return_traces: TraceLevel = Field(
        "summary", description="none | summary (one chain) | samples (every sample's chain)."
    )
    seed: int | None = Field(None, ge=0, description="Fix sampling; default derives from content.")
    aggregation: Aggregation = Field(
        "mean",
        description="How samples become scores. mean: each level's plain mean, fused (the "
        "paper's). meta: each valid sample weighted by MetaRM's predicted reward before the "
        "means (opt-in; measured no better on the README's sets, so not the default).",
    )

    @field_validator("return_traces", mode="before")
    @classmethod
    def _bool_traces(cls, value: object) -> object:
        if isinstance(value, bool):
            return "samples" if value else "none"
        return value

    _context = field_validator("context")(check_context)
    _prompt = field_validator("prompt")(check_prompt)


class CandidateResult(BaseModel):
    index: int = Field(description="Position in this request's `candidates`.")
    status: Literal["ok", "failed"]
    reason: str | None = Field(None, description="Why a failed candidate has no score.")
    score: float | None = Field(description="Fused score on the 1-10 scale; null when failed.")
    reward: float | None = Field(
        description="The score normalised as `reward.normalize` asks; the fallback reward (if "
        "given) when failed, else null."
    )
    fallback: bool = Field(False, description="`reward` is the request's fallback reward.")
    score_std: float | None = Field(
        None, description="Standard deviation of the score over its valid samples."
    )
    valid_samples: int = Field(0, description="Valid samples that scored this candidate.")
    rank: int | None = Field(description="1 = best (within the group, for a group); ties share.")
    ind_score: float | None = Field(None, description="Mean over valid individual-level samples.")
    pro_score: float | None = Field(None, description="Mean over valid prototype-level samples.")


class HistoryUsed(BaseModel):
    source: Literal["inline", "stored", "none"]
    version: int | None = Field(None, description="The stored history's version, if stored.")
    pairs: int


class GroupInfo(BaseModel):
    id: str
    size: int = Field(description="Members the group waited for.")
    arrived: int = Field(description="Members scored together.")
    partial: bool = Field(description="Scored before every member arrived.")
    candidates: int = Field(description="Candidates scored together in the group's one plan.")


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
    why: str = Field(description="One line: the rank and the criterion that decided it.")
    criteria: list[CriterionScore] = Field(description="In the order of the trace's `criteria`.")


class TraceCriterion(Criterion):
    separates: bool | None = Field(
        description="The candidates' scores on it differ by half a point or more (null: one "
        "candidate). Criteria that separate come first, by weight; the others explain nothing "
        "about the ranking, however heavy."
    )


class Trace(BaseModel):
    """The evaluation chain that explains the scores: the sample closest to the aggregate."""

    level: Literal["ind", "pro"]
    source: str
    persona: Persona
    criteria: list[TraceCriterion]
    candidates: list[CandidateTrace]
    flags: list[str]


class SampleTrace(BaseModel):
    level: Literal["ind", "pro"]
    source: str
    responses: list[int | None] = Field(
        description="For each response_i the sample was shown, in order, your candidate's index "
        "(null: the reference, or another group member's candidate). Candidates are shown in "
        "an order fixed by their texts, so scores never depend on the order you sent them in."
    )
    chain: EvaluationChain | None = None
    failure: ParseFailure | None = None
    meta_weight: float | None = Field(
        None, description="With aggregation `meta`: MetaRM's weight for this valid sample."
    )


class Traces(BaseModel):
    aggregation: Aggregation = Field("mean", description="How the samples became the scores.")
    summary: Trace | None
    samples: list[SampleTrace] | None = None


class ScoreResponse(BaseModel):
    user_id: str
    scores: list[CandidateResult]
    preferred: int | None = Field(
        description="Index of the best scored candidate (lowest index among ties)."
    )
    margin: float | None = Field(
        description="Best score minus the runner-up's (null with fewer than two scored)."
    )
    confidence: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="Probability that `preferred` really is better for this user than the "
        "runner-up (null with fewer than two scored). The embedded backend: the mean over "
        "samples of its calibrated log-odds win probability, averaged over the user hypotheses "
        "it weighs; an LLM backend: the share of samples ranking `preferred` above the "
        "runner-up, (wins + 1) / (samples + 2). Near 0.5: a coin flip, whatever `margin` says.",
    )
    reference_score: float | None = Field(None, description="The reference answer's score.")
    history: HistoryUsed
    group: GroupInfo | None = None
    samples: SampleCounts
    traces: Traces | None
    backend: str
    model: str
    prompt_version: str
    prototypes_version: str | None
    cold_start: bool = Field(
        False,
        description="No user history informed the score (none given or stored): it rests on "
        "prototype-level samples where prototypes serve them, else on the model's prior alone. "
        "Read `confidence` before trusting `preferred`.",
    )
    degraded: bool = Field(False, description="Answered by the fallback backend.")
    seed: int | None = Field(description="The seed the samples used (null if none was drawn).")
    latency_ms: float
