"""Idempotency keys in one process: answers kept within a byte budget, under key digests."""

from __future__ import annotations

import sys
from typing import Any

import pytest

from service.coordination.idempotency import MemoryIdempotency, Result, Work
from service.core.errors import InvalidRequest


class Scorer:
    """Real work to be run at most once per key: counts its runs, answers a sizeable body."""

    def __init__(self, text_chars: int = 2_000) -> None:
        self.runs = 0
        self.text_chars = text_chars

    def work(self, i: int) -> Work:
        async def run() -> Result:
            self.runs += 1
            body: dict[str, Any] = {"scores": [{"index": i, "text": "x" * self.text_chars}]}
            return {"status": 200, "body": body}

        return run


async def test_answers_stay_within_the_byte_budget_and_replay_equal() -> None:
    budget = 64 * 1024
    store, scorer = MemoryIdempotency(600.0, max_bytes=budget), Scorer()
    first = {}
    for i in range(100):
        first[i], replayed = await store.run(f"route\x1fkey-{i}", "fp", scorer.work(i))
        assert not replayed and store.nbytes <= budget
    assert scorer.runs == 100
    again, replayed = await store.run("route\x1fkey-99", "fp", scorer.work(99))
    assert replayed and again == first[99] and scorer.runs == 100  # the latest is kept
    again, replayed = await store.run("route\x1fkey-0", "fp", scorer.work(0))
    assert not replayed and again == first[0] and scorer.runs == 101  # the oldest went first
    with pytest.raises(InvalidRequest):
        await store.run("route\x1fkey-99", "another body", scorer.work(99))


async def test_keys_are_not_kept_and_an_answer_over_the_budget_runs_again() -> None:
    store, scorer = MemoryIdempotency(600.0, max_bytes=16 * 1024), Scorer(text_chars=50_000)
    key = "".join(["route\x1f", "a-long-key-" * 10])
    refs = sys.getrefcount(key)
    await store.run(key, "fp", scorer.work(1))
    assert sys.getrefcount(key) == refs  # kept under its digest, not the key itself
    _, replayed = await store.run(key, "fp", scorer.work(1))
    assert not replayed and scorer.runs == 2 and store.nbytes == 0
