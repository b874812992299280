"""The `/v1/score/batch` serving object: many score requests in one call, answered in order.

Each item is validated and scored on its own (one bad item fails alone, with the status and
envelope it would have had as a single call). Plain items run at most PGENRM_BATCH_CONCURRENCY
at a time; items carrying a `group` join their group at once (holding a slot while waiting for
the rest of a group could stall the batch). Every candidate text of the batch is embedded up
front in length-sorted batches, which is much faster than item by item.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pydantic import ValidationError

from service.api.errors import ErrorBody, validation_error
from service.api.schemas.batch import BatchItem, BatchRequest, BatchResponse
from service.api.schemas.score import ScoreRequest, ScoreResponse
from service.api.serving import ScoreService, to_context
from service.core.config import Settings
from service.core.errors import InvalidRequest, PgenrmError
from service.core.inputs import last_user_turn
from service.core.keys import DEFAULT_TENANT

log = logging.getLogger("pgenrm.api")
_T = TypeVar("_T")


def error_body(error: PgenrmError) -> ErrorBody:
    return ErrorBody.model_validate(error.envelope()["error"])


async def item_answer(index: int, call: Callable[[], Awaitable[_T]]) -> _T | PgenrmError:
    """One batch item's answer, or the error it would have had as a call of its own; a bug
    costs this item, never the batch."""
    try:
        return await call()
    except PgenrmError as error:
        return error
    except Exception:
        log.exception("batch item %d failed", index)
        return PgenrmError("internal error; the incident was logged")


def _error_item(index: int, error: PgenrmError) -> BatchItem:
    return BatchItem(index=index, status=error.status, outcome="error", error=error_body(error))


class BatchService:
    def __init__(self, scorer: ScoreService, settings: Settings) -> None:
        self.scorer = scorer
        self.settings = settings

    async def score(self, body: BatchRequest, tenant: str = DEFAULT_TENANT) -> BatchResponse:
        started = time.perf_counter()
        limit = self.settings.batch_max_items
        if len(body.items) > limit:
            raise InvalidRequest(
                f"`items`: {len(body.items)} items exceed the limit of {limit} "
                "(PGENRM_BATCH_MAX_ITEMS)",
                field="items",
            )
        requests: list[ScoreRequest | PgenrmError] = [
            self._validate(i, raw) for i, raw in enumerate(body.items)
        ]
        await self._warm([r for r in requests if isinstance(r, ScoreRequest)])
        gate = asyncio.Semaphore(self.settings.batch_concurrency)

        async def scored(request: ScoreRequest) -> ScoreResponse:
            if request.group is not None:
                return await self.scorer.score(request, tenant)
            async with gate:
                return await self.scorer.score(request, tenant)

        async def one(index: int, request: ScoreRequest | PgenrmError) -> BatchItem:
            if isinstance(request, PgenrmError):
                return _error_item(index, request)
            answer = await item_answer(index, lambda: scored(request))
            if isinstance(answer, PgenrmError):
                return _error_item(index, answer)
            return BatchItem(index=index, status=200, outcome="ok", response=answer)

        results = await asyncio.gather(*(one(i, r) for i, r in enumerate(requests)))
        ok = sum(r.outcome == "ok" for r in results)
        return BatchResponse(
            results=list(results),
            ok=ok,
            failed=len(results) - ok,
            latency_ms=round((time.perf_counter() - started) * 1000, 2),
        )

    @staticmethod
    def _validate(index: int, raw: dict[str, Any]) -> ScoreRequest | PgenrmError:
        try:
            return ScoreRequest.model_validate(raw)
        except ValidationError as error:
            return validation_error(error.errors(), prefix=f"items[{index}]")

    async def _warm(self, requests: list[ScoreRequest]) -> None:
        texts = []
        for r in requests:
            prompt = last_user_turn(to_context(r.context, r.prompt))
            texts += [(prompt, c) for c in r.candidates if c.strip()]
        if len(texts) > 1:
            await self.scorer.engine.warm(texts)
