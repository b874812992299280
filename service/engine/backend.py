"""The one seam between the engine and whatever writes evaluation chains.

`Backend` is to this service what vLLM's `EngineClient` is to its OpenAI server: the embedded
CPU backend, the OpenAI-compatible HTTP backend and test fakes all satisfy it, and the engine
never knows which one it holds. A backend takes one `SampleGroup` (one prompt, n samples) and
returns raw chain texts (a backend that scores natively adds its scores and writes the text on
demand); parsing and aggregation are the engine's.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from service.core.inputs import PreferencePair, ScoringTask
from service.core.metrics import Metrics

Level = Literal["ind", "pro"]
# "unavailable": no worker answered at all (the engine may fall back, or answer 503).
FailureKind = Literal["backend_error", "timeout", "unavailable"]


@dataclass(frozen=True, slots=True)
class SampleGroup:
    """n samples of the chain for one few-shot history (the user's own, or a neighbour's)."""

    level: Level
    user_id: str
    history: tuple[PreferencePair, ...]
    task: ScoringTask
    n: int
    seed: int
    source: str = "self"  # "self", or an opaque neighbour label for prototype-level samples
    order: tuple[int, ...] | None = None  # presented position -> candidate index, if rotated


@dataclass(frozen=True, slots=True, eq=False)  # arrays: compared by identity
class Utility:
    """A sample's calibrated log-odds utility per presented candidate, under each hypothesis
    about the user the backend weighs (weights sum to 1).

    With it the engine can say how sure a sample is that one candidate beats another (the
    posterior predictive `win`), instead of reading a margin off 1-10 scores whose scale says
    nothing about probability. A backend with one hypothesis gives one row and weight 1.
    """

    weights: npt.NDArray[np.float64]  # (hypotheses,)
    values: npt.NDArray[np.float64]  # (hypotheses, presented candidates)

    @property
    def width(self) -> int:
        """How many candidates it scores."""
        return int(self.values.shape[1])

    def win(self, i: int, j: int) -> float:
        """P(the user prefers presented candidate i over j) = sum_h w_h sigmoid(u_h[i] - u_h[j])."""
        # sigmoid(x) = (1 + tanh(x / 2)) / 2: stable at any x, no overflow warnings
        difference = self.values[:, i] - self.values[:, j]
        return float(self.weights @ (0.5 + 0.5 * np.tanh(0.5 * difference)))


class Completion:
    """One sample as the backend wrote it.

    A backend that computed the overall scores itself (the embedded one) passes them as
    `overall` and the text as `write`, a function called only when somebody reads `text`
    (a trace): the engine then aggregates without writing and re-parsing text that nobody
    reads, which was most of a warm score's CPU. `overall` must be what parsing `text` gives.
    A backend whose scores rank candidates by a calibrated log-odds utility passes that as
    `utility` (the response's `confidence` comes from it).
    """

    __slots__ = ("_text", "_write", "finish_reason", "overall", "utility")

    def __init__(
        self,
        text: str | None = None,
        finish_reason: str | None = None,
        *,
        overall: tuple[float, ...] | None = None,
        write: Callable[[], str] | None = None,
        utility: Utility | None = None,
    ) -> None:
        if (text is None) == (write is None):
            raise ValueError("a completion has either its text or a function that writes it")
        self._text = text
        self._write = write
        self.finish_reason = finish_reason
        self.overall = overall
        self.utility = utility

    @property
    def text(self) -> str:
        if self._text is None:
            assert self._write is not None
            self._text, self._write = self._write(), None
        return self._text


class BackendError(RuntimeError):
    """A group's request failed as a whole (after the backend's own retries)."""

    def __init__(self, reason: FailureKind, detail: str) -> None:
        super().__init__(detail)
        self.reason: FailureKind = reason
        self.detail = detail


class Backend(ABC):
    """Writes evaluation-chain samples. Built unloaded; `start()` does the expensive part."""

    name: str
    metrics: Metrics | None = None  # set by the app; backends time their calls per worker

    @property
    @abstractmethod
    def model(self) -> str:
        """The model that writes the chains, as reported in every response."""

    @property
    @abstractmethod
    def ready(self) -> bool:
        """True once `start()` finished and samples can be generated."""

    @property
    def available(self) -> bool:
        """Ready and able to answer now (an HTTP backend: some worker is up)."""
        return self.ready

    def describe(self) -> dict[str, object]:
        """Details for /readyz (workers, versions)."""
        return {}

    @abstractmethod
    async def start(self) -> None: ...

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections and threads."""

    def retry_after(self) -> int:
        """Seconds a client should wait when this backend is unavailable."""
        return 5

    async def warm(self, texts: Sequence[tuple[str, str]], progress: bool = False) -> None:  # noqa: B027
        """Precompute what scoring these (prompt, response) texts needs; batch jobs call it."""

    @abstractmethod
    async def generate(self, group: SampleGroup) -> list[Completion]:
        """`group.n` raw samples, in order; raise `BackendError` if the group failed as a whole."""
