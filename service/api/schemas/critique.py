"""Wire models of `POST /v1/critique/reward` and its batch form: RM-NLHF's critique reward.

A model's critique of two responses (free text, P-GenRM output, or a chain object), its choice
(given, or read from the critique), the human's choice and, optionally, the human's own
critique in; the reward with everything it was computed from out.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, Field, field_validator

from service.api.errors import ErrorBody
from service.api.schemas.common import Message, Strict, Text, check_context, check_prompt
from service.engine.critique import Polarity, Target, TargetSource
from service.engine.critique_reading import FormatError, parse_choice

# One call's bound; larger jobs call reward_critiques in process (service.engine.critique_reward).
MAX_ITEMS = 64


def _choice(value: object) -> object:
    """1, "2", "A", "B", "A1", "response_2"... -> 1 or 2; anything else fails as not 1 or 2."""
    return parse_choice(value) or value


Choice = Annotated[Literal[1, 2], BeforeValidator(_choice)]


class CritiqueRewardRequest(Strict):
    context: list[Message] | None = Field(None, description="Conversation ending in a user turn.")
    prompt: str | None = Field(
        None, validate_default=True, description="Single-turn alternative to `context`."
    )
    responses: list[Text] = Field(
        min_length=2, max_length=2, description="The two responses compared, in order."
    )
    critique: str | dict[str, Any] = Field(
        description="The model's critique: free text, P-GenRM output (analysis, then "
        "`<JSON_START>{...}<JSON_END>`), or a chain object (an `EvaluationChain`, or the "
        "P-GenRM JSON with `better_response`). An empty or unreadable one is a format error "
        "(reward -1), not a bad request."
    )
    model_choice: Choice | None = Field(
        None,
        description="The model's choice; omitted: read from the critique (unreadable: format "
        'error). Also takes "A"/"B", "A1", "response_2".',
    )
    human_choice: Choice = Field(description="The human's choice (1 or 2).")
    human_critique: str | None = Field(
        None,
        description="The human's reasons in free text (e.g. ukp_convarg's `feedback`); without "
        "it the reward is the outcome alone and `f1` is null.",
    )

    _context = field_validator("context")(check_context)
    _prompt = field_validator("prompt")(check_prompt)

    @field_validator("critique", mode="before")
    @classmethod
    def _critique(cls, value: object) -> object:
        if not isinstance(value, str | dict):
            raise ValueError("must be a string (the critique's text) or a JSON object (a chain)")
        return value


class ArgumentOut(BaseModel):
    text: str
    target: Target | None = Field(description="The response it is about (null: unknown).")
    polarity: Polarity = Field(description="Praise or criticism.")
    target_from: TargetSource | None = Field(
        description="How the target was found: named in the claim, inherited from the claim "
        "around it, by words only that response has, from the critique's choice, from a "
        "chain's scores, or as an LLM critic said."
    )


class MatchOut(BaseModel):
    model: int = Field(description="Index into `model_arguments`.")
    human: int = Field(description="Index into `human_arguments`.")
    similarity: float


class Thresholds(BaseModel):
    f1: float = Field(description="The process term is paid from this F1 on (0.5).")
    similarity: float = Field(
        description="Two arguments mean the same from this similarity on (the critic's scale)."
    )


class CritiqueRewardResponse(BaseModel):
    outcome: Literal[0, 1] = Field(description="1 when the model's choice is the human's.")
    format_ok: bool
    format_error: FormatError | None = Field(
        description="Why the critique or its choice could not be read (reward -1)."
    )
    format_detail: str | None = None
    model_choice: Literal[1, 2] | None = Field(
        description="The choice scored: `model_choice` if given, else the critique's."
    )
    critique_choice: Literal[1, 2] | None = Field(
        description="The verdict read from the critique itself (null: none stated)."
    )
    human_choice: Literal[1, 2]
    model_arguments: list[ArgumentOut]
    human_arguments: list[ArgumentOut]
    matches: list[MatchOut] = Field(
        description="One-to-one pairs of the same meaning and the same stance (target and "
        "polarity)."
    )
    precision: float | None = Field(description="Matches / model arguments.")
    recall: float | None = Field(description="Matches / human arguments.")
    f1: float | None = Field(description="Null without a human critique (or its arguments).")
    process: float = Field(description="0.5 when the outcome is right and F1 >= 0.5, else 0.")
    reward: float = Field(description="-1 on a format error, else outcome + process.")
    thresholds: Thresholds
    critic: str = Field(description="`embedded` (rules + MiniLM) or `openai` (an LLM).")
    model: str = Field(description="What read the critiques.")
    latency_ms: float


class CritiqueBatchRequest(Strict):
    items: list[dict[str, Any]] = Field(
        min_length=1,
        description=f"At most {MAX_ITEMS} /v1/critique/reward bodies, each validated on its "
        "own: one bad item fails alone.",
        json_schema_extra={"items": {"$ref": "#/components/schemas/CritiqueRewardRequest"}},
    )


class CritiqueBatchItem(BaseModel):
    index: int
    status: int = Field(description="The HTTP status this item would have had alone.")
    outcome: Literal["ok", "error"]
    response: CritiqueRewardResponse | None = None
    error: ErrorBody | None = None


class CritiqueBatchResponse(BaseModel):
    results: list[CritiqueBatchItem]
    ok: int
    failed: int
    latency_ms: float
