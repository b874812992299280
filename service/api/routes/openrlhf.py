"""POST /get_reward: OpenRLHF's remote reward-model endpoint (`--reward.remote_url`)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from service.api._cost import reward_cost
from service.api._idempotent import IdempotencyKey, once
from service.api._json_route import JSONBodyRoute
from service.api.deps import GatekeeperDep, IdempotencyDep, OpenRLHFServiceDep, ScoreCaller
from service.api.errors import KEYED
from service.api.errors import responses as errors
from service.api.schemas.openrlhf import RewardRequest, RewardResponse

router = APIRouter(route_class=JSONBodyRoute, tags=["trainers"])


@router.post(
    "/get_reward",
    response_model=RewardResponse,
    responses=errors(
        {
            **KEYED,
            400: "Body is not JSON",
            404: "Unknown user",
            413: "Body too large",
            415: "Body is not `application/json`",
            422: "Invalid request or label (the envelope names the sample)",
            502: "A sample could not be scored and its label gives no `fallback_reward`",
            503: "Loading, or backend or store unavailable (see Retry-After)",
        }
    ),
)
async def get_reward(
    body: RewardRequest,
    caller: ScoreCaller,
    gate: GatekeeperDep,
    service: OpenRLHFServiceDep,
    idempotency: IdempotencyDep,
    idempotency_key: IdempotencyKey = None,
) -> RewardResponse | JSONResponse:
    """`{"query", "prompts", "labels"}` -> `{"rewards", "scores", "extra_logs"}`, as OpenRLHF
    posts and reads them; empty lists get empty lists."""
    async with gate.charge(caller, reward_cost(body, gate.settings)):
        return await once(
            idempotency,
            idempotency_key,
            f"{caller.tenant}\x1fget_reward",
            body,
            lambda: service.get_reward(body, caller.tenant),
        )
