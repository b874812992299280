"""Calibrate how far to trust a short history, on the training users themselves.

The rows are split the way test rows differ from a user's history (`held_out`): where rows
name a debate (`topic`), whole debates are held out, as the test split holds out debates; else
`val` rows (new prompts) are held out from `train` rows. Experts are fitted on the rest only;
then every held-out row is scored through the production inference (`usermodel.infer`) twice:
with a history of k of that user's other rows (k drawn from `HISTORY_SIZES`) and with none.
Among the calibrations (population prior, weight of the user's own history model, posterior
temperature) under which a history of any size never costs more than `TOLERANCE` of held-out
accuracy against no history, in any dataset, the one with the best mean of the datasets'
accuracies wins. So a population whose histories do not separate its users (real crowds mostly
agree) keeps the population's scores, and one whose users differ is personalised: how far a
history moves the score is learnt where it can be measured. Test rows are never read.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from service.backends.embedded.feedback import emphasis
from service.backends.embedded.params import Calibration, EmbeddedParams, Expert
from service.backends.embedded.usermodel import ExpertBank, history_evidence, infer
from service.backends.embedded.views import TextViews
from service.offline.embedded_training import blending

HISTORY_SIZES = (1, 3, 8)
# Each population's trust is picked per band of history sizes, each band starting at its
# fewest pairs: one pair alone, then three or more. Picking a trust per measured size was
# tried on 2 December: a band of one size (~140 held-out rows) picked noise (see the README).
TRUST_BANDS = (1, 3)
TOLERANCE = 0.005  # a history may cost at most this much accuracy, per dataset and size
HELD_TOPICS = 1 / 3  # of a dataset's debates, held out to calibrate on (at least one)
MAX_ROWS_PER_DATASET = 1500
FEEDBACK_GAINS = (0.0, 0.5, 1.0, 2.0, 4.0)
GRID: dict[str, tuple[float, ...]] = {
    "population_bias": (-2.0, 0.0, 2.0, 4.0, 6.0, 8.0),
    "individual_bias": (-4.0, -2.0, 0.0),
    "temperature": (0.25, 0.5, 1.0, 2.0, 4.0),
}


def _views(corpus: Any, texts: npt.NDArray[np.int64]) -> TextViews:
    return TextViews(
        style=corpus.style[texts],
        content=corpus.content[texts],
        wording=sp.csr_matrix(corpus.wording[texts]),
    )


def held_out(corpus: Any, seed: int = 0) -> npt.NDArray[np.bool_]:
    """Per row: held out to calibrate on (True) or fitted on. Rows that name a debate
    (`topic`) are held out by whole debates, a third of each dataset's; the others by split."""
    rng = np.random.default_rng(seed)
    topics = [row.extras.get("topic") for row in corpus.rows]
    held = np.array([row.split == "val" for row in corpus.rows])
    for dataset in dict.fromkeys(corpus.dataset):
        mine = [i for i, d in enumerate(corpus.dataset) if d == dataset]
        named = sorted({str(topics[i]) for i in mine if topics[i] is not None})
        if len(named) < 2:
            continue
        chosen = set(rng.permutation(named)[: max(1, round(HELD_TOPICS * len(named)))])
        for i in mine:
            held[i] = str(topics[i]) in chosen
    return held


def calibrate(
    corpus: Any,
    fit: Callable[
        [Sequence[tuple[str, str, npt.NDArray[np.int64]]]],
        tuple[tuple[Expert, ...], tuple[Expert, ...]],
    ],
    groups_for: Callable[[npt.NDArray[np.bool_]], Sequence[tuple[str, str, npt.NDArray[np.int64]]]],
    base: EmbeddedParams,
    *,
    seed: int = 0,
) -> tuple[Calibration, dict[str, Any]]:
    """The safe calibration with the best held-out accuracy, and a report of the search.

    `groups_for(rows)` gives the experts' row groups over those rows only (users clustered
    again without the held-out rows, so no expert has seen them)."""
    held = held_out(corpus, seed)
    groups = [g for g in groups_for(~held) if g[2].size >= 2]
    experts, identifiers = fit(groups)
    blends, blend_report = blending.choose(corpus, experts, _held_members(corpus, groups, held))
    experts = blending.apply(experts, blends)
    bank = ExpertBank(replace(base, experts=experts, identifiers=identifiers))
    pools: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, row in enumerate(corpus.rows):
        if not held[i]:
            pools[(corpus.dataset[i], row.user_id)].append(i)
    rng = np.random.default_rng(seed)
    candidates: dict[str, list[int]] = defaultdict(list)
    for i, row in enumerate(corpus.rows):
        if held[i] and pools[(corpus.dataset[i], row.user_id)]:
            candidates[corpus.dataset[i]].append(i)
    if not candidates:
        return base.calibration, {"skipped": "no held-out rows with a history"}
    val = [
        int(i) for rows in candidates.values() for i in rng.permutation(rows)[:MAX_ROWS_PER_DATASET]
    ]
    cases: list[_Case] = []
    for n, i in enumerate(val):
        pool = pools[(corpus.dataset[i], corpus.rows[i].user_id)]
        size = HISTORY_SIZES[n % len(HISTORY_SIZES)]
        k = min(size, len(pool))
        hist = rng.choice(pool, size=k, replace=False)
        pair = np.r_[corpus.chosen[i], corpus.rejected[i]]
        for kk, texts in ((k, np.r_[corpus.chosen[hist], corpus.rejected[hist], pair]), (0, pair)):
            views = _views(corpus, texts.astype(np.int64))
            scores = bank.view_scores(views)
            evidence = history_evidence(bank, views, scores, kk)
            reasons = [corpus.rows[h].feedback for h in hist] if kk else []
            cases.append(
                _Case(corpus.dataset[i], size, kk, views, scores, evidence, emphasis(reasons))
            )
    results = [
        _judge(bank, cases, values, _with(base.calibration, values))
        for values in itertools.product(*GRID.values())
    ]
    default = tuple(getattr(base.calibration, name) for name in GRID)
    safe = [r for r in results if r.worst_cost <= TOLERANCE]
    # Among the best, prefer the default, so noise alone does not move the calibration; with
    # no safe calibration, the one whose history costs least.
    pool_ = safe or [min(results, key=lambda r: r.worst_cost)]
    best_score = max(r.score for r in pool_)
    best = next((r for r in pool_ if r.score == best_score and r.values == default), None) or next(
        r for r in pool_ if r.score == best_score
    )
    # Then each dataset's own trust in a history, per band of history sizes (`TRUST_BANDS`),
    # under the same rule on its own rows of those sizes. A band may take its own population
    # prior too: only the global one sets the no-history score, so every band is held to
    # that score, the one served (`served`), not to its own candidate's.
    served = {key: best.by_size[key] + cost for key, cost in best.costs.items()}
    own = {
        (d, least): _pick(results, d, sizes, served)
        for d in best.with_history
        for least, sizes in _bands(HISTORY_SIZES)
    }
    chosen = replace(
        _with(base.calibration, best.values),
        by_population=tuple(
            (d, least, r.values[0], r.values[1], r.values[2]) for (d, least), r in own.items()
        ),
    )
    mixed = _judge(bank, cases, best.values, chosen)
    # Then how much the criteria named in users' reasons gain, under the same rule.
    gains = [_judge(bank, cases, (g,), replace(chosen, feedback_gain=g)) for g in FEEDBACK_GAINS]
    safe_gains = [g for g in gains if g.worst_cost <= max(TOLERANCE, mixed.worst_cost)]
    gain = max(safe_gains or gains[:1], key=lambda g: (g.score, -g.values[0]))
    report = {
        "held_out_rows": {d: len(rows) for d, rows in candidates.items()},
        "cases": len(val),
        "history_sizes": list(HISTORY_SIZES),
        "tolerance": TOLERANCE,
        "candidates": len(results),
        "safe_candidates": len(safe),
        "best": dict(zip(GRID, best.values, strict=True)),
        "best_worst_cost": round(best.worst_cost, 4),
        "best_accuracy": {d: round(a, 4) for d, a in best.with_history.items()},
        "best_accuracy_no_history": {d: round(a, 4) for d, a in best.without.items()},
        "best_cost_by_history_size": {f"{d}@{k}": round(c, 4) for (d, k), c in best.costs.items()},
        "by_population": {
            f"{d}@{least}+": dict(zip(GRID, r.values, strict=True)) for (d, least), r in own.items()
        },
        "by_population_accuracy": {d: round(a, 4) for d, a in mixed.with_history.items()},
        "by_population_cost_by_history_size": {
            f"{d}@{k}": round(c, 4) for (d, k), c in mixed.costs.items()
        },
        "blends": {key: list(choice) for key, choice in blends.items()},
        "blend_search": blend_report,
        "feedback_gain": gain.values[0],
        "accuracy_by_feedback_gain": {
            str(g.values[0]): {d: round(a, 4) for d, a in g.with_history.items()} for g in gains
        },
    }
    return replace(chosen, feedback_gain=gain.values[0]), report


def _held_members(
    corpus: Any,
    groups: Sequence[tuple[str, str, npt.NDArray[np.int64]]],
    held: npt.NDArray[np.bool_],
) -> dict[str, npt.NDArray[np.int64]]:
    """Per expert label: the held-out rows of the users whose other rows it learnt from."""
    owner: dict[tuple[str, str], str] = {}
    for label, kind, index in groups:
        if kind != "population":  # a population learnt from everyone: nobody's own expert
            for i in index:
                owner[(corpus.dataset[i], corpus.rows[i].user_id)] = label
    members: dict[str, list[int]] = defaultdict(list)
    for i in np.flatnonzero(held):
        mine = owner.get((corpus.dataset[i], corpus.rows[i].user_id))
        if mine is not None:
            members[mine].append(int(i))
    return {label: np.array(ix, np.int64) for label, ix in members.items()}


def _bands(sizes: Sequence[int]) -> list[tuple[int, tuple[int, ...]]]:
    """(fewest pairs, the measured sizes it covers) per band of `TRUST_BANDS`."""
    edges = [*TRUST_BANDS, max(sizes) + 1]
    bands = [(lo, tuple(s for s in sizes if lo <= s < hi)) for lo, hi in itertools.pairwise(edges)]
    return [(lo, covered) for lo, covered in bands if covered]


def _pick(
    results: Sequence[_Result],
    dataset: str,
    sizes: Sequence[int],
    served: dict[tuple[str, int], float],
) -> _Result:
    """The setting with the best accuracy on `dataset`'s rows of these history sizes among
    those under which a history of none of them costs it more than TOLERANCE against the
    `served` no-history accuracy of the same rows; with none, the one whose worst size costs
    least."""

    def worst(r: _Result) -> float:
        return max(
            served[(d, k)] - a for (d, k), a in r.by_size.items() if d == dataset and k in sizes
        )

    def accuracy(r: _Result) -> float:
        return float(np.mean([a for (d, k), a in r.by_size.items() if d == dataset and k in sizes]))

    safe = [r for r in results if worst(r) <= TOLERANCE]
    if safe:
        return max(safe, key=accuracy)
    return min(results, key=lambda r: (worst(r), -accuracy(r)))


@dataclass(frozen=True)
class _Case:
    dataset: str
    size: int  # the history size this held-out row was drawn for (at most its user's rows)
    k: int  # the history given, or 0 for its no-history twin
    views: TextViews
    scores: dict[str, Any]
    evidence: Any
    emphasis: npt.NDArray[np.float64]  # what the history's reasons name


@dataclass(frozen=True)
class _Result:
    values: tuple[float, ...]
    with_history: dict[str, float]  # dataset -> held-out accuracy with a history
    without: dict[str, float]  # dataset -> held-out accuracy with none
    costs: dict[tuple[str, int], float]  # (dataset, size) -> accuracy a history of it costs
    by_size: dict[tuple[str, int], float]  # (dataset, size) -> accuracy with a history of it

    @property
    def score(self) -> float:
        return float(np.mean(list(self.with_history.values())))

    @property
    def worst_cost(self) -> float:
        """The most accuracy a history of any one size costs in any dataset (negative: it
        helps), each measured on the same rows with and without it."""
        return max(self.costs.values())


def _judge(
    bank: ExpertBank, cases: list[_Case], values: tuple[float, ...], calibration: Calibration
) -> _Result:
    tuned = bank.with_calibration(calibration)
    right: dict[tuple[str, int, bool], list[int]] = defaultdict(list)
    for case in cases:
        counts = np.ones((1, case.k), np.int64)
        model = infer(tuned, case.views, case.scores, case.evidence, counts, None, case.emphasis)
        utility = model.parts[0].sum(axis=0)
        won = int(utility[2 * case.k] > utility[2 * case.k + 1])
        right[(case.dataset, case.size, case.k > 0)].append(won)
    datasets = sorted({d for d, _, _ in right})
    sizes = sorted({(d, s) for d, s, given in right if given})

    def mean(given: bool, dataset: str) -> float:
        hits = [x for (d, _, g), v in right.items() if d == dataset and g == given for x in v]
        return float(np.mean(hits or [0]))

    return _Result(
        values,
        {d: mean(True, d) for d in datasets},
        {d: mean(False, d) for d in datasets},
        {
            (d, s): float(np.mean(right[(d, s, False)]) - np.mean(right[(d, s, True)]))
            for d, s in sizes
        },
        {(d, s): float(np.mean(right[(d, s, True)])) for d, s in sizes},
    )


def _with(calibration: Calibration, values: tuple[float, ...]) -> Calibration:
    population_bias, individual_bias, temperature = values
    return replace(
        calibration,
        population_bias=population_bias,
        individual_bias=individual_bias,
        temperature=temperature,
    )
