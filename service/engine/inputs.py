"""What one score is about: the conversation, the candidates and a user's preference pairs.

Frozen dataclasses rather than pydantic models: the engine builds and hashes many of these per
request, and the wire schemas in `service.api.schemas` already did the validation.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True, slots=True)
class Message:
    role: Role
    content: str


@dataclass(frozen=True, slots=True)
class PreferencePair:
    """One past judgement: in `context`, the user preferred `chosen` over `rejected`."""

    context: tuple[Message, ...]
    chosen: str
    rejected: str
    feedback: str | None = None

    @property
    def prompt(self) -> str:
        """The last user turn: what the judged answers respond to."""
        return last_user_turn(self.context)


@dataclass(frozen=True, slots=True)
class ScoringTask:
    """The new input to judge: a conversation ending in a user turn, and K >= 2 candidates."""

    context: tuple[Message, ...]
    candidates: tuple[str, ...]

    @property
    def prompt(self) -> str:
        return last_user_turn(self.context)


def last_user_turn(context: Sequence[Message]) -> str:
    for message in reversed(context):
        if message.role == "user":
            return message.content
    return context[-1].content if context else ""


def history_fingerprint(history: Sequence[PreferencePair]) -> str:
    """Stable digest of a history, order-sensitive, for cache keys and seeds."""
    digest = hashlib.blake2b(digest_size=16)
    for pair in history:
        for message in pair.context:
            digest.update(message.role.encode())
            digest.update(b"\x1f")
            digest.update(message.content.encode())
            digest.update(b"\x1e")
        for text in (pair.chosen, pair.rejected, pair.feedback or ""):
            digest.update(b"\x1d")
            digest.update(text.encode())
        digest.update(b"\x1c")
    return digest.hexdigest()
