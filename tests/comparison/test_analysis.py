"""The comparison's statistics on hand-made rows: win rates, intervals, drivers, uncertainty."""

from __future__ import annotations

import csv
import io

import pytest

from service.comparison.analysis import (
    ScoredRow,
    Setup,
    mean_ci,
    pair_stats,
    pairs_of,
    summarise,
    uncertain,
)
from service.comparison.page import render
from service.comparison.report import CSV_HEADER, to_csv
from service.comparison.results import EVERY_OTHER, Comparison, PairStat, RowFailure


def row(
    i: int,
    user: str,
    scores: dict[str, float],
    *,
    stds: dict[str, float] | None = None,
    segment: str | None = None,
) -> ScoredRow:
    # Weighted criterion scores that add up to each score: length carries 60%, warmth 40%.
    weighted = {v: {"length": 0.6 * s, "warmth": 0.4 * s} for v, s in scores.items()}
    return ScoredRow(
        row=i,
        user_id=user,
        prompt=f"prompt {i}",
        scores=scores,
        stds=stds or {},
        weighted=weighted,
        segment=segment,
    )


def stat(stats: list[PairStat], variant: str, against: str) -> PairStat:
    """The pair's overall statistic."""
    [found] = [s for s in stats if (s.variant, s.against, s.scope) == (variant, against, "overall")]
    return found


# A beats B twice, ties once, loses once: 2.5 wins of 4.
ROWS = [
    row(0, "u1", {"A": 7.0, "B": 5.0}),
    row(1, "u1", {"A": 6.0, "B": 5.0}),
    row(2, "u2", {"A": 5.0, "B": 5.0}),
    row(3, "u2", {"A": 4.0, "B": 6.0}),
]


def test_ties_count_half_and_the_two_directions_mirror() -> None:
    stats = pair_stats(ROWS, pairs_of(["A", "B"], None))
    a, b = stat(stats, "A", "B"), stat(stats, "B", "A")
    assert a.n == b.n == 4
    assert a.win_rate == pytest.approx(0.625) and b.win_rate == pytest.approx(0.375)
    assert a.mean_diff == pytest.approx(0.25) and b.mean_diff == pytest.approx(-0.25)
    # against every other variant, with two variants, is the one pair
    assert stat(stats, "A", EVERY_OTHER).win_rate == a.win_rate


def test_intervals_contain_the_mean_and_repeat_with_the_seed() -> None:
    stats = pair_stats(ROWS, [("A", "B")], seed=3)
    a = stat(stats, "A", "B")
    assert a.win_rate_ci95 is not None and a.mean_diff_ci95 is not None
    assert a.win_rate is not None and a.mean_diff is not None
    assert a.win_rate_ci95[0] <= a.win_rate <= a.win_rate_ci95[1]
    assert a.mean_diff_ci95[0] <= a.mean_diff <= a.mean_diff_ci95[1]
    assert a.win_rate_ci95[0] < a.win_rate_ci95[1]
    assert pair_stats(ROWS, [("A", "B")], seed=3) == stats


def test_too_few_rows_have_no_interval_and_identical_values_a_zero_width_one() -> None:
    assert mean_ci([]) is None and mean_ci([0.7]) is None
    assert mean_ci([1.0, 1.0, 1.0]) == (1.0, 1.0)
    [one] = [s for s in pair_stats(ROWS[:1], [("A", "B")]) if s.scope == "overall"]
    assert one.n == 1 and one.win_rate == 1.0 and one.win_rate_ci95 is None
    assert one.mean_diff_ci95 is None
    [none] = [s for s in pair_stats(ROWS, [("A", "C")]) if s.scope == "overall"]
    assert none.n == 0 and none.win_rate is None and none.mean_diff is None


def test_groups_per_user_and_segment() -> None:
    rows = [
        row(0, "u1", {"A": 7.0, "B": 5.0}, segment="pro"),
        row(1, "u2", {"A": 4.0, "B": 6.0}, segment="free"),
        row(2, "u3", {"A": 4.0, "B": 6.0}),
    ]
    stats = pair_stats(rows, [("A", "B")], segmented=True)
    groups = {(s.scope, s.group): s.win_rate for s in stats}
    assert groups == {
        ("overall", "all"): pytest.approx(1 / 3, abs=1e-4),  # reported to 4 digits
        ("user", "u1"): 1.0,
        ("user", "u2"): 0.0,
        ("user", "u3"): 0.0,
        ("segment", "(none)"): 0.0,
        ("segment", "free"): 0.0,
        ("segment", "pro"): 1.0,
    }
    assert not any(s.scope == "segment" for s in pair_stats(rows, [("A", "B")]))


def test_a_row_missing_a_variant_counts_only_where_both_are_scored() -> None:
    rows = [*ROWS, row(4, "u3", {"A": 9.0, "C": 2.0})]
    stats = pair_stats(rows, pairs_of(["A", "B", "C"], None))
    assert stat(stats, "A", "B").n == 4
    assert stat(stats, "A", "C").n == 1
    # against every other: per row the mean over the variants it has
    every = stat(stats, "A", EVERY_OTHER)
    assert every.n == 5 and every.win_rate == pytest.approx((2.5 + 1.0) / 5)
    report = summarise(Setup(["A", "B", "C"]), rows)
    assert report.missing == {"A": 0, "B": 1, "C": 4}


def test_a_baseline_compares_every_variant_with_it_only() -> None:
    assert pairs_of(["A", "B", "C"], "B") == [("A", "B"), ("C", "B")]
    assert len(pairs_of(["A", "B", "C"], None)) == 6 + 3


def test_drivers_add_up_to_the_mean_difference_with_its_sign() -> None:
    report = summarise(Setup(["A", "B"], segment="plan"), ROWS)
    found = [d for d in report.drivers if (d.variant, d.against, d.scope) == ("A", "B", "overall")]
    assert [d.key for d in found] == ["length", "warmth"]  # by absolute mean delta
    assert [d.label for d in found] == ["Length", "Warmth"]
    assert found[0].mean_delta == pytest.approx(0.6 * 0.25)
    total = sum(d.mean_delta for d in found)
    assert total == pytest.approx(0.25)  # the mean score difference of A over B
    for d in found:
        assert d.ci95 is not None and d.ci95[0] <= d.mean_delta <= d.ci95[1]
    mirrored = [
        d for d in report.drivers if (d.variant, d.against, d.scope) == ("B", "A", "overall")
    ]
    assert sum(d.mean_delta for d in mirrored) == pytest.approx(-total)
    # per user and segment only against the headline ("*" without a baseline)
    assert {d.against for d in report.drivers if d.scope != "overall"} == {EVERY_OTHER}
    assert {(d.scope, d.group) for d in report.drivers} >= {("user", "u1"), ("segment", "(none)")}


def test_the_least_certain_rows_come_first() -> None:
    rows = [
        row(0, "u1", {"A": 7.0, "B": 5.0, "C": 1.0}, stds={"A": 0.5, "B": 0.5}),
        row(1, "u1", {"A": 6.0, "B": 5.9, "C": 1.0}, stds={"A": 0.5, "B": 0.5}),
        row(2, "u2", {"A": 5.0, "B": 5.0, "C": 1.0}),
        *(row(i, "u3", {"A": 9.0, "B": 1.0, "C": 5.0}) for i in range(3, 20)),
    ]
    found = uncertain(rows, ["A", "B", "C"], None)
    assert len(found) == 10
    assert [u.row for u in found[:3]] == [2, 1, 0]
    assert (found[1].variant, found[1].against) == ("A", "B")  # best against runner-up
    assert found[1].margin == pytest.approx(0.1 / (0.5 * 2**0.5), abs=1e-3)
    # with a baseline, each variant against it; the row's least certain counts
    [first, *_] = uncertain(rows, ["A", "B", "C"], "C")
    assert (first.row, first.variant, first.against) == (0, "B", "C")
    assert first.margin == pytest.approx(4.0 / 0.5)


def test_failures_are_counted_and_listed() -> None:
    failure = RowFailure(row=4, id="x", user_id="nobody", reason="no stored user")
    report = summarise(Setup(["A", "B"]), ROWS, [failure])
    assert (report.rows, report.compared, report.failed) == (5, 4, 1)
    assert report.failures == [failure]


def test_the_csv_has_a_line_per_pair_and_group_and_the_page_escapes_names() -> None:
    rows = [
        row(0, "<b>u1</b>", {"A": 7.0, "<script>x</script>": 5.0}),
        row(1, "u2", {"A": 6.0, "<script>x</script>": 6.5}),
    ]
    report = summarise(Setup(["A", "<script>x</script>"]), rows)
    lines = list(csv.DictReader(io.StringIO(to_csv(report))))
    assert len(lines) == len(report.pairs) and tuple(lines[0]) == CSV_HEADER
    assert lines[0]["win_rate_low"] != "" and lines[-1]["win_rate_low"] == ""  # n=1: none
    page = render(report)
    assert "<svg" in page and "<script" not in page and "&lt;script&gt;" in page
    assert "<b>u1" not in page
    assert Comparison.model_validate_json(report.model_dump_json()) == report
