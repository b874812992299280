"""One critique's RM-NLHF reward, end to end: read the verdict, extract, match, score.

The in-process entry point (the HTTP API and offline jobs drive exactly this code):

    critic = EmbeddedCritic(load_embedder())          # or OpenAICritic(openai_backend)
    result = await reward_critique(critic, CritiqueCase(
        prompt=..., responses=(r1, r2), critique=chain_or_text,
        human_choice=1, human_critique="A1 uses examples; A2 is just opinion"))
    result.reward, result.f1, result.matches

The arithmetic and the stance rule are `service.engine.critique`'s; the verdict and a chain's
own arguments are `service.engine.critique_reading`'s; what the arguments of free text are,
and how alike two arguments are in meaning, is the critic's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from service.engine.critic import Critic, CritiqueText
from service.engine.critique import (
    F1_THRESHOLD,
    Agreement,
    Argument,
    Match,
    agreement,
    match_arguments,
    process_reward,
    reward_value,
)
from service.engine.critique_reading import Critique, FormatError, read_critique

# Unreadable whatever the caller says the choice was: there is no critique to reward.
_ALWAYS_FATAL: frozenset[FormatError] = frozenset({"empty_critique", "invalid_chain"})


@dataclass(frozen=True, slots=True)
class CritiqueCase:
    """A model's critique of two responses, and the human judgement it is held to.

    `model_choice` (1 or 2) overrides the verdict read from the critique; without it an
    unreadable verdict is a format error. `human_critique` is the human's reasons in free text
    (ukp_convarg's `feedback`); without it the reward is the outcome alone."""

    prompt: str
    responses: tuple[str, str]
    critique: Critique
    human_choice: int
    model_choice: int | None = None
    human_critique: str | None = None


@dataclass(frozen=True, slots=True)
class CritiqueResult:
    outcome: int  # 1 when the model's choice is the human's, else 0 (0 on a format error)
    format_ok: bool
    format_error: FormatError | None
    format_detail: str
    model_choice: int | None  # the choice scored: the explicit one, else the critique's
    critique_choice: int | None  # the verdict read from the critique itself
    human_choice: int
    model_arguments: tuple[Argument, ...]
    human_arguments: tuple[Argument, ...]
    agreement: Agreement
    process: float
    reward: float
    similarity_threshold: float
    critic: str
    f1_threshold: float = F1_THRESHOLD

    @property
    def matches(self) -> tuple[Match, ...]:
        return self.agreement.matches

    @property
    def f1(self) -> float | None:
        return self.agreement.f1


async def reward_critique(critic: Critic, case: CritiqueCase) -> CritiqueResult:
    """The reward of one critique; raises `service.engine.critic.CriticError` only when the
    critic itself fails (a format error of the critique is a result, reward -1)."""
    if case.human_choice not in (1, 2) or case.model_choice not in (None, 1, 2):
        raise ValueError("choices are 1 or 2")
    read = read_critique(case.critique)
    choice = case.model_choice if case.model_choice is not None else read.choice
    error = read.error
    if error is not None and error not in _ALWAYS_FATAL and case.model_choice is not None:
        error = None  # the caller gave the choice the critique did not state
    format_ok = error is None
    outcome = int(format_ok and choice == case.human_choice)

    texts: dict[str, CritiqueText] = {}
    if read.arguments is None and read.text and read.error != "invalid_chain":
        texts["model"] = CritiqueText(read.text, case.prompt, case.responses, choice)
    human_text = (case.human_critique or "").strip()
    if human_text:
        texts["human"] = CritiqueText(human_text, case.prompt, case.responses, case.human_choice)
    read_out = await critic.extract(list(texts.values())) if texts else []
    extracted = dict(zip(texts, read_out, strict=True))
    model = read.arguments if read.arguments is not None else extracted.get("model", ())
    model = model[: critic.max_arguments]
    human = extracted.get("human", ())[: critic.max_arguments]

    matches: tuple[Match, ...] = ()
    if model and human:
        similarity = await critic.similarity(model, human)
        matches = match_arguments(model, human, np.asarray(similarity), critic.similarity_threshold)
    found = agreement(len(model), len(human), matches)
    return CritiqueResult(
        outcome=outcome,
        format_ok=format_ok,
        format_error=error,
        format_detail=read.detail if error else "",
        model_choice=choice if format_ok else case.model_choice,
        critique_choice=read.choice,
        human_choice=case.human_choice,
        model_arguments=tuple(model),
        human_arguments=tuple(human),
        agreement=found,
        process=process_reward(outcome, found.f1) if format_ok else 0.0,
        reward=reward_value(outcome, format_ok, found.f1),
        similarity_threshold=critic.similarity_threshold,
        critic=critic.model,
    )


async def reward_critiques(
    critic: Critic, cases: Sequence[CritiqueCase], concurrency: int = 8
) -> list[CritiqueResult]:
    """Many cases, in order, at most `concurrency` at a time (an offline evaluation's loop)."""
    gate = asyncio.Semaphore(concurrency)

    async def one(case: CritiqueCase) -> CritiqueResult:
        async with gate:
            return await reward_critique(critic, case)

    return list(await asyncio.gather(*(one(c) for c in cases)))
