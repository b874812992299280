"""GET /metrics: the gateway's Prometheus registry."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST

from service.api.deps import StateDep
from service.core.metrics import exposition

router = APIRouter(tags=["operations"])


@router.get("/metrics", response_class=Response)
async def metrics(state: StateDep) -> Response:
    """Prometheus text exposition (no user ids or texts in any label), every worker's."""
    return Response(exposition(state.metrics), media_type=CONTENT_TYPE_LATEST)
