"""A comparison's files: compare.json (the API's answer), compare.csv and compare.html."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from service.comparison.page import render
from service.comparison.results import Comparison

CSV_HEADER = (
    "variant",
    "against",
    "scope",
    "group",
    "n",
    "win_rate",
    "win_rate_low",
    "win_rate_high",
    "mean_diff",
    "mean_diff_low",
    "mean_diff_high",
)


def _cell(value: float | None) -> str:
    return "" if value is None else f"{value:.6g}"


def to_csv(comparison: Comparison) -> str:
    """One line per (variant, against, scope, group); an empty cell where there is no value."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for s in comparison.pairs:
        win = s.win_rate_ci95 or (None, None)
        diff = s.mean_diff_ci95 or (None, None)
        values = (s.win_rate, *win, s.mean_diff, *diff)
        writer.writerow([s.variant, s.against, s.scope, s.group, s.n, *map(_cell, values)])
    return out.getvalue()


def write(comparison: Comparison, out: Path) -> dict[str, Path]:
    """Write the three files into `out` (made if missing); their paths by kind."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {kind: out / f"compare.{kind}" for kind in ("json", "csv", "html")}
    paths["json"].write_text(comparison.model_dump_json(indent=2) + "\n", encoding="utf-8")
    paths["csv"].write_text(to_csv(comparison), encoding="utf-8")
    paths["html"].write_text(render(comparison), encoding="utf-8")
    return paths
