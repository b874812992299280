"""Inline SVG bar charts with interval whiskers, for a report that needs no script or font.

Bars grow from a reference value (0.5 for a win rate, 0 for a difference), so what is better
and what is worse read left and right of one line. Every text is escaped here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

ROW = 20  # px per bar
LABEL = 230  # px for the labels left of the plot
PLOT = 380
NOTE = 230  # px for the numbers right of the plot
AXIS = 26


@dataclass(frozen=True)
class Bar:
    label: str
    value: float | None = None  # None: a heading row, no bar
    interval: tuple[float, float] | None = None
    colour: str = "#4c72b0"
    note: str = ""  # the numbers, right of the plot


def bar_chart(
    bars: Sequence[Bar], *, domain: tuple[float, float], reference: float, title: str
) -> str:
    """A horizontal bar per item, from `reference` to its value, with its interval."""
    lo, hi = domain
    span = (hi - lo) or 1.0

    def x(value: float) -> float:
        return LABEL + PLOT * (min(max(value, lo), hi) - lo) / span

    height = ROW * len(bars) + AXIS + 8
    width = LABEL + PLOT + NOTE
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" '
        'font-size="12">',
        f"<title>{escape(title)}</title>",
    ]
    for i, bar in enumerate(bars):
        parts += _bar(bar, 4 + i * ROW, x(reference), x)
    top, bottom = 4, 4 + ROW * len(bars)
    ref = x(reference)
    parts.append(
        f'<line x1="{ref:.1f}" y1="{top}" x2="{ref:.1f}" y2="{bottom}" stroke="#555" '
        'stroke-dasharray="3,3"/>'
    )
    parts += _axis(lo, hi, bottom, x)
    parts.append("</svg>")
    return "\n".join(parts)


def _bar(bar: Bar, y: float, origin: float, x: Callable[[float], float]) -> list[str]:
    mid = y + ROW / 2
    label = escape(bar.label if len(bar.label) <= 34 else bar.label[:33] + "…")
    if bar.value is None:
        return [f'<text x="4" y="{mid + 4:.1f}" font-weight="bold">{label}</text>']
    end = x(bar.value)
    left, width = min(origin, end), abs(end - origin)
    out = [
        f'<text x="{LABEL - 6}" y="{mid + 4:.1f}" text-anchor="end">{label}</text>',
        f'<rect x="{left:.1f}" y="{y + 3:.1f}" width="{max(width, 1):.1f}" height="{ROW - 6}" '
        f'fill="{escape(bar.colour)}" fill-opacity="0.8"/>',
        f'<text x="{LABEL + PLOT + 6}" y="{mid + 4:.1f}">{escape(bar.note)}</text>',
    ]
    if bar.interval is not None:
        a, b = x(bar.interval[0]), x(bar.interval[1])
        out.append(_line(a, mid, b, mid))
        out += [_line(at, mid - 4, at, mid + 4) for at in (a, b)]  # the whisker's caps
    return out


def _axis(lo: float, hi: float, y: float, x: Callable[[float], float]) -> list[str]:
    out = [f'<line x1="{LABEL}" y1="{y}" x2="{LABEL + PLOT}" y2="{y}" stroke="#999"/>']
    for step in range(5):
        value = lo + (hi - lo) * step / 4
        at = x(value)
        out += [
            f'<line x1="{at:.1f}" y1="{y}" x2="{at:.1f}" y2="{y + 4}" stroke="#999"/>',
            f'<text x="{at:.1f}" y="{y + 16}" text-anchor="middle" fill="#555">{value:.3g}</text>',
        ]
    return out


def _line(x1: float, y1: float, x2: float, y2: float) -> str:
    return f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="#222"/>'
