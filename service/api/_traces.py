"""Engine outcome -> wire traces and sample counts, narrowed to one caller's candidates."""

from __future__ import annotations

from collections.abc import Mapping

from service.api.schemas.score import (
    CandidateTrace,
    LevelCounts,
    SampleCounts,
    SampleTrace,
    Trace,
    TraceCriterion,
    TraceLevel,
    Traces,
)
from service.core.chain import ParseFailure
from service.engine.aggregate import LevelTally, Sample
from service.engine.explain import explain
from service.engine.parsing import ScoredSample
from service.engine.scorer import ScoreOutcome


def sample_counts(outcome: ScoreOutcome) -> SampleCounts:
    return SampleCounts(
        ind=_counts(outcome.ind), pro=_counts(outcome.pro), retried=dict(outcome.retried)
    )


def _counts(tally: LevelTally) -> LevelCounts:
    return LevelCounts(
        requested=tally.requested,
        valid=tally.valid,
        failed=tally.failed,
        failures=dict(tally.failures),
    )


def traces(outcome: ScoreOutcome, level: TraceLevel, mine: Mapping[int, int]) -> Traces | None:
    """`mine` maps the engine's candidate index to this caller's: the summary shows only the
    caller's candidates (a group member sees its own), in the caller's indices."""
    if level == "none":
        return None
    summary = _summary(outcome.trace, mine) if outcome.trace is not None else None
    if level != "samples":
        return Traces(aggregation=outcome.aggregation, summary=summary)
    weights = outcome.meta_weights or [None] * len(outcome.samples)
    samples = [
        SampleTrace(
            level=s.level,
            source=s.source,
            responses=[mine.get(i) for i in (s.order or range(len(outcome.scores)))],
            chain=s.outcome.chain() if isinstance(s.outcome, ScoredSample) else None,
            failure=s.outcome if isinstance(s.outcome, ParseFailure) else None,
            meta_weight=None if w is None else round(w, 6),
        )
        for s, w in zip(outcome.samples, weights, strict=True)
    ]
    return Traces(aggregation=outcome.aggregation, summary=summary, samples=samples)


def _summary(sample: Sample, mine: Mapping[int, int]) -> Trace:
    assert isinstance(sample.outcome, ScoredSample)
    chain = sample.outcome.chain()
    order = sample.order or tuple(range(len(chain.candidates)))
    explained = explain(chain)
    # Criteria that separate the candidates first (by weight), then the ones that do not.
    rank = sorted(
        range(len(chain.criteria)),
        key=lambda j: (explained.separates[j] is False, -chain.criteria[j].weight),
    )
    criteria = [
        TraceCriterion(**chain.criteria[j].model_dump(), separates=explained.separates[j])
        for j in rank
    ]
    position = {c.name: p for p, c in enumerate(criteria)}
    candidates = sorted(
        (
            CandidateTrace(
                index=mine[index],
                overall=round(c.overall, 4),
                why=why,
                criteria=sorted(c.scores, key=lambda s: position.get(s.criterion, len(position))),
            )
            for index, c, why in zip(order, chain.candidates, explained.why, strict=True)
            if index in mine
        ),
        key=lambda t: t.index,
    )
    return Trace(
        level=sample.level,
        source=sample.source,
        persona=chain.persona,
        criteria=criteria,
        candidates=candidates,
        flags=list(chain.flags),
    )
