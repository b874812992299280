"""OpenRLHF's reward-function file and slime's custom reward functions, called the way those
trainers call them, against a real `pgenrm serve`."""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import pgenrm_client.openrlhf
import pytest
from pgenrm_client import NotScoredError, PgenrmClient, aclose_shared_clients, close_shared_clients
from pgenrm_client.slime import batched_rm, rm

from tests.clients.support import history, requests_total
from tests.helpers import LONG, SHORT

pytestmark = pytest.mark.slow  # a real server

PROMPT = "How long should I steep green tea?"
EGG = "How do I boil an egg?"


@pytest.fixture(scope="module")
def terse(server: str) -> str:
    name = f"terse-{uuid.uuid4().hex[:6]}"
    with PgenrmClient(server) as client:
        client.put_user(name, history("short"))
    return name


def direct(server: str, user: str, prompt: str, *candidates: str) -> list[float | None]:
    with PgenrmClient(server) as client:
        out = client.score(user, list(candidates), prompt=prompt, return_traces="none")
    return [s["reward"] for s in out["scores"]]


# -- OpenRLHF ------------------------------------------------------------------------------


@pytest.fixture
def reward_file(server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """The file as OpenRLHF loads it (`--reward.remote_url /path/to/openrlhf.py`)."""
    monkeypatch.setenv("PGENRM_URL", server)
    path = pgenrm_client.openrlhf.__file__
    spec = importlib.util.spec_from_file_location("reward_func", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module
    close_shared_clients()


async def test_openrlhf_reward_func(server: str, terse: str, reward_file: ModuleType) -> None:
    before = requests_total(server, "/get_reward")
    label = json.dumps({"user_id": terse, "prompt": PROMPT})
    # SingleTurnAgentExecutor: asyncio.to_thread(reward_func, queries, prompts, labels)
    out = await asyncio.to_thread(
        reward_file.reward_func, [f"<s>{PROMPT} {SHORT}</s>"], [f"<s>{PROMPT}"], [label]
    )
    assert set(out) == {"rewards", "scores", "extra_logs"}
    assert isinstance(out["rewards"], list) and isinstance(out["scores"], list)
    assert out["rewards"] == direct(server, terse, PROMPT, SHORT)
    assert all(isinstance(v, list) and len(v) == 1 for v in out["extra_logs"].values())
    plain = await asyncio.to_thread(  # a plain user id as the label; the prompt read from `prompts`
        reward_file.reward_func, [f"{EGG} {LONG}"], [EGG], [terse]
    )
    assert plain["rewards"] == direct(server, terse, EGG, LONG)
    assert requests_total(server, "/get_reward") - before == 2


# -- slime ---------------------------------------------------------------------------------


@dataclass
class Sample:
    """The fields of slime's `Sample` (slime/utils/types.py) that a reward function reads."""

    prompt: str | list[dict[str, str]] = ""
    response: str = ""
    label: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    reward: float | dict[str, Any] | None = None
    index: int | None = None
    group_index: int | None = None
    response_length: int = 0


@pytest.fixture
async def shared() -> AsyncIterator[None]:
    yield
    await aclose_shared_clients()


async def test_slime_rm_reads_the_user_from_metadata_or_label(
    server: str, terse: str, shared: None
) -> None:
    args = argparse.Namespace(pgenrm_url=server)
    expected = direct(server, terse, PROMPT, SHORT)[0]
    assert (
        await rm(args, Sample(prompt=PROMPT, response=SHORT, metadata={"user_id": terse}))
        == expected
    )
    assert await rm(args, Sample(prompt=PROMPT, response=SHORT, label=terse)) == expected
    messages = [{"role": "user", "content": PROMPT}]
    assert await rm(args, Sample(prompt=messages, response=SHORT, label=terse)) == expected
    templated = Sample(  # slime applied a chat template: the plain prompt rides in metadata
        prompt=f"<|im_start|>user\n{PROMPT}<|im_end|>\n<|im_start|>assistant\n",
        response=SHORT,
        metadata={"user_id": terse, "prompt": PROMPT},
    )
    assert await rm(args, templated) == expected
    with pytest.raises(KeyError, match="user id"):
        await rm(args, Sample(prompt=PROMPT, response=SHORT))


async def test_slime_batched_rm_makes_one_call_per_group(
    server: str, terse: str, shared: None
) -> None:
    args = argparse.Namespace(pgenrm_url=server)
    samples = [
        Sample(prompt=PROMPT, response=SHORT, label=terse, index=0),
        Sample(prompt=EGG, response=SHORT, label=terse, index=1),
        Sample(prompt=PROMPT, response=LONG, label=terse, index=2),
        Sample(prompt=EGG, response=LONG, label=terse, index=3),
    ]
    before = requests_total(server, "/v1/score")
    rewards = await batched_rm(args, samples)
    assert requests_total(server, "/v1/score") - before == 2
    assert all(isinstance(r, float) for r in rewards)
    tea, egg = direct(server, terse, PROMPT, SHORT, LONG), direct(server, terse, EGG, SHORT, LONG)
    assert rewards == [tea[0], egg[0], tea[1], egg[1]]


async def test_slime_zscore_and_fallback(
    server: str, terse: str, shared: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    args = argparse.Namespace()  # the URL from PGENRM_URL
    monkeypatch.setenv("PGENRM_URL", server)
    monkeypatch.setenv("PGENRM_REWARD_NORMALIZE", "zscore")
    group = [Sample(prompt=PROMPT, response=text, label=terse) for text in (SHORT, LONG)]
    rewards = await batched_rm(args, group)
    assert rewards[0] > 0 > rewards[1] and rewards[0] == pytest.approx(-rewards[1])

    monkeypatch.setenv("PGENRM_REWARD_NORMALIZE", "unit")
    blank = Sample(prompt=PROMPT, response="  ", label=terse)
    with pytest.raises(NotScoredError, match="PGENRM_FALLBACK_REWARD"):
        await rm(args, blank)  # slime needs a number: no made-up one
    monkeypatch.setenv("PGENRM_FALLBACK_REWARD", "-0.5")
    assert await batched_rm(args, [blank, group[0]]) == [
        -0.5,
        direct(server, terse, PROMPT, SHORT)[0],
    ]
