"""The OpenAI-compatible critic over real HTTP to the simulator, and its defensive reading."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest

from service.backends.openai.backend import OpenAIBackend, OpenAIOptions
from service.backends.openai.critic import OpenAICritic, first_object, read_arguments, read_pairs
from service.engine.critic import CriticError
from service.engine.critique_reward import CritiqueCase, reward_critique
from service.testing.simulator_process import Simulator
from tests.critique.test_embedded_reward import GOOD, HUMAN, PROMPT, R1, R2
from tests.critique.test_reading import PGENRM_TEXT


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with Simulator() as running:
        yield running


async def started(sim: Simulator, structured: str = "off") -> OpenAIBackend:
    sim.reset(config=True)
    backend = OpenAIBackend(
        OpenAIOptions(
            urls=(sim.url,),
            retries=0,
            read_timeout_s=5.0,
            health_interval_s=0.2,
            structured=structured,  # type: ignore[arg-type]
        )
    )
    await backend.start()
    return backend


@pytest.fixture
async def critic(sim: Simulator) -> AsyncIterator[OpenAICritic]:
    backend = await started(sim)
    yield OpenAICritic(backend)
    await backend.close()


def case(critique: str = GOOD, **fields: object) -> CritiqueCase:
    base: dict[str, object] = {"human_choice": 1, "human_critique": HUMAN}
    return CritiqueCase(PROMPT, (R1, R2), critique, **(base | fields))  # type: ignore[arg-type]


async def test_the_real_http_path_rewards_agreeing_reasons(
    critic: OpenAICritic, sim: Simulator
) -> None:
    out = await reward_critique(critic, case())
    assert (out.outcome, out.format_ok, out.reward, out.f1) == (1, True, 1.5, 1.0)
    assert [(a.target, a.polarity) for a in out.human_arguments] == [
        ("1", "positive"),
        ("2", "negative"),
    ]
    assert {a.target_from for a in (*out.model_arguments, *out.human_arguments)} == {"model"}
    assert out.critic == "pgenrm-simulator" and out.similarity_threshold == 0.5
    log = sim.stats()["log"]
    assert len(log) == 3 and not any(e["structured"] for e in log)  # 2 extractions, 1 matching


async def test_wrong_choice_and_no_human_critique(critic: OpenAICritic, sim: Simulator) -> None:
    wrong = await reward_critique(critic, case(model_choice=2))
    assert (wrong.outcome, wrong.process, wrong.reward) == (0, 0.0, 0.0)
    sim.reset()
    alone = await reward_critique(critic, case(human_critique=None))
    assert (alone.reward, alone.f1) == (1.0, None)
    assert sim.stats()["requests"] == 1  # the model's critique only: nothing to match


async def test_a_chain_needs_no_extraction_of_its_own(critic: OpenAICritic, sim: Simulator) -> None:
    out = await reward_critique(critic, case(PGENRM_TEXT))
    assert out.format_ok and out.model_choice == 1
    assert {a.target_from for a in out.model_arguments} == {"chain"}
    assert sim.stats()["requests"] == 2  # the human's extraction, then the matching


@pytest.mark.parametrize("mode", ["structured_outputs", "response_format"])
async def test_structured_outputs_when_enabled(sim: Simulator, mode: str) -> None:
    backend = await started(sim, structured=mode)
    out = await reward_critique(OpenAICritic(backend), case())
    assert out.reward == 1.5
    assert all(e["structured"] for e in sim.stats()["log"])
    await backend.close()


async def test_unreadable_answers_and_dead_workers_fail_the_critic(
    critic: OpenAICritic, sim: Simulator
) -> None:
    sim.configure(malformed_rate=1.0, malformed_kinds=["prose"])
    with pytest.raises(CriticError) as unreadable:
        await reward_critique(critic, case())
    assert unreadable.value.reason == "unreadable_output" and not unreadable.value.unavailable
    sim.configure(malformed_rate=0.0, down=True)
    with pytest.raises(CriticError) as failed:
        await reward_critique(critic, case())
    assert not failed.value.unavailable  # a 503 answer: the worker is there, failing
    for _ in range(200):  # until the health probe marks the worker down
        if not critic.ready:
            break
        await asyncio.sleep(0.05)
    with pytest.raises(CriticError) as down:
        await reward_critique(critic, case())
    assert down.value.unavailable  # nobody to ask: the API answers 503


def test_json_is_found_wherever_the_model_put_it() -> None:
    fenced = 'Here you go:\n```json\n{"arguments": [{"text": "x", "target": "1", "polarity": "positive"}]}\n```'
    assert first_object(fenced, "arguments") == {
        "arguments": [{"text": "x", "target": "1", "polarity": "positive"}]
    }
    assert first_object('[{"text": "x"}]', "arguments") == {"arguments": [{"text": "x"}]}
    assert first_object('{"other": 1} then {"pairs": []}', "pairs") == {"pairs": []}
    assert first_object("no json here", "pairs") is None
    assert first_object('{"arguments": "not a list"}', "arguments") is None


def test_items_are_normalised_or_dropped_one_by_one() -> None:
    items: list[object] = [
        {"text": "Cites data", "target": "Response 1", "polarity": "Positive"},
        {"text": "Rude", "target": 2, "polarity": "criticism"},
        {"text": "Both polite", "target": "both", "polarity": "praise"},
        {"text": "Unclear whom", "target": None, "polarity": "negative"},
        {"text": "No polarity", "target": "1", "polarity": "meh"},
        {"text": "", "target": "1", "polarity": "positive"},
        "not an object",
    ]
    assert [(a.text, a.target, a.polarity) for a in read_arguments(items)] == [
        ("Cites data", "1", "positive"),
        ("Rude", "2", "negative"),
        ("Both polite", "both", "positive"),
        ("Unclear whom", None, "negative"),
    ]
    pairs: list[object] = [
        {"model": 1, "human": 2, "similarity": 0.9},
        {"model": "M2", "human": "H1", "similarity": "0.7"},
        {"model": 2, "human": 1, "same": True},
        {"model": 3, "human": 1, "similarity": 0.9},  # no third model argument
        {"model": True, "human": 1, "similarity": 0.9},
        {"model": 1, "human": 1, "similarity": 7},  # clipped to 1
    ]
    assert read_pairs(pairs, 2, 2) == [(0, 1, 0.9), (1, 0, 0.7), (1, 0, 1.0), (0, 0, 1.0)]
