"""Routes' side of idempotency keys: run once per `Idempotency-Key`, replay to retries."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

from fastapi import Header
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from service.coordination.idempotency import Idempotency

M = TypeVar("M", bound=BaseModel)

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=200,
        description="Retries of a call with the same key get the first call's answer "
        "instead of scoring again (kept PGENRM_IDEMPOTENCY_TTL_S).",
    ),
]


async def once(
    store: Idempotency,
    key: str | None,
    route: str,
    body: BaseModel,
    work: Callable[[], Awaitable[M]],
) -> M | JSONResponse:
    """`work()` as is without a key; with one, at most once per (route, key) and body."""
    if key is None:
        return await work()

    async def run() -> dict[str, object]:
        return {"status": 200, "body": (await work()).model_dump(mode="json")}

    fingerprint = hashlib.sha256(body.model_dump_json().encode()).hexdigest()
    result, replayed = await store.run(f"{route}\x1f{key}", fingerprint, run)
    headers = {"Idempotent-Replayed": "true"} if replayed else None
    return JSONResponse(result["body"], status_code=int(str(result["status"])), headers=headers)
