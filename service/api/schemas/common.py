"""Wire models shared by the endpoints: messages and history pairs, strict by default."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

Text = Annotated[str, StringConstraints(min_length=1)]
# No control characters: they separate tenants' namespaces (service.core.keys.namespaced).
USER_ID_PATTERN = r"^[^\x00-\x1f\x7f]+$"
UserId = Annotated[str, StringConstraints(min_length=1, max_length=256, pattern=USER_ID_PATTERN)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Message(Strict):
    role: Literal["system", "user", "assistant"]
    content: str


def _answer_text(value: object) -> object:
    """PersonalRewardBench writes answers as `{"role": "assistant", "content": ...}`; accept
    that as well as a plain string, and nothing else."""
    if isinstance(value, dict):
        if set(value) - {"role", "content"} or value.get("role", "assistant") != "assistant":
            raise ValueError('an answer is a string or {"role": "assistant", "content": "..."}')
        return value.get("content")
    return value


def check_context(context: list[Message] | None) -> list[Message] | None:
    if context is None:
        return None
    if not context:
        raise ValueError("must hold at least one message")
    if context[-1].role != "user":
        raise ValueError("the last message must be the user's turn being answered")
    if not any(m.content.strip() for m in context if m.role == "user"):
        raise ValueError("has no non-empty user message")
    return context


def check_prompt(prompt: str | None, info: ValidationInfo) -> str | None:
    """Runs after `context` (declared first): exactly one of the two must be given."""
    has_context = info.data.get("context") is not None
    if prompt is not None and has_context:
        raise ValueError("give `prompt` or `context`, not both")
    if prompt is None and not has_context and "context" in info.data:
        raise ValueError("give `prompt` (string) or `context` (list of messages)")
    if prompt is not None and not prompt.strip():
        raise ValueError("must not be empty")
    return prompt


class HistoryPair(Strict):
    """One past judgement by this user."""

    context: list[Message] | None = Field(None, description="Conversation the answers respond to.")
    prompt: str | None = Field(
        None, validate_default=True, description="Single-turn alternative to `context`."
    )
    chosen: Text = Field(description="The answer the user preferred (string or assistant message).")
    rejected: Text = Field(description="The answer the user passed over.")
    feedback: str | None = Field(None, description="Optional free-text feedback on the choice.")

    _context = field_validator("context")(check_context)
    _prompt = field_validator("prompt")(check_prompt)
    _answers = field_validator("chosen", "rejected", mode="before")(_answer_text)
