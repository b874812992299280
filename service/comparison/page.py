"""compare.html: the comparison as one self-contained page (inline CSS and SVG, no script).

Every string that came from the rows (variant names, users, segments, prompts) is escaped with
`html.escape`, so a row cannot inject markup into the page a product team opens.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from html import escape

from service.comparison.highlights import headline, interval, leaders, pct, signed, top_drivers
from service.comparison.results import EVERY_OTHER, Comparison, PairStat
from service.comparison.svg import Bar, bar_chart

PALETTE = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c")
TOP_DRIVERS = 8

_STYLE = """
body { font-family: sans-serif; margin: 2em; color: #222; max-width: 1100px; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: left; font-size: 13px; }
th { background: #f3f3f3; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.note { color: #555; font-size: 13px; }
"""


def _against(name: str) -> str:
    return "every other variant" if name == EVERY_OTHER else name


def _colours(comparison: Comparison) -> dict[str, str]:
    return {v: PALETTE[i % len(PALETTE)] for i, v in enumerate(comparison.variants)}


def _win_chart(comparison: Comparison, scopes: Iterable[str], title: str) -> str:
    against, colours = headline(comparison), _colours(comparison)
    bars: list[Bar] = []
    group = None
    for s in comparison.pairs:
        if s.scope not in scopes or s.against != against:
            continue
        if (s.scope, s.group) != group:
            group = (s.scope, s.group)
            name = "overall" if s.scope == "overall" else f"{s.scope} {s.group}"
            bars.append(Bar(name))
        if s.win_rate is None:
            continue
        note = f"{pct(s.win_rate)} {interval(s.win_rate_ci95)} n={s.n}"
        bars.append(Bar(s.variant, s.win_rate, s.win_rate_ci95, colours[s.variant], note))
    return bar_chart(bars, domain=(0.0, 1.0), reference=0.5, title=title)


def _driver_chart(comparison: Comparison, stat: PairStat | tuple[str, str]) -> str:
    found = top_drivers(comparison, stat, TOP_DRIVERS)
    if not found:
        return '<p class="note">No evaluation chains to attribute the difference to.</p>'
    reach = nice(max(max([abs(d.mean_delta), *(abs(v) for v in d.ci95 or ())]) for d in found))
    bars = [
        Bar(
            d.label,
            d.mean_delta,
            d.ci95,
            "#55a868" if d.mean_delta >= 0 else "#c44e52",
            f"{signed(d.mean_delta)} {interval(d.ci95, 'signed')}",
        )
        for d in found
    ]
    variant, against = found[0].variant, found[0].against
    title = f"What separates {variant} from {_against(against)}"
    return bar_chart(bars, domain=(-reach, reach), reference=0.0, title=title)


def nice(value: float) -> float:
    """The smallest of 1, 2, 2.5 or 5 times a power of ten that reaches `value` (an axis end)."""
    if value <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    return next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= value * (1 - 1e-12))


def _table(header: Sequence[str], rows: Iterable[Sequence[str]], numeric: set[int]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    head = f"<tr>{head}</tr>" if header else ""
    body = []
    for row in rows:
        cells = "".join(
            f'<td class="num">{escape(c)}</td>' if i in numeric else f"<td>{escape(c)}</td>"
            for i, c in enumerate(row)
        )
        body.append(f"<tr>{cells}</tr>")
    return f"<table>{head}{''.join(body)}</table>"


def _pair_row(s: PairStat) -> list[str]:
    return [
        s.scope,
        s.group,
        s.variant,
        _against(s.against),
        str(s.n),
        pct(s.win_rate),
        interval(s.win_rate_ci95),
        signed(s.mean_diff),
        interval(s.mean_diff_ci95, "signed"),
    ]


def _matrix(comparison: Comparison) -> str:
    """Overall head to head: each row variant's win rate against each column variant."""
    cells = {
        (s.variant, s.against): s
        for s in comparison.pairs
        if s.scope == "overall" and s.against != EVERY_OTHER
    }
    rows = []
    for v in comparison.variants:
        row = [v]
        for w in comparison.variants:
            stat = cells.get((v, w))
            row.append(
                "" if stat is None else f"{pct(stat.win_rate)} {interval(stat.win_rate_ci95)}"
            )
        rows.append(row)
    return _table(["win rate of ↓ against →", *comparison.variants], rows, set())


def _summary(c: Comparison) -> str:
    missing = ", ".join(f"{v}: {n}" for v, n in c.missing.items() if n) or "none"
    facts = [
        ("scored by", c.scorer),
        ("rows", f"{c.rows} given, {c.compared} compared, {c.failed} failed"),
        ("variants", ", ".join(c.variants)),
        ("compared with", c.baseline or "each other"),
        ("segments", c.segment or "none"),
        ("rows missing a variant", missing),
        (
            "intervals",
            f"95% percentile bootstrap over rows, {c.resamples} resamples, seed {c.seed}",
        ),
    ]
    return _table([], facts, set())


def render(c: Comparison) -> str:
    """The whole page."""
    against = headline(c)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>pgenrm comparison</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>A/B comparison</h1>",
        _summary(c),
        f"<h2>Win rate against {escape(_against(against))}</h2>",
        '<p class="note">Ties count half; whiskers are 95% bootstrap intervals; the dashed line '
        "is a coin flip.</p>",
        _win_chart(c, ("overall", "user"), "Win rates overall and per user"),
    ]
    if c.segment is not None:
        parts += [
            f"<h3>Per segment ({escape(c.segment)})</h3>",
            _win_chart(c, ("segment",), "Win rates per segment"),
        ]
    if c.baseline is None:
        parts += ["<h2>Head to head (overall)</h2>", _matrix(c)]
    parts.append("<h2>What drives the differences</h2>")
    parts.append(
        '<p class="note">Mean over rows of the weighted criterion score (weight × score / 100 '
        "in each row's summary chain) of the variant minus the other's: overall for each "
        "variant, then for the variant that leads each user and segment.</p>"
    )
    for v in c.variants:
        if v != against:
            parts += [f"<h3>{escape(v)} against {escape(_against(against))}</h3>"]
            parts.append(_driver_chart(c, (v, against)))
    for lead in leaders(c):
        parts.append(
            f"<h3>{escape(lead.scope)} {escape(lead.group)}: {escape(lead.variant)} leads "
            f"({pct(lead.win_rate)} {interval(lead.win_rate_ci95)})</h3>"
        )
        parts.append(_driver_chart(c, lead))
    parts += [
        "<h2>Least certain rows</h2>",
        '<p class="note">Smallest margin: |score difference| / sqrt(std² + std²) of the two '
        "scores' samples.</p>",
        _table(
            ["row", "id", "user", "segment", "prompt", "verdict", "scores", "diff", "margin"],
            (
                [
                    str(u.row),
                    u.id or "",
                    u.user_id,
                    u.segment or "",
                    u.prompt,
                    f"{u.variant} vs {u.against}",
                    " · ".join(f"{v} {s:.2f}" for v, s in u.scores.items()),
                    signed(u.diff),
                    f"{u.margin:.2f}",
                ]
                for u in c.uncertain
            ),
            {0, 7, 8},
        ),
        "<details><summary>Every pair, overall, per user and per segment</summary>",
        _table(
            [
                "scope",
                "group",
                "variant",
                "against",
                "n",
                "win rate",
                "95% CI",
                "mean diff",
                "95% CI",
            ],
            (_pair_row(s) for s in c.pairs),
            {4, 5, 6, 7, 8},
        ),
        "</details>",
    ]
    if c.failures:
        parts += [
            f"<h2>Failed rows ({c.failed})</h2>",
            _table(
                ["row", "id", "user", "why"],
                ([str(f.row), f.id or "", f.user_id, f.reason] for f in c.failures),
                {0},
            ),
        ]
    parts.append("</body></html>")
    return "\n".join(parts)
