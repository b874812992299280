"""What a comparison reports: one model, the `/v1/compare` answer and the CLI's compare.json.

Pydantic (not dataclasses) so the API documents it and the CLI writes exactly what the API
would have answered for the same rows.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

# `against` for a variant's comparison with every other variant of the same row at once.
EVERY_OTHER = "*"

Interval = tuple[float, float]
Scope = Literal["overall", "user", "segment"]


class _Pair(BaseModel):
    variant: str
    against: str = Field(description='Another variant, or "*": every other variant of the row.')


class _GroupPair(_Pair):
    scope: Scope
    group: str = Field(description='"all" (overall), a user id, or a segment value.')


class PairStat(_GroupPair):
    """One variant against another (or every other), over one group of rows."""

    n: int = Field(description="Rows where both sides were scored.")
    win_rate: float | None = Field(
        description="Share of those rows where `variant` scored higher; ties count half. "
        'Against "*": per row, the mean over the other variants.'
    )
    win_rate_ci95: Interval | None = Field(
        description="95% bootstrap interval over rows (null with fewer than 2 rows)."
    )
    mean_diff: float | None = Field(description="Mean of `variant`'s score minus the other's.")
    mean_diff_ci95: Interval | None


class Driver(_GroupPair):
    """A rubric dimension that the score difference comes from."""

    key: str = Field(description="The criterion's stable key (`length`, `warmth`...).")
    label: str = Field(description="The key's display name.")
    mean_delta: float = Field(
        description="Mean over rows of `variant`'s weighted criterion score minus the other's "
        "(weight x score / 100, as in the summary chain). The deltas of a pair's keys sum to "
        "its mean difference of summary-chain overalls."
    )
    ci95: Interval | None
    n: int


class UncertainRow(_Pair):
    """A row whose verdict is least certain: the smallest `margin`."""

    row: int = Field(description="0-based position of the row in the input.")
    id: str | None
    user_id: str
    segment: str | None
    prompt: str = Field(description="The prompt, cut to 160 characters.")
    scores: dict[str, float] = Field(description="Every scored variant of the row.")
    diff: float = Field(description="`variant`'s score minus `against`'s.")
    spread: float = Field(description="sqrt(std_a^2 + std_b^2) of the two scores' samples.")
    margin: float = Field(
        description="|diff| / spread (spread floored at 0.01): how many sample spreads apart "
        "the two scores are. Without a baseline the verdict is the row's best variant against "
        "its runner-up; with one, each variant against the baseline (the least certain shown)."
    )


class RowFailure(BaseModel):
    row: int
    id: str | None
    user_id: str
    reason: str


class Comparison(BaseModel):
    variants: list[str] = Field(description="Every variant name, in first-seen order.")
    baseline: str | None = Field(description="Variants were compared with it; null: all pairs.")
    segment: str | None = Field(
        description='What the `segment` scope groups by: an attribute, "prototype" (the '
        "user's nearest prototype), or null (no segment scope)."
    )
    scorer: str = Field(description="`backend:model` (or the server) that scored the rows.")
    rows: int = Field(description="Rows given.")
    compared: int = Field(description="Rows with at least two variants scored.")
    missing: dict[str, int] = Field(description="Per variant, rows without it (or unscored).")
    failed: int = Field(description="Rows that could not be scored at all.")
    failures: list[RowFailure] = Field(description="The first 50 failed rows, with why.")
    pairs: list[PairStat]
    drivers: list[Driver] = Field(
        description="Every criterion key by absolute mean delta: for every pair overall, and per "
        'user and segment for each variant against the baseline (or "*").'
    )
    uncertain: list[UncertainRow] = Field(description="The 10 least certain rows.")
    seed: int = Field(description="Seed of the bootstrap resampling.")
    resamples: int
    elapsed_s: float = Field(description="Time spent scoring the rows.")
