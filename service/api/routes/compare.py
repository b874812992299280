"""POST /v1/compare: a thin route; the work is in `service.api.comparing`."""

from __future__ import annotations

from fastapi import APIRouter

from service.api._cost import compare_cost
from service.api._json_route import JSONBodyRoute
from service.api.deps import CompareCaller, CompareServiceDep, GatekeeperDep
from service.api.errors import JSON_BODY, KEYED
from service.api.errors import responses as errors
from service.api.schemas.compare import CompareRequest, CompareResponse

router = APIRouter(route_class=JSONBodyRoute, tags=["comparison"])


@router.post(
    "/v1/compare",
    response_model=CompareResponse,
    responses=errors(
        {
            **KEYED,
            **JSON_BODY,
            422: "Invalid request, or over the bounds: rows, variants, texts (the envelope says)",
            503: "Loading, or backend or store unavailable (see Retry-After)",
        }
    ),
)
async def compare(
    body: CompareRequest,
    caller: CompareCaller,
    gate: GatekeeperDep,
    service: CompareServiceDep,
) -> CompareResponse:
    """Variants of responses A/B-ranked by many users: each row is scored like one /v1/score
    call; the answer gives win rates and mean score differences with 95% bootstrap intervals
    overall, per user and per segment, the criteria that drive the differences, and the least
    certain rows. Needs the `compare` scope."""
    service.check(body)  # the bounds first: a huge call is told so, not priced
    async with gate.charge(caller, compare_cost(body, gate.settings)):
        return await service.compare(body, caller.tenant)
