"""The `/v1/score` serving object: wire request -> engine -> wire response.

Built and tested without FastAPI (like vLLM's `OpenAIServingChat`): the route only hands it the
validated body. It enforces the size limits that are settings, picks the scaling, and turns the
engine's outcome into the response with its traces.
"""

from __future__ import annotations

import time

from service.api.schemas import (
    CandidateResult,
    CandidateTrace,
    HistoryPair,
    LevelCounts,
    Message,
    SampleCounts,
    SampleTrace,
    ScoreRequest,
    ScoreResponse,
    Trace,
    Traces,
)
from service.core.chain import ParseFailure
from service.core.config import Settings
from service.core.errors import InvalidRequest, ScoringFailed, Unavailable
from service.core.inputs import Message as DomainMessage
from service.core.inputs import PreferencePair, ScoringTask
from service.core.metrics import Metrics
from service.engine.aggregate import LevelTally, Sample
from service.engine.parsing import ScoredSample
from service.engine.prompts import PROMPT_TEMPLATE_VERSION
from service.engine.scaling import Scaling
from service.engine.scorer import ScoreOutcome, ScoringEngine


def _context(context: list[Message] | None, prompt: str | None) -> tuple[DomainMessage, ...]:
    if context is not None:
        return tuple(DomainMessage(m.role, m.content) for m in context)
    return (DomainMessage("user", prompt or ""),)


def to_pair(pair: HistoryPair) -> PreferencePair:
    return PreferencePair(
        context=_context(pair.context, pair.prompt),
        chosen=pair.chosen,
        rejected=pair.rejected,
        feedback=pair.feedback,
    )


class ScoreService:
    def __init__(
        self, engine: ScoringEngine, settings: Settings, metrics: Metrics | None = None
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.metrics = metrics

    async def score(self, request: ScoreRequest) -> ScoreResponse:
        started = time.perf_counter()
        if not self.engine.ready:
            raise Unavailable("the scoring backend is still loading; retry shortly", retry_after=5)
        self.check_limits(request)
        history = tuple(to_pair(h) for h in request.history)
        task = ScoringTask(
            context=_context(request.context, request.prompt),
            candidates=tuple(request.candidates),
        )
        scaling, cold_start = self.resolve_scaling(request, bool(history))
        try:
            outcome = await self.engine.score(request.user_id, history, task, scaling, request.seed)
        except ScoringFailed:
            self._count_failed(scaling)
            raise
        self._count(outcome)
        return self._response(request, outcome, cold_start, started)

    def _count(self, outcome: ScoreOutcome) -> None:
        if self.metrics is None:
            return
        for level, tally in (("ind", outcome.ind), ("pro", outcome.pro)):
            if tally.valid:
                self.metrics.samples.labels(level=level, outcome="valid", reason="ok").inc(
                    tally.valid
                )
            for reason, count in tally.failures.items():
                self.metrics.samples.labels(level=level, outcome="failed", reason=reason).inc(count)
        if outcome.degraded:
            self.metrics.degraded.inc()

    def _count_failed(self, scaling: Scaling) -> None:
        if self.metrics is None:
            return
        for level, n in (("ind", scaling.ind), ("pro", scaling.pro)):
            if n:
                self.metrics.samples.labels(level=level, outcome="failed", reason="all_failed").inc(
                    n
                )

    def resolve_scaling(self, request: ScoreRequest, has_history: bool) -> tuple[Scaling, bool]:
        """Request's scaling or the defaults; a user with no history is scored at the prototype
        level only when prototypes are loaded (cold start)."""
        s = self.settings
        prototypes = self.engine.prototypes_version is not None
        if request.scaling is not None:
            scaling = Scaling(request.scaling.ind, request.scaling.pro)
        else:
            scaling = Scaling(s.default_ind, s.default_pro if prototypes else 0)
        if not has_history and prototypes and scaling.pro > 0:
            return Scaling(0, scaling.pro), True
        return scaling, False

    def check_limits(self, request: ScoreRequest) -> None:
        s = self.settings
        _at_most(
            "candidates", len(request.candidates), s.max_candidates, "candidates", "MAX_CANDIDATES"
        )
        _at_most("history", len(request.history), s.max_history, "history pairs", "MAX_HISTORY")
        if request.scaling is not None:
            _at_most("scaling.ind", request.scaling.ind, s.max_ind, "ind samples", "MAX_IND")
            _at_most("scaling.pro", request.scaling.pro, s.max_pro, "pro samples", "MAX_PRO")
        for field, text in _texts(request):
            if len(text) > s.max_text_chars:
                raise InvalidRequest(
                    f"`{field}` has {len(text):,} characters; the limit is {s.max_text_chars:,} "
                    "(PGENRM_MAX_TEXT_CHARS)",
                    field=field,
                )

    def _response(
        self, request: ScoreRequest, outcome: ScoreOutcome, cold_start: bool, started: float
    ) -> ScoreResponse:
        scores = [
            CandidateResult(
                index=i,
                score=round(score, 4),
                rank=outcome.ranks[i],
                ind_score=None if outcome.ind_scores is None else round(outcome.ind_scores[i], 4),
                pro_score=None if outcome.pro_scores is None else round(outcome.pro_scores[i], 4),
            )
            for i, score in enumerate(outcome.scores)
        ]
        return ScoreResponse(
            user_id=request.user_id,
            scores=scores,
            preferred=outcome.preferred,
            margin=round(outcome.margin, 4),
            samples=SampleCounts(
                ind=_counts(outcome.ind), pro=_counts(outcome.pro), retried=dict(outcome.retried)
            ),
            traces=_traces(outcome, request.return_traces),
            backend=outcome.backend,
            model=outcome.model,
            prompt_version=PROMPT_TEMPLATE_VERSION,
            prototypes_version=self.engine.prototypes_version,
            cold_start=cold_start,
            degraded=outcome.degraded,
            seed=outcome.seed,
            latency_ms=round((time.perf_counter() - started) * 1000, 2),
        )


def _at_most(field: str, value: int, limit: int, what: str, setting: str) -> None:
    if value > limit:
        raise InvalidRequest(
            f"`{field}`: {value} {what} exceed the limit of {limit} (PGENRM_{setting})", field=field
        )


def _texts(request: ScoreRequest) -> list[tuple[str, str]]:
    out = [(f"candidates[{i}]", c) for i, c in enumerate(request.candidates)]
    if request.prompt is not None:
        out.append(("prompt", request.prompt))
    out += [(f"context[{i}].content", m.content) for i, m in enumerate(request.context or [])]
    for i, pair in enumerate(request.history):
        out += [(f"history[{i}].chosen", pair.chosen)]
        out += [(f"history[{i}].rejected", pair.rejected)]
        if pair.prompt is not None:
            out.append((f"history[{i}].prompt", pair.prompt))
        if pair.feedback is not None:
            out.append((f"history[{i}].feedback", pair.feedback))
        out += [
            (f"history[{i}].context[{j}].content", m.content)
            for j, m in enumerate(pair.context or [])
        ]
    return out


def _counts(tally: LevelTally) -> LevelCounts:
    return LevelCounts(
        requested=tally.requested,
        valid=tally.valid,
        failed=tally.failed,
        failures=dict(tally.failures),
    )


def _summary(sample: Sample) -> Trace:
    assert isinstance(sample.outcome, ScoredSample)
    chain = sample.outcome.chain()
    order = sample.order or tuple(range(len(chain.candidates)))
    candidates = sorted(
        (
            CandidateTrace(index=index, overall=round(c.overall, 4), criteria=list(c.scores))
            for index, c in zip(order, chain.candidates, strict=True)
        ),
        key=lambda t: t.index,
    )
    return Trace(
        level=sample.level,
        source=sample.source,
        persona=chain.persona,
        criteria=list(chain.criteria),
        candidates=candidates,
        flags=list(chain.flags),
    )


def _traces(outcome: ScoreOutcome, level: str) -> Traces | None:
    if level == "none":
        return None
    summary = _summary(outcome.trace) if outcome.trace is not None else None
    if level != "samples":
        return Traces(summary=summary)
    samples = [
        SampleTrace(
            level=s.level,
            source=s.source,
            chain=s.outcome.chain() if isinstance(s.outcome, ScoredSample) else None,
            failure=s.outcome if isinstance(s.outcome, ParseFailure) else None,
        )
        for s in outcome.samples
    ]
    return Traces(summary=summary, samples=samples)
