"""Turn a user model into a weighted rubric and per-candidate criterion scores.

Every criterion is one additive part of the user's utility (a style group, content, wording).
Its weight is the spread of that part over the texts at hand (history answers and candidates),
and its score is the part standardised by the same spread, mapped to 1-10. The weighted overall
is then a positive affine map of the utility, so the chain ranks exactly as the model does
(up to rounding and the 1-10 clip), while staying readable criterion by criterion.

A few texts that barely differ (two candidates and no history) have a tiny spread, and
standardising by it would turn any difference into a full +-1 (a 3-point margin between "a" and
"b"). So every criterion's spread is stretched by one common factor until the spreads sum to at
least `REFERENCE_SPREAD`: the overall stays a positive affine map of the utility (same ranking),
and below that spread a score point stands for a fixed number of log-odds.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from service.backends.embedded.params import Calibration
from service.backends.embedded.usermodel import GROUP_MASK, UserModels
from service.engine.render import rounded_weights

F64 = npt.NDArray[np.float64]
NEUTRAL = "neutral"
# The least summed spread (log-odds) a rubric is standardised by. The overall is about
# 5.5 + score_slope * (utility - mean) / max(summed spread, REFERENCE_SPREAD), so two candidates
# whose utilities differ by d log-odds are at most 1.5 * d / REFERENCE_SPREAD points apart, and
# the old rubric's fixed 3-point two-candidate gap needs d = 10 (a preference no user doubts).
# Why 5: measured on 40 real pairs per set (DSP / HH-RLHF, the pair's own user's 4 other pairs
# as history), the old rubric gave a bare pair a mean gap of 2.0 / 1.9 points but the same kind
# of pair with a history 0.85 / 0.80, because history answers spread the utility (summed
# spread median 11.6 / 3.2, cold pairs 1.0 / 1.5). With 5 the bare pairs get 0.52 / 0.65 and
# the history pairs 0.85 / 0.46: a cold pair is shown at the scale of a pair with a history
# instead of being stretched, and the chosen answer's win, tie or loss stayed the same in 158
# of the 160 (one win became a tie, one tie a win).
REFERENCE_SPREAD = 5.0


class PlannedCriterion(NamedTuple):  # a tuple: an Ind-8 call makes dozens of them
    key: str
    direction: float  # +1: the user wants more of it, -1: less
    weight: int  # percent
    scores: F64  # (n_candidates,), 1-10, one decimal
    standardised: F64  # (n_candidates,): how far each candidate is from the typical answer


def plan(
    models: UserModels,
    candidates: slice,
    cal: Calibration,
    rng: np.random.Generator | None = None,
) -> list[list[PlannedCriterion]]:
    """Criteria for the candidates, per sample; with `rng`, every sample but the first gets
    its own variation of the weights."""
    parts = models.parts  # (samples, criteria, texts)
    deviation = parts - parts.mean(axis=2, keepdims=True)
    spread = np.sqrt(np.add.reduce(deviation * deviation, axis=2) / parts.shape[2])  # std, as numpy
    live = spread > 1e-9
    total = np.where(live, spread, 0.0).sum(axis=1)
    stretch = np.maximum(1.0, REFERENCE_SPREAD / np.where(total > 0, total, REFERENCE_SPREAD))
    scale = np.where(live, spread * stretch[:, None], 1.0)[:, :, None]
    z = deviation[:, :, candidates] / scale
    scores = np.round(np.clip(5.5 + cal.score_slope * z, 1.0, 10.0), 1)
    # +1: the user wants more of the criterion, -1: less (a style group's summed coefficient)
    signs = np.ones(live.shape)
    signs[:, : GROUP_MASK.shape[1]] = np.where(models.style_coef @ GROUP_MASK >= 0, 1.0, -1.0)
    n = candidates.stop - candidates.start
    out = []
    for b in range(len(models)):
        keys = np.flatnonzero(live[b])
        if not keys.size:  # the candidates differ on nothing the model weighs: say so, tie
            out.append([PlannedCriterion(NEUTRAL, 1.0, 100, np.full(n, 5.5), np.zeros(n))])
            continue
        raw = spread[b, keys]
        if rng is not None and b and keys.size > 1:
            raw = rng.dirichlet(cal.weight_jitter * raw / raw.sum() + 1e-3)
        share = 100.0 * raw / raw.sum()
        order = np.argsort(-share)
        order = order[share[order] >= cal.min_weight][: cal.max_criteria]
        kept = order if order.size else np.array([np.argmax(share)])
        percents = rounded_weights(raw[kept].tolist())
        chosen = keys[kept]  # whole rows at once: indexing element by element cost more
        rows = zip(
            chosen.tolist(),
            signs[b, chosen].tolist(),
            percents,
            scores[b, chosen],
            z[b, chosen],
            strict=True,
        )
        out.append(
            [
                PlannedCriterion(models.keys[key], sign, p, score, standardised)
                for key, sign, p, score, standardised in rows
                if p
            ]
        )
    return out
