"""Dynamic batching for a model called from many threads: concurrent calls share one batch.

Scoring requests embed a few texts each; run one after another, every call pays its own
padding and per-call overhead. Here one caller at a time leads: it runs what is queued as one
batch (unique items only), hands each caller its rows, and goes on until its own rows are done;
then it passes the lead to a waiting caller (never running others' work after its own is done).
A batch holds at most `max_items` items.

A large call goes in `chunk` items at a time, each queued behind whatever arrived meanwhile: a
request embedding 150 texts then delays a small one by one chunk, not by all of its work.

Calls made in `background()` (expensive ones) wait while any foreground call is queued, and a
batch is run by the thread of its first caller: foreground batches on foreground threads,
background batches on the lowered-priority threads of `service.core.priority`. Background calls
go in chunks a quarter the size: a foreground batch may still wait for the model behind one,
running at low priority.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from service.core.priority import in_background

T = TypeVar("T", bound=Hashable)
R = TypeVar("R")


@dataclass
class _Job(Generic[T, R]):
    items: Sequence[T]
    background: bool
    wake: threading.Event = field(default_factory=threading.Event)  # a result, or the lead
    result: list[R] | None = None
    error: BaseException | None = None

    @property
    def finished(self) -> bool:
        return self.result is not None or self.error is not None


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
        self.background_batches = 0

    def __call__(self, items: Sequence[T]) -> list[R]:
        chunk = max(1, self._chunk // 4) if in_background() else self._chunk
        if len(items) <= chunk:
            return self._call(items)
        out: list[R] = []
        for start in range(0, len(items), chunk):
            out += self._call(items[start : start + chunk])
        return out

    def _call(self, items: Sequence[T]) -> list[R]:
        job: _Job[T, R] = _Job(items, in_background())
        with self._lock:
            self._queue.append(job)
            leading = not self._leading
            self._leading = True
        while True:
            if not leading:
                job.wake.wait()
                job.wake.clear()
                if job.finished:
                    return self._result(job)
                leading = True  # woken to lead
            with self._lock:  # we lead
                top = self._top()
                if job.finished or (top is not None and top.background != job.background):
                    self._pass_lead(top)  # done, or a foreground caller waits: its thread runs
                    if job.finished:
                        return self._result(job)
                    leading = False
                    continue
            self._run_batch()

    def _top(self) -> _Job[T, R] | None:
        """The caller whose thread runs the next batch: the first foreground one, if any."""
        first = next((j for j in self._queue if not j.background), None)
        return first or (self._queue[0] if self._queue else None)

    def _pass_lead(self, top: _Job[T, R] | None) -> None:
        if top is None:
            self._leading = False
        else:
            top.wake.set()

    def _run_batch(self) -> None:
        with self._lock:
            top = self._top()
            if top is None:
                return
            batch: list[_Job[T, R]] = []
            size = 0
            for queued in list(self._queue):
                if queued.background != top.background:
                    continue
                if batch and size + len(queued.items) > self._max:
                    break
                self._queue.remove(queued)
                batch.append(queued)
                size += len(queued.items)
        unique = list(dict.fromkeys(item for job in batch for item in job.items))
        try:
            rows = dict(zip(unique, self._run(unique), strict=True))
            self.batches += 1
            self.background_batches += top.background
        except BaseException as error:  # every caller of this batch hears of it
            for job in batch:
                job.error = error
                job.wake.set()
            return
        for job in batch:
            job.result = [rows[item] for item in job.items]
            job.wake.set()

    @staticmethod
    def _result(job: _Job[T, R]) -> list[R]:
        if job.error is not None:
            raise job.error
        assert job.result is not None
        return job.result
