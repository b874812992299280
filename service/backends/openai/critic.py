"""The OpenAI-compatible critic: the model extracts arguments and pairs them, as JSON.

Requests go through `OpenAIBackend.complete` (its routing, retries and failover) at
temperature 0, constrained to the JSON schemas of `critique_prompts` when the backend's
structured option is on. Answers are read defensively: the first JSON object holding the
expected key, anywhere in the text (code fences, prose around it); items that do not make
sense are dropped one by one (a target or polarity written another way is normalised first).
An answer with no such object at all is the critic's failure (`CriticError`), never an empty
list that would quietly cost the critique its process reward.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from service.backends.openai import critique_prompts as prompts
from service.backends.openai.backend import OpenAIBackend
from service.backends.openai.schema import Schema
from service.engine.backend import BackendError
from service.engine.critic import Critic, CriticError, CritiqueText, Similarity
from service.engine.critique import Argument, Polarity, Target
from service.engine.critique_reading import parse_choice

# The matching prompt's own scale: 0.5 is "the same point with a different emphasis".
SIMILARITY_THRESHOLD = 0.5
_MAX_TEXT = 400  # characters kept of one argument's text
_POSITIVE = ("pos", "praise", "pro", "+", "good", "favou")
_NEGATIVE = ("neg", "crit", "con", "-", "bad", "against")


class OpenAICritic(Critic):
    name = "openai"
    similarity_threshold = SIMILARITY_THRESHOLD

    def __init__(self, backend: OpenAIBackend) -> None:
        self.backend = backend

    @property
    def ready(self) -> bool:
        return self.backend.available

    @property
    def model(self) -> str:
        return self.backend.model

    async def extract(self, critiques: Sequence[CritiqueText]) -> list[tuple[Argument, ...]]:
        return list(await asyncio.gather(*(self._extract(c) for c in critiques)))

    async def _extract(self, critique: CritiqueText) -> tuple[Argument, ...]:
        messages = prompts.extraction_messages(critique)
        text = await self._ask(messages, Schema("critique_arguments", prompts.ARGUMENTS_SCHEMA))
        found = first_object(text, "arguments")
        if found is None:
            raise CriticError("unreadable_output", f"no arguments object in {text[:200]!r}")
        return read_arguments(found["arguments"])[: self.max_arguments]

    async def similarity(self, model: Sequence[Argument], human: Sequence[Argument]) -> Similarity:
        out = np.zeros((len(model), len(human)), dtype=np.float64)
        if not model or not human:
            return out
        messages = prompts.matching_messages(model, human)
        text = await self._ask(messages, Schema("argument_pairs", prompts.PAIRS_SCHEMA))
        found = first_object(text, "pairs")
        if found is None:
            raise CriticError("unreadable_output", f"no pairs object in {text[:200]!r}")
        for i, j, value in read_pairs(found["pairs"], len(model), len(human)):
            out[i, j] = max(out[i, j], value)
        return out

    async def _ask(self, messages: list[dict[str, str]], schema: Schema) -> str:
        # Spread critiques over the workers by their content; one critique stays on one worker.
        key = "critic\x1f" + hashlib.sha1(messages[-1]["content"].encode()).hexdigest()[:16]
        try:
            return await self.backend.complete(messages, key=key, schema=schema)
        except BackendError as error:
            raise CriticError(
                error.reason, error.detail, unavailable=error.reason == "unavailable"
            ) from error


def first_object(text: str, key: str) -> dict[str, Any] | None:
    """The first JSON object in `text` that has `key` (a bare list stands for the object)."""
    decoder = json.JSONDecoder()
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            value, _ = decoder.raw_decode(stripped)
        except (ValueError, RecursionError):
            value = None
        if isinstance(value, list):
            return {key: value}
    pos = 0
    while (start := text.find("{", pos)) != -1:
        try:
            value, _ = decoder.raw_decode(text, start)
        except (ValueError, RecursionError):
            pos = start + 1
            continue
        if isinstance(value, dict) and isinstance(value.get(key), list):
            return value
        pos = start + 1
    return None


def read_arguments(items: list[Any]) -> tuple[Argument, ...]:
    out: list[Argument] = []
    for item in items:
        if not isinstance(item, dict):
            continue
        text, polarity = item.get("text"), _polarity(item.get("polarity"))
        if not isinstance(text, str) or not text.strip() or polarity is None:
            continue
        out.append(
            Argument(text.strip()[:_MAX_TEXT], _target(item.get("target")), polarity, "model")
        )
    return tuple(out)


def read_pairs(items: list[Any], n_model: int, n_human: int) -> list[tuple[int, int, float]]:
    """(model index, human index, similarity) of each well-formed pair, zero-based."""
    out = []
    for item in items:
        if not isinstance(item, dict):
            continue
        i, j = _index(item.get("model"), "m"), _index(item.get("human"), "h")
        value = item.get("similarity", 1.0 if item.get("same") is True else None)
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                continue
        if i is None or j is None or not isinstance(value, int | float) or isinstance(value, bool):
            continue
        if 0 <= i < n_model and 0 <= j < n_human and np.isfinite(value):
            out.append((i, j, float(min(1.0, max(0.0, value)))))
    return out


def _index(value: object, prefix: str) -> int | None:
    """1-based "3", 3 or "M3" -> 2."""
    if isinstance(value, str):
        value = value.strip().lower().removeprefix(prefix)
        value = int(value) if value.isdigit() else None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value - 1
    return None


def _target(value: object) -> Target | None:
    if isinstance(value, str) and value.strip().lower() in ("both", "each", "all"):
        return "both"
    choice = parse_choice(value.strip() if isinstance(value, str) else value)
    return None if choice is None else ("1" if choice == 1 else "2")


def _polarity(value: object) -> Polarity | None:
    if not isinstance(value, str):
        return None
    word = value.strip().lower()
    if word.startswith(_POSITIVE):
        return "positive"
    if word.startswith(_NEGATIVE):
        return "negative"
    return None
