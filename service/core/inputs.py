"""What one score is about: the conversation, the candidates and a user's preference pairs.

Frozen dataclasses rather than pydantic models: the engine builds and hashes many of these per
request, and the wire schemas in `service.api.schemas` already did the validation.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

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

    def to_json(self) -> dict[str, Any]:
        """The pair as stored (a prototype artefact, the user store); `feedback` only if set."""
        data: dict[str, Any] = {
            "context": [{"role": m.role, "content": m.content} for m in self.context],
            "chosen": self.chosen,
            "rejected": self.rejected,
        }
        if self.feedback is not None:
            data["feedback"] = self.feedback
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PreferencePair:
        context = tuple(Message(m["role"], m["content"]) for m in data["context"])
        feedback = data.get("feedback")
        return cls(context, data["chosen"], data["rejected"], feedback)


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
    """Stable digest of a history, order-sensitive, for cache keys and seeds (sha256: ~2x
    blake2b's speed here, on histories of long answers hashed on every request)."""
    parts: list[str] = []
    for pair in history:
        parts += [f"{m.role}\x1f{m.content}\x1e" for m in pair.context]
        parts += ["\x1d", pair.chosen, "\x1d", pair.rejected, "\x1d", pair.feedback or "", "\x1c"]
    return hashlib.sha256("".join(parts).encode("utf-8", "surrogatepass")).hexdigest()[:32]
