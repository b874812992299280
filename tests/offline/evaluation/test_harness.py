"""Both orders, ties wrong, per-user macro, bootstrap interval: on fixtures with known answers."""

from __future__ import annotations

import pytest

from service.core.inputs import PreferencePair, ScoringTask
from service.core.rows import parse_row
from service.engine.scaling import Scaling
from service.offline.evaluation.harness import EvalConfig, evaluate
from service.offline.evaluation.scorers import PairScorer, Scored
from service.offline.evaluation.stats import bootstrap_ci
from tests.helpers import synthetic_rows


class Rule(PairScorer):
    """A deterministic judge: `first` (position bias), `tie`, `shorter`, or `fail`."""

    def __init__(self, rule: str) -> None:
        self.rule = rule
        self.histories: list[int] = []

    @property
    def label(self) -> str:
        return self.rule

    async def score(
        self, user_id: str, history: tuple[PreferencePair, ...], task: ScoringTask, scaling: Scaling
    ) -> Scored:
        self.histories.append(len(history))
        a, b = task.candidates
        if self.rule == "fail":
            return Scored(None, 4, 4)
        if self.rule == "first":
            return Scored([2.0, 1.0], 4, 1)
        if self.rule == "tie":
            return Scored([5.0, 5.0], 4, 0)
        if self.rule == "short-of-neighbours":  # 1 parse failure, 2 Pro samples never sent
            return Scored([-len(a), -len(b)], 8, 3, skipped=2)
        return Scored([-len(a), -len(b)], 4, 0)  # shorter wins


def rows() -> list:  # type: ignore[type-arg]
    parsed = [parse_row(r) for r in synthetic_rows(per_user=6, test_per_user=5)]
    return [r for r in parsed if not isinstance(r, str)]


async def test_position_bias_scores_exactly_half() -> None:
    out = await evaluate(rows(), Rule("first"), EvalConfig(history_k=3), progress=False)
    assert out["pairs"] == 10 and out["judgements"] == 20
    assert out["accuracy"] == 0.5 and out["consistent_rate"] == 0.0
    assert out["parse_failure_rate"] == pytest.approx(0.25)


async def test_ties_count_as_wrong() -> None:
    out = await evaluate(rows(), Rule("tie"), EvalConfig(), progress=False)
    assert out["accuracy"] == 0.0 and out["tie_rate"] == 1.0


async def test_failed_scores_count_as_wrong() -> None:
    out = await evaluate(rows(), Rule("fail"), EvalConfig(), progress=False)
    assert out["accuracy"] == 0.0 and out["scoring_failure_rate"] == 1.0
    assert out["parse_failure_rate"] == 1.0


async def test_missing_neighbours_are_not_parse_failures() -> None:
    out = await evaluate(rows(), Rule("short-of-neighbours"), EvalConfig(), progress=False)
    assert out["parse_failure_rate"] == pytest.approx(1 / 6)
    assert out["neighbour_shortfall_rate"] == pytest.approx(2 / 8)


async def test_per_user_and_macro_with_a_known_answer() -> None:
    # "shorter wins" is right for every `terse` pair and wrong for every `verbose` pair.
    scorer = Rule("shorter")
    out = await evaluate(
        rows(), scorer, EvalConfig(history_k=4), progress=False, by="chosen_length"
    )
    assert out["per_user"] == {"terse": 1.0, "verbose": 0.0}
    assert out["accuracy"] == 0.5 and out["macro_accuracy"] == 0.5
    assert out["by"] == {"chosen_longer": 0.0, "chosen_shorter": 1.0}
    assert set(scorer.histories) == {4}  # k pairs drawn from the user's own train/val rows


async def test_limit_and_seed_pick_a_stable_subset() -> None:
    a = await evaluate(rows(), Rule("shorter"), EvalConfig(limit=4, seed=3), progress=False)
    b = await evaluate(rows(), Rule("shorter"), EvalConfig(limit=4, seed=3), progress=False)
    assert a["pairs"] == 4 and a["per_user"] == b["per_user"]


def test_bootstrap_interval() -> None:
    values = [1.0] * 70 + [0.0] * 30
    low, high = bootstrap_ci(values, seed=0)
    assert low < 0.7 < high and low > 0.55 and high < 0.85
    assert (low, high) == bootstrap_ci(values, seed=0)  # seeded
    wide = bootstrap_ci(values[::10], seed=0)
    assert wide[1] - wide[0] > high - low  # fewer pairs, wider interval
    assert bootstrap_ci([1.0, 1.0, 1.0]) == (1.0, 1.0)
