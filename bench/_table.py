"""How the bench scripts print their figures: a markdown table, then the JSON on request."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any


def print_figures(
    rows: Sequence[tuple[str, float, str]],
    result: dict[str, Any],
    *,
    as_json: bool,
    digits: int,
    measure: str = "measure",
) -> None:
    """Rows of (measure, value, target); `result` last on stdout as one JSON object."""
    print(f"| {measure} | value | target |\n| --- | ---: | --- |")
    for name, value, target in rows:
        print(f"| {name} | {value:.{digits}f} | {target} |")
    if as_json:
        print(json.dumps(result))
