"""Per-level bookkeeping and aggregation of sample outcomes (pure functions)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from service.core.chain import ParseFailure
from service.engine.backend import Level
from service.engine.parsing import ScoredSample


@dataclass
class Sample:
    """One sample's outcome and where it came from."""

    level: Level
    source: str
    outcome: ScoredSample | ParseFailure
    order: tuple[int, ...] | None = None  # presented position -> candidate index, when shuffled


@dataclass
class LevelTally:
    requested: int = 0
    samples: list[Sample] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)  # never sent (e.g. no neighbours)

    @property
    def scored(self) -> list[ScoredSample]:
        return [s.outcome for s in self.samples if isinstance(s.outcome, ScoredSample)]

    @property
    def failures(self) -> Counter[str]:
        counts: Counter[str] = Counter(
            s.outcome.reason for s in self.samples if isinstance(s.outcome, ParseFailure)
        )
        return counts + self.skipped

    @property
    def valid(self) -> int:
        return len(self.scored)

    @property
    def failed(self) -> int:
        return self.requested - self.valid


def candidate_scores(sample: Sample) -> list[float]:
    """A valid sample's overall per candidate, in the request's candidate order."""
    assert isinstance(sample.outcome, ScoredSample)
    presented = sample.outcome.overall
    if sample.order is None:
        return list(presented)
    scores = [0.0] * len(presented)
    for position, index in enumerate(sample.order):
        scores[index] = presented[position]
    return scores


def mean_scores(samples: Sequence[Sample]) -> list[float] | None:
    valid = [candidate_scores(s) for s in samples if isinstance(s.outcome, ScoredSample)]
    if not valid:
        return None
    return [sum(column) / len(valid) for column in zip(*valid, strict=True)]


def spread(samples: Sequence[Sample], k: int) -> tuple[list[float], list[int]]:
    """Per candidate: the standard deviation of its score over the valid samples (both levels
    pooled; 0 for one sample) and how many valid samples scored it."""
    columns: list[list[float]] = [[] for _ in range(k)]
    for sample in samples:
        if isinstance(sample.outcome, ScoredSample):
            for i, score in enumerate(candidate_scores(sample)):
                columns[i].append(score)
    return [_std(c) for c in columns], [len(c) for c in columns]


def _std(values: Sequence[float]) -> float:
    """Population standard deviation in plain floats (statistics.pstdev's exact fractions cost
    more than the rest of a warm score's aggregation)."""
    if len(values) < 2:
        return 0.0
    mean = sum(values) / len(values)
    return math.sqrt(max(0.0, sum((v - mean) ** 2 for v in values) / len(values)))


def rank(scores: Sequence[float]) -> list[int]:
    """Competition ranking, 1 = best; equal scores share a rank."""
    return [1 + sum(other > score for other in scores) for score in scores]


def medoid(samples: Sequence[Sample], target: Sequence[float]) -> int:
    """Index of the valid sample whose scores are closest to the aggregate: the trace to show."""
    best, best_distance = -1, float("inf")
    for i, sample in enumerate(samples):
        if not isinstance(sample.outcome, ScoredSample):
            continue
        distance = sum((a - b) ** 2 for a, b in zip(candidate_scores(sample), target, strict=True))
        if distance < best_distance:
            best, best_distance = i, distance
    return best
