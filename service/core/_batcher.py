"""Dynamic batching for a model called from many threads: concurrent calls share one batch.

Scoring requests embed a few texts each; run one after another, every call pays its own
padding and per-call overhead. Here the first caller becomes the leader and runs everything
queued meanwhile as one batch (unique items only), hands each caller its rows, then passes
leadership to a waiting caller if more arrived (never running others' work after its own is
done). A batch holds at most `max_items` items.

A large call goes in `chunk` items at a time, each queued behind whatever arrived meanwhile: a
request embedding 150 texts then delays a small one by one chunk, not by all of its work.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T", bound=Hashable)
R = TypeVar("R")


@dataclass
class _Job(Generic[T, R]):
    items: Sequence[T]
    done: threading.Event = field(default_factory=threading.Event)
    lead: bool = False  # woken to lead, not with a result
    result: list[R] | None = None
    error: BaseException | None = None


class Batcher(Generic[T, R]):
    def __init__(
        self, run: Callable[[list[T]], Sequence[R]], max_items: int = 512, chunk: int = 16
    ) -> None:
        self._run = run
        self._max = max_items
        self._chunk = chunk
        self._lock = threading.Lock()
        self._queue: list[_Job[T, R]] = []
        self._leading = False
        self.batches = 0  # model calls made (for tests and metrics)

    def __call__(self, items: Sequence[T]) -> list[R]:
        if len(items) <= self._chunk:
            return self._call(items)
        out: list[R] = []
        for start in range(0, len(items), self._chunk):
            out += self._call(items[start : start + self._chunk])
        return out

    def _call(self, items: Sequence[T]) -> list[R]:
        job: _Job[T, R] = _Job(items)
        with self._lock:
            self._queue.append(job)
            lead = not self._leading
            self._leading = True
        if not lead:
            job.done.wait()
            if not job.lead:
                return self._result(job)
        while job.result is None and job.error is None:
            self._run_batch()
        with self._lock:  # hand over to a waiting caller, or stop leading
            if self._queue:
                nxt = self._queue[0]
                nxt.lead = True
                nxt.done.set()
            else:
                self._leading = False
        return self._result(job)

    def _run_batch(self) -> None:
        with self._lock:
            batch: list[_Job[T, R]] = []
            size = 0
            while self._queue and (not batch or size + len(self._queue[0].items) <= self._max):
                taken = self._queue.pop(0)
                batch.append(taken)
                size += len(taken.items)
        unique = list(dict.fromkeys(item for job in batch for item in job.items))
        try:
            rows = dict(zip(unique, self._run(unique), strict=True))
            self.batches += 1
        except BaseException as error:  # every caller of this batch hears of it
            for job in batch:
                job.error = error
                job.done.set()
            return
        for job in batch:
            job.result = [rows[item] for item in job.items]
            job.lead = False
            job.done.set()

    @staticmethod
    def _result(job: _Job[T, R]) -> list[R]:
        if job.error is not None:
            raise job.error
        assert job.result is not None
        return job.result
