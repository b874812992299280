"""`pgenrm compare --url`: each row through a running server's `/v1/score`.

The server resolves stored users (in the key's tenant, PGENRM_API_KEY) and applies its own
limits; the criteria that drive a difference come from the answer's summary trace, so they are
the same numbers an in-process run reports. Segments come from the rows' own attributes only
(a stored user's attributes stay on the server), and there is no prototype segment.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import httpx

from service.api.schemas.score import ScoreResponse, Trace
from service.comparison.analysis import ScoredRow
from service.comparison.rows import Row
from service.comparison.run import RowError, RowScorer, segment_of, user_label, weighted_by_variant
from service.core.chain import CandidateEvaluation, Criterion, EvaluationChain

RETRIES = 5  # for 429 and 503, each after the server's Retry-After (at most MAX_WAIT_S)
MAX_WAIT_S = 30.0


class RemoteRefused(RuntimeError):
    """The server refuses every row (no key, a key without the `score` scope)."""


class HttpRowScorer(RowScorer):
    def __init__(
        self, url: str, *, ind: int | None = None, concurrency: int = 4, timeout: float = 120.0
    ) -> None:
        self.url = url.rstrip("/")
        self.ind = ind
        key = os.environ.get("PGENRM_API_KEY")
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        self._client = httpx.AsyncClient(
            timeout=timeout,
            limits=limits,
            headers={"Authorization": f"Bearer {key}"} if key else None,
        )
        self._model = "?"

    @property
    def label(self) -> str:
        return f"http:{self.url}:{self._model}"

    async def aclose(self) -> None:
        await self._client.aclose()

    def _body(self, row: Row, names: list[str]) -> dict[str, Any]:
        body: dict[str, Any] = {
            "user_id": user_label(row),
            "context": [{"role": m.role, "content": m.content} for m in row.context],
            "candidates": [row.variants[n] for n in names],
            "return_traces": "summary",
        }
        if row.history is not None:
            body["history"] = [p.to_json() for p in row.history]
        if self.ind is not None:
            body["scaling"] = {"ind": self.ind}
        return body

    async def _post(self, body: dict[str, Any]) -> httpx.Response:
        for _ in range(RETRIES):
            response = await self._client.post(f"{self.url}/v1/score", json=body)
            if response.status_code not in (429, 503):
                return response
            wait = float(response.headers.get("retry-after", "1") or 1)
            await asyncio.sleep(min(MAX_WAIT_S, max(wait, 0.1)))
        return response

    async def score(self, index: int, row: Row, segment: str | None) -> ScoredRow:
        names = [name for name, text in row.variants.items() if text.strip()]
        if len(names) < 2:
            raise RowError("fewer than two non-empty variants")
        response = await self._post(self._body(row, names))
        if response.status_code in (401, 403):
            raise RemoteRefused(f"{self.url}/v1/score: {_message(response)}")
        if response.status_code != 200:
            raise RowError(f"{response.status_code}: {_message(response)}")
        answer = ScoreResponse.model_validate(response.json())
        self._model = answer.model
        scored = [s for s in answer.scores if s.score is not None]
        summary = answer.traces.summary if answer.traces is not None else None
        return ScoredRow(
            row=index,
            id=row.id,
            user_id=user_label(row),
            prompt=row.prompt,
            scores={names[s.index]: s.score for s in scored if s.score is not None},
            stds={names[s.index]: s.score_std or 0.0 for s in scored},
            weighted=_weighted(summary, names) if summary is not None else {},
            segment=segment_of(segment, row, {}),
        )


def _weighted(trace: Trace, names: list[str]) -> dict[str, dict[str, float]]:
    """The summary trace as the chain it was made from (its candidates in index order)."""
    chain = EvaluationChain(
        persona=trace.persona,
        criteria=tuple(Criterion(**c.model_dump(exclude={"separates"})) for c in trace.criteria),
        candidates=tuple(
            CandidateEvaluation(scores=tuple(t.criteria), overall=t.overall)
            for t in trace.candidates
        ),
    )
    return weighted_by_variant(chain, [t.index for t in trace.candidates], names)


def _message(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return response.text[:300]
