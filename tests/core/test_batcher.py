"""Dynamic batching: concurrent callers share model calls, each gets its own rows."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from service.core._batcher import Batcher


class SlowSquare:
    """A 'model' that records every batch it is asked for; the first call blocks until told,
    so the others queue up behind it."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.release = threading.Event()

    def __call__(self, items: list[int]) -> list[int]:
        self.batches.append(items)
        if len(self.batches) == 1:
            assert self.release.wait(10)
        if -1 in items:
            raise ValueError("bad item")
        return [i * i for i in items]


def test_callers_waiting_behind_a_batch_share_the_next_one() -> None:
    model = SlowSquare()
    batcher: Batcher[int, int] = Batcher(model)
    with ThreadPoolExecutor(6) as pool:
        first = pool.submit(batcher, [1, 2])
        while not model.batches:  # the first call is in the model
            threading.Event().wait(0.001)
        rest = [pool.submit(batcher, [n, n + 1]) for n in range(3, 13, 2)]
        while len(batcher._queue) < 5:  # all five queued behind it
            threading.Event().wait(0.001)
        model.release.set()
        assert first.result() == [1, 4]
        assert [f.result() for f in rest] == [[n * n, (n + 1) ** 2] for n in range(3, 13, 2)]
    assert len(model.batches) == 2  # 6 callers, 2 model calls
    assert sorted(model.batches[1]) == list(range(3, 13))


def test_duplicates_are_run_once_and_errors_reach_every_caller_of_the_batch() -> None:
    model = SlowSquare()
    model.release.set()
    batcher: Batcher[int, int] = Batcher(model)
    assert batcher([2, 2, 3]) == [4, 4, 9] and model.batches == [[2, 3]]
    with pytest.raises(ValueError, match="bad item"):
        batcher([-1])
    assert batcher([5]) == [25]  # leadership was released after the error


def test_a_batch_holds_at_most_max_items() -> None:
    model = SlowSquare()
    model.release.set()
    batcher: Batcher[int, int] = Batcher(model, max_items=3)
    assert batcher([1, 2, 3, 4, 5]) == [1, 4, 9, 16, 25]  # one caller's items stay together
    assert model.batches == [[1, 2, 3, 4, 5]]


def test_a_large_call_goes_in_chunks_and_lets_a_small_one_in_between() -> None:
    model = SlowSquare()
    batcher: Batcher[int, int] = Batcher(model, chunk=4)
    with ThreadPoolExecutor(2) as pool:
        large = pool.submit(batcher, list(range(100, 112)))  # three chunks of four
        while not model.batches:  # its first chunk is in the model
            threading.Event().wait(0.001)
        small = pool.submit(batcher, [7])
        while len(batcher._queue) < 1:
            threading.Event().wait(0.001)
        model.release.set()
        assert small.result() == [49]
        assert large.result() == [n * n for n in range(100, 112)]
    assert model.batches[0] == [100, 101, 102, 103]
    # the small call was served before the large call's second chunk finished
    second = next(i for i, b in enumerate(model.batches) if 7 in b)
    assert second == 1 and all(len(b) <= 5 for b in model.batches)
