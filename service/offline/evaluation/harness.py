"""Run one evaluation setting: draw histories, score both orders, account, summarise.

For every test pair it draws `history_k` of that user's train/val rows (seeded per pair, so a
`--limit` subset scores the same pairs the full run would), then scores the pair as
[chosen, rejected] and as [rejected, chosen] through a `PairScorer`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tqdm import tqdm

from service.core.inputs import ScoringTask
from service.core.rows import Row
from service.engine.scaling import Scaling
from service.offline.evaluation.scorers import PairScorer
from service.offline.evaluation.stats import PairResult, summarise
from service.offline.histories import draw_history, history_pools, seeded_rng

DERIVED_TAGS = ("chosen_length", "turns", "conversation_suffix", "history_k")


@dataclass(frozen=True)
class EvalConfig:
    split: str = "test"
    history_k: int = 3
    ind: int = 8
    pro: int = 0
    limit: int | None = None
    seed: int = 0
    concurrency: int = 4
    feedback: bool = True  # history pairs carry the user's `feedback` where the data has it

    @property
    def scaling(self) -> Scaling:
        """Ind-0,Pro-0 is the unscaled base model: a single evaluation chain."""
        if self.ind == 0 and self.pro == 0:
            return Scaling(1, 0)
        return Scaling(self.ind, self.pro)


def select_pairs(rows: Sequence[Row], config: EvalConfig) -> list[Row]:
    test = [r for r in rows if r.split == config.split]
    if config.limit is not None and config.limit < len(test):
        test = seeded_rng(config.seed, "limit").sample(test, config.limit)
    return test


def tags_of(row: Row, history_k: int) -> dict[str, str]:
    tags = {k: str(v) for k, v in row.extras.items() if isinstance(v, str | int | float | bool)}
    tags.update(user_id=row.user_id, split=row.split, conversation_id=row.conversation_id)
    tags["chosen_length"] = (
        "chosen_longer" if len(row.chosen) > len(row.rejected) else "chosen_shorter"
    )
    tags["turns"] = "single_turn" if len(row.context) <= 1 else "multi_turn"
    tags["conversation_suffix"] = row.conversation_id.rsplit("-", 1)[-1]
    tags["history_k"] = str(history_k)
    return tags


async def evaluate(
    rows: Sequence[Row],
    scorer: PairScorer,
    config: EvalConfig,
    *,
    by: str | None = None,
    progress: bool = True,
    description: str = "eval",
) -> dict[str, Any]:
    pools = history_pools(rows)
    test = select_pairs(rows, config)
    if not test:
        raise ValueError(f"no rows with split={config.split!r}")
    gate = asyncio.Semaphore(config.concurrency)
    bar = tqdm(total=len(test), desc=description, unit="pair", disable=not progress, leave=False)

    async def judge(index: int, row: Row) -> PairResult:
        history = draw_history(pools, row, config.history_k, config.seed, index, config.feedback)
        result = PairResult(user_id=row.user_id, tags=tags_of(row, len(history)))
        async with gate:
            for chosen_at in (0, 1):
                candidates = (
                    (row.chosen, row.rejected) if chosen_at == 0 else (row.rejected, row.chosen)
                )
                task = ScoringTask(context=row.context, candidates=candidates)
                scored = await scorer.score(row.user_id, history, task, config.scaling)
                result.samples_requested += scored.requested
                result.samples_failed += scored.failed
                result.samples_skipped += scored.skipped
                if scored.scores is None:
                    result.add(None, None)
                else:
                    result.add(scored.scores[chosen_at], scored.scores[1 - chosen_at])
        bar.update(1)
        return result

    started = time.perf_counter()
    try:
        results = await asyncio.gather(*(judge(i, r) for i, r in enumerate(test)))
    finally:
        bar.close()
    elapsed = time.perf_counter() - started
    summary = summarise(results, seed=config.seed, by=by)
    summary.update(
        pairs_per_s=len(results) / elapsed if elapsed > 0 else float("inf"),
        elapsed_s=elapsed,
        scorer=scorer.label,
        config=config.__dict__ | {"by": by},
    )
    return summary
