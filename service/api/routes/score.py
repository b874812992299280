"""POST /v1/score and /v1/score/batch: thin routes; the work is in the serving objects."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from service.api._cost import batch_cost, score_cost
from service.api._idempotent import IdempotencyKey, once
from service.api._json_route import JSONBodyRoute
from service.api.deps import (
    BatchServiceDep,
    GatekeeperDep,
    IdempotencyDep,
    ScoreCaller,
    ScoreServiceDep,
)
from service.api.errors import JSON_BODY, KEYED
from service.api.errors import responses as errors
from service.api.schemas.batch import BatchRequest, BatchResponse
from service.api.schemas.score import ScoreRequest, ScoreResponse

router = APIRouter(route_class=JSONBodyRoute, tags=["scoring"])


_COMMON = {
    **KEYED,
    **JSON_BODY,
    422: "Invalid request (the envelope names the field)",
    503: "Loading, or backend or store unavailable (see Retry-After)",
}


@router.post(
    "/v1/score",
    response_model=ScoreResponse,
    responses=errors(
        {
            **_COMMON,
            404: "Unknown user: no `history` given and none stored (`unknown_user`)",
            502: "Every sample failed (and no `reward.fallback` was given)",
        }
    ),
)
async def score(
    body: ScoreRequest,
    caller: ScoreCaller,
    gate: GatekeeperDep,
    service: ScoreServiceDep,
    idempotency: IdempotencyDep,
    idempotency_key: IdempotencyKey = None,
) -> ScoreResponse | JSONResponse:
    """Score 1..K candidates for one user, with the evaluation chain that explains the scores.

    With `group`, this call is one member of a group (e.g. one rollout): it returns once the
    group was scored together, with this member's candidates."""
    async with gate.charge(caller, score_cost(body, gate.settings)):
        return await once(
            idempotency,
            idempotency_key,
            f"{caller.tenant}\x1fscore",
            body,
            lambda: service.score(body, caller.tenant),
        )


@router.post("/v1/score/batch", response_model=BatchResponse, responses=errors(_COMMON))
async def score_batch(
    body: BatchRequest,
    caller: ScoreCaller,
    gate: GatekeeperDep,
    service: BatchServiceDep,
    idempotency: IdempotencyDep,
    idempotency_key: IdempotencyKey = None,
) -> BatchResponse | JSONResponse:
    """Many score requests in one call: results in order, each with its own status."""
    async with gate.charge(caller, batch_cost(body.items, gate.settings)):
        return await once(
            idempotency,
            idempotency_key,
            f"{caller.tenant}\x1fbatch",
            body,
            lambda: service.score(body, caller.tenant),
        )
