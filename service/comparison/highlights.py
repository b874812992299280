"""What a reader of a comparison looks at first, for the page and the CLI alike: the opponent
the report leads with, each group's leading variant and its drivers, and how numbers are written.
"""

from __future__ import annotations

from service.comparison.results import EVERY_OTHER, Comparison, Driver, Interval, PairStat


def pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def signed(value: float | None) -> str:
    return "–" if value is None else f"{value:+.3f}"


def interval(ci: Interval | None, fmt: str = "pct") -> str:
    if ci is None:
        return "[–]"
    show = pct if fmt == "pct" else signed
    return f"[{show(ci[0])}, {show(ci[1])}]"


def headline(comparison: Comparison) -> str:
    """The opponent the page leads with: the baseline, or every other variant."""
    return comparison.baseline if comparison.baseline is not None else EVERY_OTHER


def leaders(comparison: Comparison) -> list[PairStat]:
    """Per user and per segment, the variant with the highest win rate against the headline."""
    against = headline(comparison)
    best: dict[tuple[str, str], PairStat] = {}
    for s in comparison.pairs:
        if s.scope == "overall" or s.against != against or s.win_rate is None:
            continue
        held = best.get((s.scope, s.group))
        if held is None or (held.win_rate or 0.0) < s.win_rate:
            best[(s.scope, s.group)] = s
    return list(best.values())


def top_drivers(c: Comparison, stat: PairStat | tuple[str, str], top: int) -> list[Driver]:
    """A pair's leading drivers in a stat's group (a bare pair: overall)."""
    if isinstance(stat, PairStat):
        pair, scope, group = (stat.variant, stat.against), stat.scope, stat.group
    else:
        pair, scope, group = stat, "overall", "all"
    return [
        d
        for d in c.drivers
        if (d.variant, d.against) == pair and d.scope == scope and d.group == group
    ][:top]
