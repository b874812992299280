"""`aggregation: "meta"`: MetaRM weighs every valid sample before the levels are averaged.

The default aggregation (`"mean"`) is the paper's: each level's plain mean, fused (Eq. 9). With
`"meta"`, each valid sample's weight is MetaRM's predicted process reward (how likely it is
right for reasons a human shares), read from its chain against the plain aggregate; each level
is then the weighted mean and the levels are fused as before. Samples are never dropped, so a
request's valid-sample counts and failures do not change, only how much each sample counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from service.engine.aggregate import Sample
from service.engine.meta_reward import MetaRM, features, in_candidate_order, winner
from service.engine.parsing import ScoredSample

Aggregation = Literal["mean", "meta"]
AGGREGATIONS: tuple[Aggregation, ...] = ("mean", "meta")


def meta_weights(
    samples: Sequence[Sample], ensemble: Sequence[float], lengths: Sequence[int], model: MetaRM
) -> list[float | None]:
    """Per sample: MetaRM's P(process reward), None for a failed sample. With fewer than two
    candidates there is no verdict to judge: every valid sample weighs 1."""
    chains = [
        (i, in_candidate_order(s.outcome.chain(), s.order))
        for i, s in enumerate(samples)
        if isinstance(s.outcome, ScoredSample)
    ]
    out: list[float | None] = [None] * len(samples)
    if len(ensemble) < 2:
        for i, _ in chains:
            out[i] = 1.0
        return out
    winners = [winner(c) for _, c in chains]
    rows = [
        features(c, winners, w, ensemble, lengths)
        for (_, c), w in zip(chains, winners, strict=True)
    ]
    if rows:
        for (i, _), p in zip(chains, model.predict(rows), strict=True):
            out[i] = float(p)
    return out
