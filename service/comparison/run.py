"""Score comparison rows, a bounded number at a time, and summarise them.

Each row is one `/v1/score`-equivalent call with its variants as the candidates. The engine
presents candidates in an order of its own, so scores and chains are mapped back by candidate
index, never by position. A row that cannot be scored (an unknown user, every sample failed)
is reported as failed and the others still count.
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

from tqdm import tqdm

from service.comparison.analysis import ScoredRow, Setup, summarise
from service.comparison.results import Comparison, RowFailure
from service.comparison.rows import Attribute, Row
from service.core.chain import EvaluationChain
from service.core.errors import InvalidRequest, ScoringFailed
from service.core.inputs import PreferencePair, ScoringTask, history_fingerprint
from service.engine.explain import weighted_by_key
from service.engine.parsing import ScoredSample
from service.engine.scaling import Scaling
from service.engine.scorer import ScoreOutcome, ScoringEngine

# `segment` names that mean the row's user id when the row has no such attribute
USER_FIELDS = ("user", "user_id")
PROTOTYPE_SEGMENT = "prototype"


class RowError(Exception):
    """This row cannot be scored; the message says why (the run goes on without it)."""


@dataclass(frozen=True)
class Profile:
    """A stored user, as a comparison needs it."""

    history: tuple[PreferencePair, ...]
    attributes: Mapping[str, Attribute]


# user id -> the stored user, or None when there is none
Lookup = Callable[[str], Awaitable[Profile | None]]


def variants_of(rows: Sequence[Row]) -> list[str]:
    """Every variant name, in the order first seen."""
    return list(dict.fromkeys(name for r in rows for name in r.variants))


def user_label(row: Row) -> str:
    """The row's user in reports: its id, else its inline history's fingerprint."""
    if row.user_id:
        return row.user_id
    return f"history-{history_fingerprint(row.history or ())[:8]}"


def segment_of(field: str | None, row: Row, stored: Mapping[str, Attribute]) -> str | None:
    """The row's attribute `field` (the row's own over the stored user's), or its user for
    `user`; None when the row has neither."""
    if field is None:
        return None
    value = {**stored, **row.attributes}.get(field)
    if value is None and field in USER_FIELDS:
        return user_label(row)
    return None if value is None else str(value)


def weighted_by_variant(
    chain: EvaluationChain, order: Sequence[int] | None, names: Sequence[str]
) -> dict[str, dict[str, float]]:
    """Each variant's weighted criterion scores in a chain whose position p shows candidate
    `order[p]` (names[i] is candidate i)."""
    positions = order or range(len(chain.candidates))
    return {names[i]: w for i, w in zip(positions, weighted_by_key(chain), strict=True)}


class RowScorer(ABC):
    """Scores one row: in process (`EngineRowScorer`) or through a server."""

    @property
    @abstractmethod
    def label(self) -> str: ...

    @property
    def prototypes(self) -> bool:
        """Rows carry their user's nearest prototype as their default segment."""
        return False

    async def warm(self, rows: Sequence[Row], progress: bool = False) -> None:  # noqa: B027
        """Precompute what scoring these rows needs (optional)."""

    @abstractmethod
    async def score(self, index: int, row: Row, segment: str | None) -> ScoredRow:
        """Raises RowError when this row cannot be scored."""


def _same(user_id: str) -> str:
    return user_id


class EngineRowScorer(RowScorer):
    """Through a `ScoringEngine`, as `/v1/score` would: the row's inline history or the stored
    user's (its last `max_history` pairs), and on a cold start with prototypes only
    prototype-level samples."""

    def __init__(
        self,
        engine: ScoringEngine,
        scaling: Scaling,
        *,
        lookup: Lookup | None = None,
        engine_user: Callable[[str], str] = _same,
    ) -> None:
        self.engine = engine
        self.scaling = scaling
        self.lookup = lookup
        self.engine_user = engine_user  # the id the engine caches a user under (its tenant's)

    @property
    def label(self) -> str:
        return self.engine.scorer

    @property
    def prototypes(self) -> bool:
        return self.engine.prototypes_version is not None and self.scaling.pro > 0

    async def warm(self, rows: Sequence[Row], progress: bool = False) -> None:
        texts = []
        for row in rows:
            texts += [(row.prompt, text) for text in row.variants.values() if text.strip()]
            for pair in row.history or ():
                texts += [(pair.prompt, pair.chosen), (pair.prompt, pair.rejected)]
        if len(texts) > 1:
            await self.engine.warm(texts, progress)

    async def score(self, index: int, row: Row, segment: str | None) -> ScoredRow:
        history, stored = await self._user(row)
        names = [name for name, text in row.variants.items() if text.strip()]
        if len(names) < 2:
            raise RowError("fewer than two non-empty variants")
        task = ScoringTask(row.context, tuple(row.variants[n] for n in names))
        scaling = self.scaling
        if not history and self.prototypes:
            scaling = Scaling(0, scaling.pro)  # a cold start rests on the prototypes
        try:
            outcome = await self.engine.score(
                self.engine_user(user_label(row)), history, task, scaling
            )
        except ScoringFailed as error:
            raise RowError(error.message) from error
        chain = outcome.trace.outcome if outcome.trace is not None else None
        weighted: dict[str, dict[str, float]] = {}
        if isinstance(chain, ScoredSample) and outcome.trace is not None:
            weighted = weighted_by_variant(chain.chain(), outcome.trace.order, names)
        mine = segment_of(segment, row, stored)
        return ScoredRow(
            row=index,
            id=row.id,
            user_id=user_label(row),
            prompt=row.prompt,
            scores={n: outcome.scores[i] for i, n in enumerate(names)},
            stds={n: outcome.stds[i] for i, n in enumerate(names)},
            weighted=weighted,
            segment=mine if segment is not None else _nearest_prototype(outcome),
        )

    async def _user(self, row: Row) -> tuple[tuple[PreferencePair, ...], Mapping[str, Attribute]]:
        """The history to score with, and the stored user's attributes (for segments)."""
        stored = await self.lookup(row.user_id) if self.lookup and row.user_id else None
        if row.history is not None:
            return row.history, stored.attributes if stored is not None else {}
        if stored is None:
            raise RowError(f"no stored user {row.user_id!r} and no inline `history`")
        return stored.history, stored.attributes


def _nearest_prototype(outcome: ScoreOutcome) -> str | None:
    """The prototype of the first (nearest) neighbour's sample: `prototype-3/neighbour-1`."""
    for sample in outcome.pro.samples:
        return sample.source.split("/", 1)[0]
    return None


async def score_rows(
    rows: Sequence[Row],
    scorer: RowScorer,
    *,
    segment: str | None = None,
    concurrency: int = 4,
    progress: bool = False,
) -> tuple[list[ScoredRow], list[RowFailure]]:
    """Every row, at most `concurrency` at a time, with a progress bar on stderr if asked."""
    gate = asyncio.Semaphore(max(1, concurrency))
    bar = tqdm(total=len(rows), desc="compare", unit="row", disable=not progress, leave=False)

    async def one(index: int, row: Row) -> ScoredRow | RowFailure:
        async with gate:
            try:
                result: ScoredRow | RowFailure = await scorer.score(index, row, segment)
            except RowError as error:
                result = RowFailure(
                    row=index, id=row.id, user_id=user_label(row), reason=str(error)
                )
        bar.update(1)
        return result

    try:
        results = await asyncio.gather(*(one(i, r) for i, r in enumerate(rows)))
    finally:
        bar.close()
    scored = [r for r in results if isinstance(r, ScoredRow)]
    return scored, [r for r in results if isinstance(r, RowFailure)]


async def compare(
    rows: Sequence[Row],
    scorer: RowScorer,
    *,
    baseline: str | None = None,
    segment: str | None = None,
    seed: int = 0,
    resamples: int = 2000,
    concurrency: int = 4,
    progress: bool = False,
) -> Comparison:
    """Score the rows and summarise them; `segment` is an attribute (or `user`) to group by,
    else the nearest prototype where the scorer has prototypes."""
    variants = variants_of(rows)
    if baseline is not None and baseline not in variants:
        raise InvalidRequest(
            f"`baseline`: no variant is named {baseline!r} (variants: {', '.join(variants)})",
            field="baseline",
        )
    started = time.perf_counter()
    await scorer.warm(rows, progress)
    scored, failures = await score_rows(
        rows, scorer, segment=segment, concurrency=concurrency, progress=progress
    )
    setup = Setup(
        variants=variants,
        baseline=baseline,
        segment=segment or (PROTOTYPE_SEGMENT if scorer.prototypes else None),
        scorer=scorer.label,
        seed=seed,
        resamples=resamples,
    )
    return summarise(setup, scored, failures, time.perf_counter() - started)
