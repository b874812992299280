"""The one seam between the critique reward and whatever reads arguments out of critiques.

`Critic` is to the critique reward what `Backend` is to scoring: the embedded rule-based critic
(`service.backends.embedded.critic`, MiniLM cosine for meaning) and the OpenAI-compatible one
(`service.backends.openai.critic`, the model extracts and compares arguments as JSON) both
satisfy it, and `service.engine.critique_reward` never knows which it holds. Stance checks,
the one-to-one matching and the reward arithmetic stay in `service.engine.critique`, so both
critics are held to exactly the same rule.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from service.engine.critique import Argument

Similarity = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class CritiqueText:
    """One critique to read, with what resolving its references needs.

    `choice` is the response (1 or 2) the critique's author preferred, when known: an argument
    that names no response ("it gives examples") is about the chosen one when it praises and
    about the other when it criticises."""

    text: str
    prompt: str
    responses: tuple[str, str]
    choice: int | None = None


class CriticError(RuntimeError):
    """The critic failed as a whole (its model unreachable, its answer unreadable)."""

    def __init__(self, reason: str, detail: str, *, unavailable: bool = False) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.unavailable = unavailable  # nobody could answer: a 503, not a 502


class Critic(ABC):
    """Extracts key arguments and says how alike in meaning two lists of them are."""

    name: str
    # Two arguments mean the same thing when `similarity` reaches this (on the critic's scale).
    similarity_threshold: float
    # The most arguments kept per critique: the first ones, in the critique's order.
    max_arguments: int = 32

    @property
    @abstractmethod
    def ready(self) -> bool:
        """True once it can read critiques now."""

    @property
    def model(self) -> str:
        """What reads the critiques, as reported in every answer."""
        return self.name

    @abstractmethod
    async def extract(self, critiques: Sequence[CritiqueText]) -> list[tuple[Argument, ...]]:
        """The key arguments of each critique, in order; raise `CriticError` on failure."""

    @abstractmethod
    async def similarity(self, model: Sequence[Argument], human: Sequence[Argument]) -> Similarity:
        """(len(model), len(human)) meaning similarities, stance aside (the matcher checks
        stance): compare what the arguments say, not whom they praise."""
