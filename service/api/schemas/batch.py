"""Wire models of `/v1/score/batch`: many score requests in one call, answered in order."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from service.api.errors import ErrorBody
from service.api.schemas.common import Strict
from service.api.schemas.score import ScoreResponse


class BatchRequest(Strict):
    items: list[dict[str, Any]] = Field(
        min_length=1,
        description="Score requests (each a /v1/score body; any may carry a `group`). Each is "
        "validated on its own: one bad item fails alone.",
        json_schema_extra={"items": {"$ref": "#/components/schemas/ScoreRequest"}},
    )


class BatchItem(BaseModel):
    index: int
    status: int = Field(description="The HTTP status this item would have had alone.")
    outcome: Literal["ok", "error"]
    response: ScoreResponse | None = None
    error: ErrorBody | None = None


class BatchResponse(BaseModel):
    results: list[BatchItem]
    ok: int
    failed: int
    latency_ms: float
