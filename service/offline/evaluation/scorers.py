"""What the harness scores through: the in-process engine, or a running server's HTTP API.

Both return the per-candidate scores and the sample counts of one `/v1/score`-equivalent call,
so the harness treats a local run and a run against a deployment the same way.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import httpx

from service.core.errors import ScoringFailed
from service.core.inputs import PreferencePair, ScoringTask
from service.engine.meta_aggregate import Aggregation
from service.engine.scaling import Scaling
from service.engine.scorer import ScoringEngine


@dataclass(frozen=True)
class Scored:
    scores: list[float] | None  # None: the score failed as a whole
    requested: int
    failed: int  # requested but not valid, including `skipped`
    skipped: int = 0  # never sent: too few prototype neighbours (not a parse failure)


class PairScorer(ABC):
    @property
    @abstractmethod
    def label(self) -> str: ...

    @abstractmethod
    async def score(
        self, user_id: str, history: tuple[PreferencePair, ...], task: ScoringTask, scaling: Scaling
    ) -> Scored: ...

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


class EngineScorer(PairScorer):
    """The same `ScoringEngine` the API serves with."""

    def __init__(
        self, engine: ScoringEngine, *, owns_backend: bool = True, aggregation: Aggregation = "mean"
    ) -> None:
        self.engine = engine
        self._owns = owns_backend
        self.aggregation = aggregation

    @property
    def label(self) -> str:
        return self.engine.scorer

    async def score(
        self, user_id: str, history: tuple[PreferencePair, ...], task: ScoringTask, scaling: Scaling
    ) -> Scored:
        try:
            out = await self.engine.score(
                user_id, history, task, scaling, aggregation=self.aggregation
            )
        except ScoringFailed:
            return Scored(None, scaling.ind + scaling.pro, scaling.ind + scaling.pro)
        return Scored(
            out.scores,
            out.ind.requested + out.pro.requested,
            out.ind.failed + out.pro.failed,
            sum((out.ind.skipped + out.pro.skipped).values()),
        )

    async def aclose(self) -> None:
        if self._owns:
            await self.engine.close()


def _messages(context: tuple[Any, ...]) -> list[dict[str, str]]:
    return [{"role": m.role, "content": m.content} for m in context]


class HttpScorer(PairScorer):
    """A running pgenrm server's `/v1/score`."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 120.0,
        concurrency: int = 8,
        aggregation: Aggregation = "mean",
    ) -> None:
        self.url = url.rstrip("/")
        self.aggregation = aggregation
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        self._client = httpx.AsyncClient(timeout=timeout, limits=limits)
        self._model = "?"

    @property
    def label(self) -> str:
        return f"http:{self.url}:{self._model}"

    async def score(
        self, user_id: str, history: tuple[PreferencePair, ...], task: ScoringTask, scaling: Scaling
    ) -> Scored:
        body = {
            "user_id": user_id,
            "history": [
                {"context": _messages(p.context), "chosen": p.chosen, "rejected": p.rejected}
                for p in history
            ],
            "context": _messages(task.context),
            "candidates": list(task.candidates),
            "scaling": {"ind": scaling.ind, "pro": scaling.pro},
            "return_traces": "none",
            "aggregation": self.aggregation,
        }
        requested = scaling.ind + scaling.pro
        response = await self._client.post(f"{self.url}/v1/score", json=body)
        if response.status_code == 502:
            return Scored(None, requested, requested)
        if response.status_code != 200:
            raise RuntimeError(
                f"{self.url}/v1/score answered {response.status_code}: {response.text[:300]}"
            )
        out = response.json()
        self._model = out["model"]
        samples = out["samples"]
        failures = {**samples["ind"]["failures"], **samples["pro"]["failures"]}
        return Scored(
            [s["score"] for s in out["scores"]],
            samples["ind"]["requested"] + samples["pro"]["requested"],
            samples["ind"]["failed"] + samples["pro"]["failed"],
            sum(failures.get(r, 0) for r in ("no_prototypes", "no_neighbours")),
        )

    async def aclose(self) -> None:
        await self._client.aclose()
