"""POST /v1/critique/reward and its batch form: thin routes; the work is in
`service.api.critiquing`."""

from __future__ import annotations

from fastapi import APIRouter

from service.api._cost import critique_batch_cost, critique_cost
from service.api._json_route import JSONBodyRoute
from service.api.deps import CritiqueServiceDep, GatekeeperDep, ScoreCaller
from service.api.errors import JSON_BODY, KEYED
from service.api.errors import responses as errors
from service.api.schemas.critique import (
    CritiqueBatchRequest,
    CritiqueBatchResponse,
    CritiqueRewardRequest,
    CritiqueRewardResponse,
)

router = APIRouter(route_class=JSONBodyRoute, tags=["critique"])

_COMMON = {
    **KEYED,
    **JSON_BODY,
    409: "The server's backend has no critic",
    422: "Invalid request, or over a bound: items, texts (the envelope names the field)",
    503: "Loading, or the critic's workers are down (see Retry-After)",
}


@router.post(
    "/v1/critique/reward",
    response_model=CritiqueRewardResponse,
    responses=errors({**_COMMON, 502: "The critic's answer could not be read"}),
)
async def critique_reward(
    body: CritiqueRewardRequest,
    caller: ScoreCaller,
    gate: GatekeeperDep,
    service: CritiqueServiceDep,
) -> CritiqueRewardResponse:
    """RM-NLHF's reward of a model's critique of two responses: outcome (1 if its A/B choice
    is the human's) + 0.5 when its key arguments agree with the human critique's (F1 >= 0.5,
    matching only the same meaning with the same target and polarity); -1 when the critique or
    its choice cannot be read. Needs the `score` scope."""
    async with gate.charge(caller, critique_cost(body, gate.settings)):
        return await service.reward(body)


@router.post(
    "/v1/critique/reward/batch", response_model=CritiqueBatchResponse, responses=errors(_COMMON)
)
async def critique_reward_batch(
    body: CritiqueBatchRequest,
    caller: ScoreCaller,
    gate: GatekeeperDep,
    service: CritiqueServiceDep,
) -> CritiqueBatchResponse:
    """Up to 64 critique rewards in one call: results in order, each with its own status."""
    service.check_batch(body)  # the bound first: a huge call is told so, not priced
    async with gate.charge(caller, critique_batch_cost(body.items, gate.settings)):
        return await service.batch(body)
