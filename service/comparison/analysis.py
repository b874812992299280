"""The statistics of a comparison, from scored rows alone (no engine, no I/O).

Win rates count ties as half a win. Every interval is a 95% percentile bootstrap over rows
(scipy, one fixed seed), so the same rows always report the same intervals; with fewer than two
rows there is no interval (null), and identical values give a zero-width one.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from service.comparison.results import (
    EVERY_OTHER,
    Comparison,
    Driver,
    Interval,
    PairStat,
    RowFailure,
    Scope,
    UncertainRow,
)
from service.core.criteria import KEYS

TIE = 1e-9  # scores this close are a tie
SPREAD_FLOOR = 0.01  # a margin's denominator: scores without sample spread are not infinitely sure
PROMPT_EXCERPT = 160
UNCERTAIN_ROWS = 10
DIGITS = 4  # reported means and bounds (scores are written to one decimal)
LISTED_FAILURES = 50


@dataclass(frozen=True)
class ScoredRow:
    """One row's scores, as the analysis needs them; only scored variants appear."""

    row: int
    user_id: str
    prompt: str
    scores: Mapping[str, float]
    stds: Mapping[str, float] = field(default_factory=dict)
    # variant -> criterion key -> weight x score / 100 in the row's summary chain
    weighted: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    segment: str | None = None
    id: str | None = None


Pair = tuple[str, str]


def pairs_of(variants: Sequence[str], baseline: str | None) -> list[Pair]:
    """Each variant against the baseline; without one, against each other and every other."""
    if baseline is not None:
        return [(v, baseline) for v in variants if v != baseline]
    ordered = [(v, w) for v in variants for w in variants if v != w]
    return ordered + [(v, EVERY_OTHER) for v in variants]


def mean_ci(values: Sequence[float], seed: int = 0, resamples: int = 2000) -> Interval | None:
    """95% percentile bootstrap interval of the mean; None below two values."""
    data = np.asarray(values, dtype=np.float64)
    if data.size < 2:
        return None
    if np.ptp(data) == 0:
        return (_round(float(data[0])), _round(float(data[0])))
    from scipy.stats import bootstrap

    result = bootstrap(
        (data,),
        np.mean,
        n_resamples=resamples,
        method="percentile",
        vectorized=True,
        rng=np.random.default_rng(seed),
    )
    interval = result.confidence_interval
    return (_round(float(interval.low)), _round(float(interval.high)))


def _round(value: float) -> float:
    return round(value, DIGITS)


def _win(a: float, b: float) -> float:
    return 0.5 if abs(a - b) <= TIE else float(a > b)


def _outcome(row: ScoredRow, pair: Pair) -> tuple[float, float] | None:
    """(win, score difference) of the pair in this row, or None if a side is not scored."""
    variant, against = pair
    mine = row.scores.get(variant)
    if mine is None:
        return None
    if against != EVERY_OTHER:
        theirs = row.scores.get(against)
        return None if theirs is None else (_win(mine, theirs), mine - theirs)
    others = [s for v, s in row.scores.items() if v != variant]
    if not others:
        return None
    return sum(_win(mine, o) for o in others) / len(others), mine - sum(others) / len(others)


def _stat(
    pair: Pair, scope: Scope, group: str, rows: Iterable[ScoredRow], seed: int, resamples: int
) -> PairStat:
    outcomes = [o for o in (_outcome(r, pair) for r in rows) if o is not None]
    wins, diffs = [w for w, _ in outcomes], [d for _, d in outcomes]
    return PairStat(
        variant=pair[0],
        against=pair[1],
        scope=scope,
        group=group,
        n=len(outcomes),
        win_rate=_mean(wins),
        win_rate_ci95=mean_ci(wins, seed, resamples),
        mean_diff=_mean(diffs),
        mean_diff_ci95=mean_ci(diffs, seed, resamples),
    )


def _mean(values: Sequence[float]) -> float | None:
    return _round(sum(values) / len(values)) if values else None


def _groups(
    rows: Sequence[ScoredRow], key: Callable[[ScoredRow], str]
) -> dict[str, list[ScoredRow]]:
    out: dict[str, list[ScoredRow]] = defaultdict(list)
    for r in rows:
        out[key(r)].append(r)
    return dict(sorted(out.items()))


Groups = list[tuple[Scope, dict[str, list[ScoredRow]]]]


def scopes(rows: Sequence[ScoredRow], segmented: bool = False) -> Groups:
    """The rows overall, per user and (when `segmented`) per segment."""
    out: Groups = [
        ("overall", {"all": list(rows)}),
        ("user", _groups(rows, lambda r: r.user_id)),
    ]
    if segmented:
        out.append(("segment", _groups(rows, lambda r: r.segment or "(none)")))
    return out


def pair_stats(
    rows: Sequence[ScoredRow],
    pairs: Sequence[Pair],
    *,
    segmented: bool = False,
    seed: int = 0,
    resamples: int = 2000,
) -> list[PairStat]:
    """Every pair overall, then per user, then (when `segmented`) per segment."""
    return [
        _stat(pair, scope, group, members, seed, resamples)
        for scope, groups in scopes(rows, segmented)
        for group, members in groups.items()
        for pair in pairs
    ]


def _deltas(row: ScoredRow, pair: Pair) -> dict[str, float] | None:
    """Per key, the variant's weighted criterion score minus the other's (or the others' mean)."""
    variant, against = pair
    mine = row.weighted.get(variant)
    if mine is None or variant not in row.scores:
        return None
    if against == EVERY_OTHER:
        others = [w for v, w in row.weighted.items() if v != variant and v in row.scores]
    else:
        theirs = row.weighted.get(against)
        others = [theirs] if theirs is not None and against in row.scores else []
    if not others:
        return None
    keys = set(mine).union(*others)
    return {k: mine.get(k, 0.0) - sum(o.get(k, 0.0) for o in others) / len(others) for k in keys}


def drivers(
    rows: Sequence[ScoredRow],
    pairs: Sequence[Pair],
    *,
    headline: str | None = None,
    segmented: bool = False,
    seed: int = 0,
    resamples: int = 2000,
) -> list[Driver]:
    """Per pair overall, and per user and segment for the pairs against `headline` (the
    baseline, or every other variant): each criterion key's mean weighted delta over the rows
    where both sides have a chain, by absolute mean (a key a row's chains lack counts 0)."""
    out: list[Driver] = []
    for scope, groups in scopes(rows, segmented):
        shown = pairs if scope == "overall" else [p for p in pairs if p[1] == headline]
        for group, members in groups.items():
            for pair in shown:
                out += _drivers(members, pair, scope, group, seed, resamples)
    return out


def _drivers(
    rows: Sequence[ScoredRow], pair: Pair, scope: Scope, group: str, seed: int, resamples: int
) -> list[Driver]:
    deltas = [d for d in (_deltas(r, pair) for r in rows) if d is not None]
    found = []
    for key in sorted(set().union(*deltas)) if deltas else []:
        values = [d.get(key, 0.0) for d in deltas]
        found.append(
            Driver(
                variant=pair[0],
                against=pair[1],
                scope=scope,
                group=group,
                key=key,
                label=KEYS.get(key, key),
                mean_delta=_round(sum(values) / len(values)),
                ci95=mean_ci(values, seed, resamples),
                n=len(values),
            )
        )
    return sorted(found, key=lambda d: (-abs(d.mean_delta), d.key))


def _verdicts(row: ScoredRow, variants: Sequence[str], baseline: str | None) -> list[Pair]:
    scored = [v for v in variants if v in row.scores]
    if baseline is not None:
        return [(v, baseline) for v in scored if v != baseline and baseline in row.scores]
    ranked = sorted(scored, key=lambda v: (-row.scores[v], scored.index(v)))
    return [(ranked[0], ranked[1])] if len(ranked) > 1 else []


def uncertain(
    rows: Sequence[ScoredRow],
    variants: Sequence[str],
    baseline: str | None,
    top: int = UNCERTAIN_ROWS,
) -> list[UncertainRow]:
    """The rows whose verdict is least certain: the two scores fewest sample spreads apart
    (without a baseline the verdict is the best variant against the runner-up; with one, each
    variant against it, the least certain counted)."""
    found: list[UncertainRow] = []
    for r in rows:
        candidates = []
        for variant, against in _verdicts(r, variants, baseline):
            diff = r.scores[variant] - r.scores[against]
            spread = math.hypot(r.stds.get(variant, 0.0), r.stds.get(against, 0.0))
            margin = abs(diff) / max(spread, SPREAD_FLOOR)
            candidates.append((margin, abs(diff), variant, against, diff, spread))
        if not candidates:
            continue
        margin, _, variant, against, diff, spread = min(candidates)
        found.append(
            UncertainRow(
                row=r.row,
                id=r.id,
                user_id=r.user_id,
                segment=r.segment,
                prompt=_excerpt(r.prompt),
                variant=variant,
                against=against,
                scores={v: round(s, 4) for v, s in r.scores.items()},
                diff=round(diff, 4),
                spread=round(spread, 4),
                margin=round(margin, 4),
            )
        )
    found.sort(key=lambda u: (u.margin, abs(u.diff), u.row))
    return found[:top]


def _excerpt(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= PROMPT_EXCERPT else flat[: PROMPT_EXCERPT - 1] + "…"


@dataclass(frozen=True)
class Setup:
    """How the rows were compared (everything `summarise` reports besides the statistics)."""

    variants: Sequence[str]
    baseline: str | None = None
    segment: str | None = None  # what segments are: an attribute, "prototype", or none
    scorer: str = ""
    seed: int = 0
    resamples: int = 2000


def summarise(
    setup: Setup,
    rows: Sequence[ScoredRow],
    failures: Sequence[RowFailure] = (),
    elapsed_s: float = 0.0,
) -> Comparison:
    """The whole report of scored rows (and the rows that failed)."""
    pairs = pairs_of(setup.variants, setup.baseline)
    seed, resamples = setup.seed, setup.resamples
    return Comparison(
        variants=list(setup.variants),
        baseline=setup.baseline,
        segment=setup.segment,
        scorer=setup.scorer,
        rows=len(rows) + len(failures),
        compared=sum(len(r.scores) >= 2 for r in rows),
        missing={v: sum(v not in r.scores for r in rows) for v in setup.variants},
        failed=len(failures),
        failures=list(failures[:LISTED_FAILURES]),
        pairs=pair_stats(
            rows, pairs, segmented=setup.segment is not None, seed=seed, resamples=resamples
        ),
        drivers=drivers(
            rows,
            pairs,
            headline=setup.baseline or EVERY_OTHER,
            segmented=setup.segment is not None,
            seed=seed,
            resamples=resamples,
        ),
        uncertain=uncertain(rows, setup.variants, setup.baseline),
        seed=seed,
        resamples=resamples,
        elapsed_s=round(elapsed_s, 3),
    )
