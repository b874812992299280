"""The evaluation chain: one type for every backend's sample.

A chain is what P-GenRM writes for one sample: a persona inferred for this scenario, a weighted
rubric, per-candidate per-criterion scores with justifications, and a weighted overall per
candidate. The embedded backend and the LLM backends both end up here (the LLM text through
`service.engine.parsing`), so aggregation and traces never care which produced it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from service.core.criteria import criterion_key


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Persona(_Frozen):
    """PART 1.1 of the chain: only what the evidence supports; empty when the model said nothing."""

    style: str = Field(
        "", description="Preferred tone and register (formal, casual, empathetic...)."
    )
    content_structure: str = Field(
        "", description="Preferred content and layout (lists, depth, length, examples...)."
    )
    values: str = Field("", description="Core values (accuracy, safety, creativity...).")


class _Keyed(_Frozen):
    """Fills `key` from the criterion's name when a backend gives none."""

    @model_validator(mode="before")
    @classmethod
    def _key(cls, data: object) -> object:
        if isinstance(data, dict) and not data.get("key"):
            name = data.get("name", data.get("criterion"))
            if isinstance(name, str):
                return {**data, "key": criterion_key(name)}
        return data


class Criterion(_Keyed):
    name: str
    key: str = Field(
        "other",
        description="Stable vocabulary key (`length`, `warmth`...; `other`): aggregate on it.",
    )
    weight: float = Field(description="Percentage weight; a chain's weights sum to 100.")
    description: str = Field("", description="What earns and what loses points on this criterion.")


class CriterionScore(_Keyed):
    criterion: str
    key: str = Field("other", description="The criterion's stable vocabulary key.")
    score: float = Field(ge=1, le=10, description="1 (poor) to 10 (excellent).")
    justification: str = ""


class CandidateEvaluation(_Frozen):
    scores: tuple[CriterionScore, ...] = ()
    overall: float = Field(ge=1, le=10, description="Weighted mean of the criterion scores, 1-10.")
    stated_overall: float | None = Field(
        None, description="The overall the model wrote, when it differs from the recomputed one."
    )


# Recoveries the parser made; a flagged chain is valid but worth a look.
RecoveryFlag = Literal[
    "code_fence",
    "missing_start_marker",
    "missing_end_marker",
    "multiple_json_blocks",
    "trailing_text",
    "json_repaired",
    "string_scores",
    "weights_renormalised",
    "stated_score_mismatch",
    "scores_from_breakdown",
    "breakdown_unparsed",
    "persona_missing",
]


class EvaluationChain(_Frozen):
    persona: Persona = Persona()
    criteria: tuple[Criterion, ...] = ()
    candidates: tuple[CandidateEvaluation, ...]
    analysis: str = Field("", description="PART 1 text: the preference analysis.")
    raw: str = Field("", description="The sample exactly as the backend wrote it.")
    flags: tuple[RecoveryFlag, ...] = ()

    @property
    def overall(self) -> tuple[float, ...]:
        return tuple(c.overall for c in self.candidates)


FailureReason = Literal[
    "empty_output",
    "no_json",
    "truncated",
    "invalid_json",
    "missing_scores",
    "candidate_count_mismatch",
    "score_out_of_range",
    "backend_error",
    "timeout",
    "unavailable",
    "internal_error",
]


class ParseFailure(_Frozen):
    """A sample that could not be turned into a chain, and why."""

    reason: FailureReason
    detail: str = ""
    raw: str = ""


SampleOutcome = EvaluationChain | ParseFailure
