"""Wire models of `POST /v1/compare` and of a `pgenrm compare` row: a user, a prompt and named
variants, each row scored like one `/v1/score` call. The answer is `Comparison` itself, the
model the CLI writes as compare.json."""

from __future__ import annotations

from typing import Annotated, Self

from pydantic import Field, StringConstraints, field_validator, model_validator

from service.api.schemas.common import (
    USER_ID_PATTERN,
    HistoryPair,
    Message,
    Strict,
    UserId,
    check_context,
    check_prompt,
)
from service.api.schemas.score import ScalingRequest, ScoreRequest
from service.comparison.results import Comparison

# One call's bound; a larger comparison runs through `pgenrm compare`.
MAX_ROWS = 64
MAX_VARIANTS = 8

VariantName = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=USER_ID_PATTERN)
]
AttributeValue = str | int | float | bool


class CompareRow(Strict):
    """One user's verdict on one prompt's variants."""

    id: str | None = Field(None, max_length=256, description="Your label for the row.")
    user_id: UserId | None = Field(
        None, description="A stored user (PUT /v1/users/{id}), or a name for the `history`."
    )
    history: list[HistoryPair] | None = Field(
        None, description="The user's past judgements, as in /v1/score; omitted: the stored ones."
    )
    context: list[Message] | None = Field(None, description="As in /v1/score.")
    prompt: str | None = Field(None, validate_default=True, description="Or `context`.")
    variants: dict[VariantName, str] = Field(
        min_length=2,
        description='Named responses, e.g. {"A": "...", "B": "..."}; rows may lack some names. '
        "An empty one is not scored.",
    )
    attributes: dict[str, AttributeValue] = Field(
        default_factory=dict,
        description="User attributes for `segment` (over the stored user's attributes).",
    )

    _context = field_validator("context")(check_context)
    _prompt = field_validator("prompt")(check_prompt)

    @model_validator(mode="after")
    def _someone(self) -> Self:
        if self.user_id is None and self.history is None:
            raise ValueError("give `user_id` (a stored user), `history`, or both")
        return self

    def score_request(self, scaling: ScalingRequest | None = None) -> ScoreRequest:
        """The `/v1/score` call this row stands for (its limits and cost are the row's)."""
        return ScoreRequest(
            user_id=self.user_id or "inline",
            history=self.history,
            context=self.context,
            prompt=self.prompt,
            candidates=list(self.variants.values()),
            scaling=scaling,
            return_traces="summary",
        )


class CompareRequest(Strict):
    rows: list[CompareRow] = Field(
        min_length=1,
        description=f"At most {MAX_ROWS} rows of at most {MAX_VARIANTS} variants; run larger "
        "comparisons with `pgenrm compare`.",
    )
    baseline: str | None = Field(
        None, description="Compare each variant with this one; omitted: every pair."
    )
    segment: str | None = Field(
        None,
        description="An attribute to group rows by (`user`: the user); omitted: the user's "
        "nearest prototype where prototypes are loaded, else no segments.",
        max_length=256,
    )
    scaling: ScalingRequest | None = None
    seed: int = Field(0, ge=0, description="Seed of the bootstrap intervals.")


CompareResponse = Comparison
