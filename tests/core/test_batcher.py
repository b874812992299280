"""Dynamic batching: concurrent callers share model calls, each gets its own rows."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from service.core._batcher import Batcher
from service.core.priority import background, background_executor, in_background


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


def _in_background(batcher: Batcher[int, int], items: list[int]) -> list[int]:
    with background():
        return batcher(items)


def test_foreground_calls_go_before_background_chunks_on_their_own_threads() -> None:
    model = SlowSquare()
    threads: list[str] = []

    def run(items: list[int]) -> list[int]:
        threads.append(threading.current_thread().name)
        return model(items)

    batcher: Batcher[int, int] = Batcher(run, chunk=16)
    with (
        ThreadPoolExecutor(1, thread_name_prefix="bg") as bg,
        ThreadPoolExecutor(3, thread_name_prefix="fg") as fg,
    ):
        large = bg.submit(_in_background, batcher, list(range(100, 112)))  # 3 chunks of 4
        while not model.batches:  # its first chunk is in the model
            threading.Event().wait(0.001)
        small = [fg.submit(batcher, [n]) for n in (7, 8, 9)]
        while len(batcher._queue) < 3:
            threading.Event().wait(0.001)
        model.release.set()
        assert [f.result() for f in small] == [[49], [64], [81]]
        assert large.result() == [n * n for n in range(100, 112)]
    # chunk 1 (background), then the three small calls in one batch, then chunks 2 and 3
    assert model.batches == [
        [100, 101, 102, 103],
        [7, 8, 9],
        [104, 105, 106, 107],
        [108, 109, 110, 111],
    ]
    assert threads[0].startswith("bg") and threads[1].startswith("fg")
    assert all(name.startswith("bg") for name in threads[2:])
    assert batcher.background_batches == 3 and batcher.batches == 4


def test_a_background_thread_keeps_its_lowered_priority() -> None:
    with background_executor(1, nice=5) as pool:
        own = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        niced = pool.submit(lambda: os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        assert niced.result() == min(own + 5, 19)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == own  # ours unchanged
    assert not in_background()
    with background():
        assert in_background()
    assert not in_background()
