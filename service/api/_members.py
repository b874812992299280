"""One member's answer from a (possibly shared) engine outcome: scores, rewards, status.

A member's candidates that were not scored (empty, over-long, or every sample failed) get
`status: failed`, a reason and a null score: never a made-up number. Their reward is the
request's fallback reward when it gave one (counted), else null.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from service.api._traces import sample_counts, traces
from service.api.schemas.score import (
    CandidateResult,
    GroupInfo,
    LevelCounts,
    SampleCounts,
    ScoreResponse,
)
from service.core.errors import ScoringFailed
from service.core.metrics import Metrics
from service.engine.aggregate import rank, win_probability
from service.engine.prompts import PROMPT_TEMPLATE_VERSION
from service.engine.scorer import ScoreOutcome

if TYPE_CHECKING:
    from service.api.serving import Prepared


def unit_reward(score: float) -> float:
    """The documented normalisation: the 1-10 score mapped linearly onto 0..1."""
    return min(1.0, max(0.0, (score - 1.0) / 9.0))


def _failed(index: int, reason: str, fallback: float | None) -> CandidateResult:
    return CandidateResult(
        index=index,
        status="failed",
        reason=reason,
        score=None,
        reward=fallback,
        fallback=fallback is not None,
        rank=None,
    )


def _count(metrics: Metrics | None, results: Sequence[CandidateResult]) -> None:
    if metrics is None:
        return
    for r in results:
        metrics.candidates.labels(status=r.status, reason=r.reason or "ok").inc()
        if r.fallback:
            metrics.fallback_rewards.inc()


def member_response(
    p: Prepared,
    outcome: ScoreOutcome,
    mine: Mapping[int, int],
    scored: Sequence[int],
    group: GroupInfo | None,
    reference: int | None,
    metrics: Metrics | None,
    level_weights: tuple[float, float] = (0.5, 0.5),
) -> ScoreResponse:
    """`mine`: engine candidate -> this member's candidate; `scored`: the engine candidates of
    the whole group (ranks and z-scores are within it); `reference`: the reference's index;
    `level_weights`: the engine's (ind, pro) fusion weights, which the confidence fuses by."""
    request = p.request
    group_scores = [outcome.scores[c] for c in scored]
    ranks = dict(zip(scored, rank(group_scores), strict=True))
    mean = sum(group_scores) / len(group_scores)
    spread = math.sqrt(sum((s - mean) ** 2 for s in group_scores) / len(group_scores))
    engine_of = {i: c for c, i in mine.items()}
    fallback = request.reward.fallback
    results = []
    for i in range(len(request.candidates)):
        if i in p.failed:
            results.append(_failed(i, p.failed[i], fallback))
            continue
        c = engine_of[i]
        score = outcome.scores[c]
        if request.reward.normalize == "zscore":
            reward = (score - mean) / spread if spread > 1e-9 else 0.0
        else:
            reward = unit_reward(score)
        results.append(
            CandidateResult(
                index=i,
                status="ok",
                score=round(score, 4),
                reward=round(reward, 6),
                score_std=round(outcome.stds[c], 4),
                valid_samples=outcome.valid[c],
                rank=ranks[c],
                ind_score=None if outcome.ind_scores is None else round(outcome.ind_scores[c], 4),
                pro_score=None if outcome.pro_scores is None else round(outcome.pro_scores[c], 4),
            )
        )
    _count(metrics, results)
    ok = sorted(
        (r for r in results if r.score is not None), key=lambda r: (-(r.score or 0), r.index)
    )
    confidence = None
    if len(ok) > 1:
        best, runner_up = engine_of[ok[0].index], engine_of[ok[1].index]
        p_win = win_probability(outcome.samples, best, runner_up, *level_weights)
        confidence = None if p_win is None else round(p_win, 4)
    return ScoreResponse(
        user_id=request.user_id,
        scores=results,
        preferred=ok[0].index if ok else None,
        margin=round((ok[0].score or 0) - (ok[1].score or 0), 4) if len(ok) > 1 else None,
        confidence=confidence,
        reference_score=None if reference is None else round(outcome.scores[reference], 4),
        history=p.history_used,
        group=group,
        samples=sample_counts(outcome),
        traces=traces(outcome, request.return_traces, mine),
        backend=outcome.backend,
        model=outcome.model,
        prompt_version=PROMPT_TEMPLATE_VERSION,
        prototypes_version=outcome.prototypes_version,
        cold_start=p.cold_start,
        degraded=outcome.degraded,
        seed=outcome.seed,
        latency_ms=round((time.perf_counter() - p.started) * 1000, 2),
    )


def unscored_response(
    p: Prepared,
    group: GroupInfo | None,
    error: ScoringFailed | None,
    metrics: Metrics | None,
    *,
    backend: str = "",
    model: str = "",
    prototypes_version: str | None = None,
) -> ScoreResponse:
    """No candidate of this member has a score: each says why (and gets the fallback, if any)."""
    request = p.request
    reason = None if error is None else "scoring_failed"
    results = [
        _failed(i, p.failed.get(i) or reason or "not_scored", request.reward.fallback)
        for i in range(len(request.candidates))
    ]
    _count(metrics, results)
    nothing = LevelCounts(requested=0, valid=0, failed=0)
    counts = SampleCounts(ind=nothing, pro=nothing)
    if error is not None:
        counts = SampleCounts(
            ind=LevelCounts(
                requested=p.scaling.ind,
                valid=0,
                failed=p.scaling.ind,
                failures={str(d["reason"]): int(d["count"]) for d in error.details},
            ),
            pro=LevelCounts(requested=p.scaling.pro, valid=0, failed=p.scaling.pro),
        )
    return ScoreResponse(
        user_id=request.user_id,
        scores=results,
        preferred=None,
        margin=None,
        confidence=None,
        history=p.history_used,
        group=group,
        samples=counts,
        traces=None,
        backend=backend,
        model=model,
        prompt_version=PROMPT_TEMPLATE_VERSION,
        prototypes_version=prototypes_version,
        cold_start=p.cold_start,
        degraded=False,
        seed=request.seed,
        latency_ms=round((time.perf_counter() - p.started) * 1000, 2),
    )
