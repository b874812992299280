"""Golden rewards end to end with the embedded critic and the real MiniLM embedder."""

from __future__ import annotations

import pytest

from service.backends.embedded.critic import EmbeddedCritic
from service.core.embedder import Embedder
from service.engine.critique_reward import (
    CritiqueCase,
    CritiqueResult,
    reward_critique,
    reward_critiques,
)

PROMPT = "Debate: Ban plastic water bottles?\nGive the most convincing argument for the stance: yes"
R1 = (
    "Plastic bottles fill landfills and oceans: millions of tonnes of plastic reach the sea "
    "every year, killing seabirds and turtles."
)
R2 = "People who disagree with me are idiots. Ban them already."
HUMAN = "A1 uses statistics to back up its point. A2 just insults people."
GOOD = "Response 1 supports its claim with statistics. Response 2 is nothing but insults. Response 1 is better."


@pytest.fixture(scope="module")
def critic(embedder: Embedder) -> EmbeddedCritic:
    return EmbeddedCritic(embedder)


async def judge(critic: EmbeddedCritic, critique: str, **fields: object) -> CritiqueResult:
    case: dict[str, object] = {
        "prompt": PROMPT,
        "responses": (R1, R2),
        "critique": critique,
        "human_choice": 1,
        "human_critique": HUMAN,
    }
    return await reward_critique(critic, CritiqueCase(**(case | fields)))  # type: ignore[arg-type]


async def test_right_choice_with_the_humans_reasons_is_1_5(critic: EmbeddedCritic) -> None:
    out = await judge(critic, GOOD)
    assert (out.outcome, out.format_ok, out.model_choice) == (1, True, 1)
    assert [(a.target, a.polarity) for a in out.human_arguments] == [
        ("1", "positive"),
        ("2", "negative"),
    ]
    assert [(m.model, m.human) for m in out.matches] == [(0, 0), (1, 1)]
    assert out.f1 == 1.0 and out.process == 0.5 and out.reward == 1.5


async def test_wrong_choice_gets_no_process_term_even_with_high_f1(critic: EmbeddedCritic) -> None:
    out = await judge(critic, GOOD, model_choice=2)
    assert out.outcome == 0 and out.f1 is not None and out.f1 >= 0.5
    assert out.critique_choice == 1 and out.model_choice == 2  # the explicit choice is scored
    assert (out.process, out.reward) == (0.0, 0.0)


async def test_right_choice_with_other_reasons_is_1_0(critic: EmbeddedCritic) -> None:
    out = await judge(critic, "Response 1 is longer and more formal. Response 1 is better.")
    assert out.outcome == 1 and out.f1 is not None and out.f1 < 0.5
    assert (out.process, out.reward) == (0.0, 1.0)


async def test_a_bare_verdict_earns_the_outcome_only(critic: EmbeddedCritic) -> None:
    out = await judge(critic, "Response 1 is better.")
    found = out.agreement
    assert out.model_arguments == () and (found.precision, found.recall, found.f1) == (0, 0, 0)
    assert out.reward == 1.0


async def test_format_errors_are_minus_one(critic: EmbeddedCritic) -> None:
    no_verdict = await judge(critic, "Both responses have their merits.")
    assert (no_verdict.format_ok, no_verdict.format_error) == (False, "no_choice")
    assert (no_verdict.outcome, no_verdict.process, no_verdict.reward) == (0, 0.0, -1.0)
    empty = await judge(critic, "", model_choice=1)  # a choice, but no critique to reward
    assert (empty.format_error, empty.reward) == ("empty_critique", -1.0)
    stated = await judge(critic, "Both responses have their merits.", model_choice=1)
    assert stated.format_ok and stated.reward == 1.0  # the caller gave the choice


async def test_without_a_human_critique_the_reward_is_the_outcome(critic: EmbeddedCritic) -> None:
    out = await judge(critic, GOOD, human_critique=None)
    assert out.f1 is None and out.human_arguments == () and out.matches == ()
    assert (out.outcome, out.process, out.reward) == (1, 0.0, 1.0)


async def test_same_meaning_with_another_stance_does_not_match(critic: EmbeddedCritic) -> None:
    swapped = (
        "Response 2 supports its claim with statistics. Response 1 is nothing but insults. "
        "Final answer: 1"
    )
    out = await judge(critic, swapped)
    assert out.outcome == 1 and out.matches == () and out.reward == 1.0
    praise_flipped = (
        "Response 1 does not use any statistics. Response 2 is polite and never insults "
        "anyone. Final answer: 1"
    )
    out = await judge(critic, praise_flipped)
    assert out.matches == () and out.reward == 1.0


async def test_many_cases_in_order(critic: EmbeddedCritic) -> None:
    cases = [
        CritiqueCase(PROMPT, (R1, R2), c, 1, human_critique=HUMAN)
        for c in (GOOD, "Response 1 is better.", "no verdict here")
    ]
    assert [r.reward for r in await reward_critiques(critic, cases, concurrency=2)] == [
        1.5,
        1.0,
        -1.0,
    ]
