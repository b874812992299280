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

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from service.backends.embedded import _rows
from service.backends.embedded.params import Calibration
from service.backends.embedded.usermodel import GROUP_MASK, UserModels
from service.engine.render import read_weight

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


class Rubrics:
    """Every sample's rubric: its criteria (rows of the model's parts, heaviest first) and their
    percent weights, one row per sample (zero percents pad a short rubric and are never shown).
    The overall scores come for all samples at once (`overall`); the criteria as
    `PlannedCriterion`s only for a chain that is written (`criteria`), which most calls never
    ask for."""

    def __init__(
        self,
        keys: Sequence[str],
        rows: npt.NDArray[np.intp],
        percents: npt.NDArray[np.int64],
        signs: F64,
        scores: F64,
        standardised: F64,
    ) -> None:
        self._keys, self.rows, self.percents = keys, rows, percents
        self._signs, self._scores, self._z = signs, scores, standardised

    def __len__(self) -> int:
        return len(self.rows)

    def criteria(self, b: int) -> list[PlannedCriterion]:
        shown = self.percents[b] > 0
        rows, percents = self.rows[b, shown], self.percents[b, shown].tolist()
        if not percents:  # the candidates differ on nothing the model weighs: say so, tie
            n = self._scores.shape[2]
            return [PlannedCriterion(NEUTRAL, 1.0, 100, np.full(n, 5.5), np.zeros(n))]
        return [
            PlannedCriterion(self._keys[row], sign, p, score, standardised)
            for row, sign, p, score, standardised in zip(
                rows.tolist(),
                self._signs[b, rows].tolist(),
                percents,
                self._scores[b, rows],
                self._z[b, rows],
                strict=True,
            )
        ]

    def overall(self) -> list[tuple[float, ...]]:
        """Per sample, the overall of each candidate: `render.final_scores` of its criteria
        (the weighted mean a parser reads back from the chain), for every sample in one pass.
        Criteria are added in the chain's order, one at a time as `final_scores` adds them, so
        the sums round alike; a zero weight adds an exact zero, which changes nothing."""
        samples = np.arange(len(self.rows))[:, None]
        scores = self._scores[samples, self.rows]  # (samples, criteria, candidates)
        weights = READ_WEIGHT[self.percents]
        neutral = ~weights.any(axis=1)  # a neutral rubric: every candidate 5.5 at weight 1
        scores[neutral, 0], weights[neutral, 0] = 5.5, 1.0
        total, weighted = _rows.in_order(weights), _rows.in_order(scores * weights[:, :, None])
        return [tuple(row) for row in (weighted / total[:, None]).tolist()]


# The weight a parser reads back for each integer percent (`render.final_scores`' reading).
READ_WEIGHT = np.array([read_weight(p) for p in range(101)])


def rounded_percents(raw: F64, lengths: npt.NDArray[np.intp]) -> npt.NDArray[np.int64]:
    """`render.rounded_weights` of each row's first `lengths` entries (the rest are padding and
    get 0), all rows in one pass with the same arithmetic: integer percents that sum to 100,
    the largest remainders rounded up, ties in the row's order."""
    width = raw.shape[1]
    real = np.arange(width)[None, :] < lengths[:, None]
    mass = _rows.in_order(np.where(real, raw, 0.0))
    exact = 100.0 * raw / np.where(mass > 0, mass, 1.0)[:, None]
    floors = np.where(real, exact, 0.0).astype(np.int64)
    remainders = np.where(real, exact - floors, -1.0)  # padding last
    order = np.argsort(-remainders, axis=1, kind="stable")
    place = np.empty_like(order)
    np.put_along_axis(place, order, np.broadcast_to(np.arange(width), order.shape), axis=1)
    short = np.where(lengths > 0, 100 - floors.sum(axis=1), 0)  # a row of nothing stays 0
    percents: npt.NDArray[np.int64] = floors + (place < short[:, None])
    return percents


def _criteria(
    live: npt.NDArray[np.bool_], spread: F64, cal: Calibration, rng: np.random.Generator | None
) -> tuple[npt.NDArray[np.intp], F64, npt.NDArray[np.intp]]:
    """Each sample's criteria (rows of the model's parts, heaviest first, at most
    `max_criteria`, none under `min_weight` percent but the heaviest) and their raw weights,
    padded with zeros. With `rng`, every sample but the first draws its weights around the
    spreads. All samples at once when they have the same live criteria (as they have unless a
    sample's coefficient is exactly zero); else sample by sample."""
    samples = len(live)
    rows = np.zeros((samples, cal.max_criteria), np.intp)
    raws = np.zeros((samples, cal.max_criteria))
    if not (live == live[:1]).all():
        lengths = np.zeros(samples, np.intp)
        for b in range(samples):
            lengths[b] = _sample_criteria(
                live[b], spread[b], cal, rng if b else None, rows[b], raws[b]
            )
        return rows, raws, lengths
    keys = np.flatnonzero(live[0])
    if not keys.size:  # no criteria: every rubric neutral
        return rows, raws, np.zeros(samples, np.intp)
    # C order (`spread[:, keys]` is F order): numpy sums a C row as it sums the row alone.
    raw = spread.take(keys, axis=1)
    if rng is not None and samples > 1 and keys.size > 1:
        drawn = raw[1:]
        alpha = cal.weight_jitter * drawn / drawn.sum(axis=1, keepdims=True) + 1e-3
        raw[1:] = _rows.dirichlet_rows(rng, alpha)
    share = 100.0 * raw / raw.sum(axis=1, keepdims=True)
    order = np.argsort(-share, axis=1)[:, : cal.max_criteria]  # each row sorted as alone
    # None at min_weight: the heaviest alone, as `_sample_criteria` keeps it.
    heavy = np.add.reduce(share >= cal.min_weight, axis=1)
    lengths = np.maximum(np.minimum(heavy, order.shape[1]), 1)
    kept = np.arange(order.shape[1])[None, :] < lengths[:, None]
    rows[:, : order.shape[1]] = np.where(kept, keys[order], 0)
    raws[:, : order.shape[1]] = np.where(kept, raw[np.arange(samples)[:, None], order], 0.0)
    return rows, raws, lengths


def _sample_criteria(
    live: npt.NDArray[np.bool_],
    spread: F64,
    cal: Calibration,
    rng: np.random.Generator | None,
    rows: npt.NDArray[np.intp],
    raws: F64,
) -> int:
    """One sample's criteria into `rows` and `raws`, as `_criteria` makes them; their count."""
    keys = np.flatnonzero(live)
    if not keys.size:
        return 0  # no criteria: a neutral rubric
    raw = spread[keys]
    if rng is not None and keys.size > 1:
        raw = rng.dirichlet(cal.weight_jitter * raw / raw.sum() + 1e-3)
    share = 100.0 * raw / raw.sum()
    order = np.argsort(-share)
    order = order[share[order] >= cal.min_weight][: cal.max_criteria]
    kept = order if order.size else np.array([np.argmax(share)])
    rows[: kept.size], raws[: kept.size] = keys[kept], raw[kept]
    return int(kept.size)


def plan(
    models: UserModels,
    candidates: slice,
    cal: Calibration,
    rng: np.random.Generator | None = None,
) -> Rubrics:
    """Criteria for the candidates, per sample; with `rng`, every sample but the first gets
    its own variation of the weights."""
    parts = models.parts  # (samples, criteria, texts)
    deviation = parts - np.add.reduce(parts, axis=2, keepdims=True) / parts.shape[2]  # mean
    spread = np.sqrt(np.add.reduce(deviation * deviation, axis=2) / parts.shape[2])  # std, as numpy
    live = spread > 1e-9
    total = np.where(live, spread, 0.0).sum(axis=1)
    stretch = np.maximum(1.0, REFERENCE_SPREAD / np.where(total > 0, total, REFERENCE_SPREAD))
    scale = np.where(live, spread * stretch[:, None], 1.0)[:, :, None]
    z = deviation[:, :, candidates] / scale
    scores = np.minimum(np.maximum(5.5 + cal.score_slope * z, 1.0), 10.0).round(1)  # 1-10
    # +1: the user wants more of the criterion, -1: less (a style group's summed coefficient)
    signs = np.ones(live.shape)
    signs[:, : GROUP_MASK.shape[1]] = np.where(models.style_coef @ GROUP_MASK >= 0, 1.0, -1.0)
    rows, raws, lengths = _criteria(live, spread, cal, rng)
    return Rubrics(models.keys, rows, rounded_percents(raws, lengths), signs, scores, z)
