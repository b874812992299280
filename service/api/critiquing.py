"""The `/v1/critique/reward` serving objects: wire request -> `reward_critique` -> wire answer.

Built and tested without FastAPI, like `ScoreService`. Texts are held to
PGENRM_MAX_TEXT_CHARS (a 422 naming the field); a format error of the critique is an answer
(reward -1), never an error; the critic failing is a 502 (its output unreadable) or a 503
(nobody to ask). The batch form validates and rewards each item on its own, at most
PGENRM_BATCH_CONCURRENCY at a time, one bad item failing alone with the envelope it would have
had as a single call.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any, Literal

from pydantic import ValidationError

from service.api.batch import error_body, item_answer
from service.api.errors import validation_error
from service.api.schemas.critique import (
    MAX_ITEMS,
    ArgumentOut,
    CritiqueBatchItem,
    CritiqueBatchRequest,
    CritiqueBatchResponse,
    CritiqueRewardRequest,
    CritiqueRewardResponse,
    MatchOut,
    Thresholds,
)
from service.api.serving import to_context
from service.core.config import Settings
from service.core.errors import Conflict, InvalidRequest, PgenrmError, ScoringFailed, Unavailable
from service.engine.critic import Critic, CriticError
from service.engine.critique import Argument
from service.engine.critique_reward import CritiqueCase, CritiqueResult, reward_critique
from service.engine.prompts import render_turns

_SURROGATES = re.compile("[\ud800-\udfff]")


def to_case(request: CritiqueRewardRequest) -> CritiqueCase:
    first, second = request.responses
    return CritiqueCase(
        prompt=render_turns(to_context(request.context, request.prompt)),
        responses=(first, second),
        critique=request.critique,
        human_choice=request.human_choice,
        model_choice=request.model_choice,
        human_critique=request.human_critique,
    )


def to_response(result: CritiqueResult, critic: Critic, started: float) -> CritiqueRewardResponse:
    found = result.agreement
    return CritiqueRewardResponse(
        outcome=1 if result.outcome else 0,
        format_ok=result.format_ok,
        format_error=result.format_error,
        format_detail=_printable(result.format_detail) or None,
        model_choice=_choice(result.model_choice),
        critique_choice=_choice(result.critique_choice),
        human_choice=_choice(result.human_choice) or 1,
        model_arguments=[_argument(a) for a in result.model_arguments],
        human_arguments=[_argument(a) for a in result.human_arguments],
        matches=[
            MatchOut(model=m.model, human=m.human, similarity=m.similarity) for m in found.matches
        ],
        precision=found.precision,
        recall=found.recall,
        f1=found.f1,
        process=result.process,
        reward=result.reward,
        thresholds=Thresholds(f1=result.f1_threshold, similarity=result.similarity_threshold),
        critic=critic.name,
        model=result.critic,
        latency_ms=round((time.perf_counter() - started) * 1000, 2),
    )


def _choice(value: int | None) -> Literal[1, 2] | None:
    return 1 if value == 1 else 2 if value == 2 else None


def _printable(text: str) -> str:
    """JSON's lone surrogates (which UTF-8 cannot carry) as U+FFFD: texts are echoed back."""
    return _SURROGATES.sub("\ufffd", text)


def _argument(argument: Argument) -> ArgumentOut:
    return ArgumentOut(
        text=_printable(argument.text),
        target=argument.target,
        polarity=argument.polarity,
        target_from=argument.target_from,
    )


class CritiqueService:
    def __init__(self, critic: Critic | None, settings: Settings) -> None:
        self.critic = critic
        self.settings = settings

    def check(self, request: CritiqueRewardRequest) -> None:
        """The size limits that are settings (422 naming the field)."""
        texts: list[tuple[str, str]] = [
            (f"responses[{i}]", r) for i, r in enumerate(request.responses)
        ]
        texts.append(("prompt", request.prompt or ""))
        texts += [(f"context[{i}].content", m.content) for i, m in enumerate(request.context or [])]
        critique = request.critique
        texts.append(("critique", critique if isinstance(critique, str) else json.dumps(critique)))
        texts.append(("human_critique", request.human_critique or ""))
        limit = self.settings.max_text_chars
        for field, text in texts:
            if len(text) > limit:
                raise InvalidRequest(
                    f"`{field}` has {len(text):,} characters; the limit is {limit:,} "
                    "(PGENRM_MAX_TEXT_CHARS)",
                    field=field,
                )

    async def reward(self, request: CritiqueRewardRequest) -> CritiqueRewardResponse:
        started = time.perf_counter()
        critic = self._ready()
        self.check(request)
        try:
            result = await reward_critique(critic, to_case(request))
        except CriticError as error:
            if error.unavailable:
                raise Unavailable(f"the critic is unavailable: {error.detail}") from error
            raise ScoringFailed(f"the critic failed ({error.reason}): {error.detail}") from error
        return to_response(result, critic, started)

    def _ready(self) -> Critic:
        if self.critic is None:
            raise Conflict("this server's backend has no critic (embedded or openai needed)")
        if not self.critic.ready:
            raise Unavailable("the critic is still loading or has no worker; retry shortly")
        return self.critic

    def check_batch(self, body: CritiqueBatchRequest) -> None:
        if len(body.items) > MAX_ITEMS:
            raise InvalidRequest(
                f"`items`: {len(body.items)} items exceed the limit of {MAX_ITEMS} per call; "
                "split them",
                field="items",
            )

    async def batch(self, body: CritiqueBatchRequest) -> CritiqueBatchResponse:
        started = time.perf_counter()
        self.check_batch(body)
        gate = asyncio.Semaphore(self.settings.batch_concurrency)

        async def rewarded(index: int, request: CritiqueRewardRequest) -> CritiqueRewardResponse:
            try:
                async with gate:
                    return await self.reward(request)
            except InvalidRequest as error:  # its field, inside the batch
                field = f"items[{index}].{error.field}" if error.field else f"items[{index}]"
                raise InvalidRequest(error.message, field=field) from error

        async def one(index: int, raw: dict[str, Any]) -> CritiqueBatchItem:
            try:
                request = CritiqueRewardRequest.model_validate(raw)
            except ValidationError as error:
                return _error_item(index, validation_error(error.errors(), f"items[{index}]"))
            answer = await item_answer(index, lambda: rewarded(index, request))
            if isinstance(answer, PgenrmError):
                return _error_item(index, answer)
            return CritiqueBatchItem(index=index, status=200, outcome="ok", response=answer)

        results = await asyncio.gather(*(one(i, raw) for i, raw in enumerate(body.items)))
        ok = sum(r.outcome == "ok" for r in results)
        return CritiqueBatchResponse(
            results=list(results),
            ok=ok,
            failed=len(results) - ok,
            latency_ms=round((time.perf_counter() - started) * 1000, 2),
        )


def _error_item(index: int, error: PgenrmError) -> CritiqueBatchItem:
    return CritiqueBatchItem(
        index=index, status=error.status, outcome="error", error=error_body(error)
    )
