"""What the trainer adapters share: reading prompts and completions in the trainers' shapes,
grouping completions by (user, prompt) into one `/v1/score` call each, and mapping the
results back to the trainer's order."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pgenrm_client._api import new_key
from pgenrm_client.aio import AsyncPgenrmClient
from pgenrm_client.errors import PgenrmError
from pgenrm_client.types import CandidateResult, GroupRef, HistoryPair, Message, ScoreOptions

Prompt = str | list[Message]


def _plain(value: object) -> object:
    """numpy arrays (veRL's object columns) and tuples as lists, without importing numpy."""
    tolist = getattr(value, "tolist", None)
    if callable(tolist) and not isinstance(value, (str, bytes, dict)):
        return tolist()
    if isinstance(value, tuple):
        return list(value)
    return value


def content_text(content: object) -> str:
    """A message's content: a string, or a list of parts (`{"type": "text", "text": ...}`)."""
    content = _plain(content)
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append(part["text"])
        return "".join(parts)
    raise TypeError(f"cannot read text from message content {type(content).__name__}")


def messages(value: object) -> list[Message]:
    """A conversation as `{"role", "content"}` messages (other keys dropped)."""
    value = _plain(value)
    if not isinstance(value, list):
        raise TypeError(f"expected a list of messages, got {type(value).__name__}")
    out: list[Message] = []
    for message in value:
        message = _plain(message)
        if not isinstance(message, dict) or "role" not in message:
            raise TypeError(f"expected a message dict with `role`, got {message!r:.80}")
        out.append({"role": str(message["role"]), "content": content_text(message.get("content"))})
    return out


def prompt_of(value: object) -> Prompt:
    """A prompt as the trainers give it: a string, or a list of messages."""
    value = _plain(value)
    if isinstance(value, str):
        return value
    return messages(value)


def completion_text(value: object) -> str:
    """A completion: a string, one assistant message, or a list of messages (conversational
    format; the text of the last assistant message)."""
    value = _plain(value)
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return content_text(value.get("content"))
    turns = messages(value)
    answers = [m["content"] for m in turns if m["role"] == "assistant"] or [
        m["content"] for m in turns
    ]
    return answers[-1] if answers else ""


def prompt_options(prompt: Prompt) -> ScoreOptions:
    if isinstance(prompt, str):
        return {"prompt": prompt}
    return {"context": prompt}


@dataclass(frozen=True)
class Item:
    """One completion to score, for one user and prompt."""

    user_id: str
    prompt: Prompt
    completion: str
    history: list[HistoryPair] | None = None
    """Inline history (None: the stored one)."""

    def group_key(self) -> tuple[str, str]:
        return self.user_id, json.dumps(self.prompt, sort_keys=True, ensure_ascii=False)


@dataclass(frozen=True)
class Scored:
    """An item's outcome: its candidate result, or the error its whole call failed with."""

    result: CandidateResult | None
    error: PgenrmError | None = None

    def reward(self, fallback: float | None) -> float | None:
        """The reward; for a candidate the service could not score, the fallback (None)."""
        if self.result is not None and self.result["reward"] is not None:
            return float(self.result["reward"])
        return fallback

    @property
    def fell_back(self) -> bool:
        """Not scored: no reward from the service, or the fallback reward it applied."""
        return self.result is None or self.result["reward"] is None or self.result["fallback"]

    def why(self) -> str:
        if self.error is not None:
            return str(self.error)
        if self.result is not None and self.result["reason"]:
            return str(self.result["reason"])
        return "not scored"


def _scoring_failed(error: BaseException) -> bool:
    """Every sample of the call failed (502): a per-candidate failure, not a broken setup."""
    return isinstance(error, PgenrmError) and error.type == "scoring_failed"


async def score_items(
    client: AsyncPgenrmClient,
    items: Sequence[Item],
    options: ScoreOptions,
    *,
    key_prefix: str | None = None,
    member_group: Callable[[Item], GroupRef] | None = None,
) -> list[Scored]:
    """Score `items`, one `/v1/score` call per (user, prompt) with all of its completions (or,
    with `member_group`, one call per item as a member of that server-side group). Results
    come back in the items' order; a call whose samples all failed gives failed items, any
    other error is raised."""
    calls: dict[tuple[str, str], list[int]] = {}
    for i, item in enumerate(items):
        key = item.group_key() if member_group is None else (str(i), "")
        calls.setdefault(key, []).append(i)

    async def one(indices: list[int]) -> list[CandidateResult]:
        first = items[indices[0]]
        extra: ScoreOptions = {**options, **prompt_options(first.prompt)}
        if first.history is not None:
            extra["history"] = first.history
        if member_group is not None:
            extra["group"] = member_group(first)
        response = await client.score(
            first.user_id,
            [items[i].completion for i in indices],
            idempotency_key=new_key(key_prefix),
            **extra,
        )
        by_index = {result["index"]: result for result in response["scores"]}
        return [by_index[j] for j in range(len(indices))]

    groups = list(calls.values())
    answers = await asyncio.gather(*(one(g) for g in groups), return_exceptions=True)
    out: list[Scored | None] = [None] * len(items)
    for indices, answer in zip(groups, answers, strict=True):
        if isinstance(answer, BaseException):
            if not _scoring_failed(answer):
                raise answer
            assert isinstance(answer, PgenrmError)
            for i in indices:
                out[i] = Scored(None, answer)
        else:
            for i, result in zip(indices, answer, strict=True):
                out[i] = Scored(result)
    return [s if s is not None else Scored(None) for s in out]


def option_float(value: Any) -> float | None:
    return None if value is None or value == "" else float(value)
