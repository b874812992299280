"""POST /v1/score: thin route; the work is in `ScoreService`."""

from __future__ import annotations

from fastapi import APIRouter

from service.api._json_route import JSONBodyRoute
from service.api.deps import ScoreServiceDep
from service.api.errors import ErrorEnvelope
from service.api.schemas import ScoreRequest, ScoreResponse

router = APIRouter(route_class=JSONBodyRoute, tags=["scoring"])

_ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorEnvelope, "description": text}
    for code, text in {
        400: "Body is not JSON",
        413: "Body too large",
        422: "Invalid request (the envelope names the field)",
        502: "Every sample failed",
        503: "Loading, or backend unavailable (see Retry-After)",
    }.items()
}


@router.post("/v1/score", response_model=ScoreResponse, responses=_ERRORS)
async def score(body: ScoreRequest, service: ScoreServiceDep) -> ScoreResponse:
    """Score 2..K candidates for one user, with the evaluation chain that explains the scores."""
    return await service.score(body)
