"""Write evaluation results: JSON per run, and for a grid a CSV, a markdown table and a plot."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

COLUMNS = (
    "setting",
    "accuracy",
    "ci95_low",
    "ci95_high",
    "macro_accuracy",
    "tie_rate",
    "parse_failure_rate",
    "neighbour_shortfall_rate",
    "pairs",
    "pairs_per_s",
)


def parse_grid(spec: str) -> list[tuple[int, int]]:
    """ "0:0,8:0,8:4" -> [(0, 0), (8, 0), (8, 4)]: (ind, pro) settings."""
    out = []
    for item in spec.split(","):
        ind, sep, pro = item.strip().partition(":")
        if not sep or not ind.isdigit() or not pro.isdigit():
            raise ValueError(f"grid item {item!r} is not IND:PRO (e.g. 8:4)")
        out.append((int(ind), int(pro)))
    if not out:
        raise ValueError("empty grid")
    return out


def setting_name(ind: int, pro: int) -> str:
    return "base (1 chain)" if ind == pro == 0 else f"Ind-{ind},Pro-{pro}"


def write_json(path: Path, result: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, sort_keys=True, default=str))


def _row(name: str, r: dict[str, Any]) -> dict[str, Any]:
    return {
        "setting": name,
        "accuracy": r["accuracy"],
        "ci95_low": r["ci95"][0],
        "ci95_high": r["ci95"][1],
        "macro_accuracy": r["macro_accuracy"],
        "tie_rate": r["tie_rate"],
        "parse_failure_rate": r["parse_failure_rate"],
        "neighbour_shortfall_rate": r.get("neighbour_shortfall_rate", 0.0),
        "pairs": r["pairs"],
        "pairs_per_s": r["pairs_per_s"],
    }


def markdown_table(rows: Sequence[dict[str, Any]]) -> str:
    lines = [
        "| setting | accuracy | 95% CI | macro | ties | parse failures | no neighbour "
        "| pairs | pairs/s |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r['setting']} | {100 * r['accuracy']:.1f} | "
            f"[{100 * r['ci95_low']:.1f}, {100 * r['ci95_high']:.1f}] | "
            f"{100 * r['macro_accuracy']:.1f} | {100 * r['tie_rate']:.1f}% | "
            f"{100 * r['parse_failure_rate']:.1f}% | {100 * r['neighbour_shortfall_rate']:.1f}% "
            f"| {r['pairs']} | {r['pairs_per_s']:.1f} |"
        )
    return "\n".join(lines)


def write_grid(
    out: Path, results: Sequence[tuple[str, dict[str, Any]]], title: str
) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    rows = [_row(name, r) for name, r in results]
    paths = {"csv": out / "grid.csv", "markdown": out / "grid.md", "png": out / "grid.png"}
    with paths["csv"].open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    paths["markdown"].write_text(f"# {title}\n\n{markdown_table(rows)}\n")
    _plot(paths["png"], rows, title)
    return paths


def _plot(path: Path, rows: Sequence[dict[str, Any]], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r["setting"] for r in rows]
    acc = [100 * r["accuracy"] for r in rows]
    low = [100 * (r["accuracy"] - r["ci95_low"]) for r in rows]
    high = [100 * (r["ci95_high"] - r["accuracy"]) for r in rows]
    fig, ax = plt.subplots(figsize=(max(4.0, 1.3 * len(rows)), 3.6), dpi=120)
    ax.errorbar(range(len(rows)), acc, yerr=[low, high], fmt="o-", capsize=4)
    ax.set_xticks(range(len(rows)), names, rotation=20, ha="right")
    ax.set_ylabel("pairwise accuracy, both orders (%)")
    ax.axhline(50, color="grey", linewidth=0.8, linestyle=":")
    finite = [a for a in acc if not math.isnan(a)]
    if finite:
        ax.set_ylim(max(0.0, min(finite) - 10), min(100.0, max(finite) + 10))
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
