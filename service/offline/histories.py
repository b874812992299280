"""How offline jobs give a test pair its user's history: seeded draws from the user's own
train/val rows, never the pair's own conversation (shared by evaluation and MetaRM training,
which must draw the same histories to be comparable)."""

from __future__ import annotations

import hashlib
import random
from collections import defaultdict
from collections.abc import Iterable

from service.core.inputs import PreferencePair
from service.core.rows import Row


def seeded_rng(seed: int, *parts: str) -> random.Random:
    """A generator fixed by the seed and the parts (not by Python's hash seed)."""
    digest = hashlib.blake2b("\x1f".join([str(seed), *parts]).encode(), digest_size=8).digest()
    return random.Random(int.from_bytes(digest, "big"))


def history_pools(rows: Iterable[Row]) -> dict[str, list[Row]]:
    """Each user's train/val rows: what a history is drawn from."""
    pools: dict[str, list[Row]] = defaultdict(list)
    for r in rows:
        if r.split in ("train", "val"):
            pools[r.user_id].append(r)
    return pools


def draw_history(
    pools: dict[str, list[Row]], row: Row, k: int, seed: int, index: int, feedback: bool = True
) -> tuple[PreferencePair, ...]:
    pool = [r for r in pools.get(row.user_id, []) if r.conversation_id != row.conversation_id]
    if k <= 0 or not pool:
        return ()
    picked = seeded_rng(seed, row.user_id, row.conversation_id, str(index)).sample(
        pool, min(k, len(pool))
    )
    return tuple(r.as_pair(feedback) for r in picked)
