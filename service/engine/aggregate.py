"""Per-level bookkeeping and aggregation of sample outcomes (pure functions)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from service.core.chain import ParseFailure
from service.engine.backend import Level, Utility
from service.engine.parsing import ScoredSample


@dataclass
class Sample:
    """One sample's outcome and where it came from."""

    level: Level
    source: str
    outcome: ScoredSample | ParseFailure
    order: tuple[int, ...] | None = None  # presented position -> candidate index, when shuffled
    utility: Utility | None = None  # the backend's calibrated log-odds, if it has them


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


def mean_scores(
    samples: Sequence[Sample], weights: Sequence[float | None] | None = None
) -> list[float] | None:
    """Per candidate, the mean over the valid samples; with `weights` (one per sample, e.g.
    MetaRM's), the weighted mean (all weights 0: the plain mean, never a division by 0)."""
    valid = [
        (candidate_scores(s), 1.0 if weights is None else weights[i] or 0.0)
        for i, s in enumerate(samples)
        if isinstance(s.outcome, ScoredSample)
    ]
    if not valid:
        return None
    total = sum(w for _, w in valid)
    if total <= 0:
        valid, total = [(scores, 1.0) for scores, _ in valid], float(len(valid))
    width = len(valid[0][0])
    return [sum(w * scores[i] for scores, w in valid) / total for i in range(width)]


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


def win_probability(
    samples: Sequence[Sample], a: int, b: int, ind_weight: float = 0.5, pro_weight: float = 0.5
) -> float | None:
    """How sure the samples are that candidate `a` is better than `b` (request indices).

    Per level, the mean over valid samples of each one's calibrated win probability (the
    backend's `Utility`), so samples that disagree pull it towards 0.5. A level with a sample
    that has no utility (an LLM's chain) counts votes instead, 1 / 0.5 / 0 for a win / tie /
    loss, smoothed by Laplace's rule ((votes + 1) / (n + 2)) so few samples never claim
    certainty. The levels are fused with the weights the scores are fused with (`fuse`)."""
    present = []
    for level, weight in (("ind", ind_weight), ("pro", pro_weight)):
        estimate = _level_win([s for s in samples if s.level == level], a, b)
        if estimate is not None:
            present.append((weight, estimate))
    used = [(w, p) for w, p in present if w > 0] or [(1.0, p) for _, p in present]
    if not used:
        return None
    return sum(w * p for w, p in used) / sum(w for w, _ in used)


def _level_win(samples: Sequence[Sample], a: int, b: int) -> float | None:
    wins, calibrated = [], True
    for sample in samples:
        if not isinstance(sample.outcome, ScoredSample):
            continue
        k = len(sample.outcome.overall)
        utility = sample.utility
        if utility is not None and utility.width == k:
            order = sample.order or tuple(range(k))
            wins.append(utility.win(order.index(a), order.index(b)))
            continue
        scores = candidate_scores(sample)
        wins.append(1.0 if scores[a] > scores[b] else 0.5 if scores[a] == scores[b] else 0.0)
        calibrated = False
    if not wins:
        return None
    if calibrated:
        return sum(wins) / len(wins)
    return (sum(wins) + 1.0) / (len(wins) + 2.0)


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
