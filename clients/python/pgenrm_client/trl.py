"""TRL: a reward function for `GRPOTrainer(reward_funcs=[...])` (and TRL's other online trainers
that take reward functions), scored by a pgenrm service.

    from pgenrm_client.trl import make_reward_func
    trainer = GRPOTrainer(..., reward_funcs=[make_reward_func("http://pgenrm:8000")])

The dataset needs a user-id column (`user_column`, default `user_id`) next to `prompt`; the
users' histories are stored in the service (PUT /v1/users/{id}) or read from a dataset column
(`history_column`). TRL passes every extra column to reward functions as a list, one entry per
completion. Completions of the same (user, prompt) are scored together, in one `/v1/score`
call (TRL may give a process only part of a prompt's generations: it scores what it got).
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from pgenrm_client._adapters import Item, completion_text, prompt_of, score_items
from pgenrm_client._shared import async_client
from pgenrm_client.aio import AsyncPgenrmClient
from pgenrm_client.types import (
    GroupRef,
    Normalize,
    Scaling,
    ScoreOptions,
    UnknownUser,
)

RewardFunc = Callable[..., Awaitable[list[float | None]]]


def make_reward_func(
    url: str | None = None,
    *,
    user_column: str = "user_id",
    history_column: str | None = None,
    scaling: Scaling | None = None,
    normalize: Normalize = "unit",
    fallback: float | None = None,
    group_size: int | None = None,
    unknown_user: UnknownUser | None = None,
    name: str = "pgenrm",
    client: AsyncPgenrmClient | None = None,
) -> RewardFunc:
    """An async reward function with TRL's contract:
    `f(prompts, completions, completion_ids, **columns) -> list[float | None]`.

    - `url`: the service (default: env PGENRM_URL); or pass a ready `client` (used on TRL's
      reward event loop only; by default each loop gets its own shared client).
    - `normalize`: `unit` (the 1-10 score mapped to 0..1) or `zscore` (standardised within
      each (user, prompt)'s completions in the call).
    - `fallback`: the reward of a completion the service could not score; by default None,
      which TRL leaves out of that reward's mean (a row no function scored gets advantage 0).
    - `group_size`: set it (to `num_generations`) when a prompt's generations are spread over
      several processes: each completion is then sent as one member of a server-side group of
      `group_size` members, so the whole group is scored together wherever its members are.
    - `name`: TRL logs `rewards/<name>/mean` and `/std`; `<name>/unscored_frac` is logged too.
    """
    options: ScoreOptions = {"normalize": normalize, "return_traces": "none"}
    if scaling is not None:
        options["scaling"] = scaling
    if fallback is not None:
        options["fallback"] = fallback
    if unknown_user is not None:
        options["unknown_user"] = unknown_user
    if group_size is not None and group_size < 1:
        raise ValueError("group_size must be at least 1")
    calls = itertools.count()

    async def reward(
        prompts: Sequence[Any],
        completions: Sequence[Any],
        completion_ids: Sequence[Any] | None = None,
        **kwargs: Any,
    ) -> list[float | None]:
        users = kwargs.get(user_column)
        if users is None:
            raise KeyError(
                f"pgenrm reward `{name}` needs the dataset column `{user_column}` (the user id "
                f"of each prompt); the reward function got: {sorted(kwargs)}"
            )
        histories = kwargs.get(history_column) if history_column else None
        if len(users) != len(completions) or len(prompts) != len(completions):
            raise ValueError(
                f"{len(prompts)} prompts, {len(completions)} completions, {len(users)} users"
            )
        if any(user is None or user == "" for user in users):
            raise ValueError(f"pgenrm reward `{name}`: a row has no `{user_column}`")
        step = getattr(kwargs.get("trainer_state"), "global_step", None)
        call = next(calls)  # TRL's processes call in lockstep: the same count everywhere
        items = [
            Item(
                str(user),
                prompt_of(prompt),
                completion_text(completion),
                None if histories is None else list(histories[i]),
            )
            for i, (user, prompt, completion) in enumerate(
                zip(users, prompts, completions, strict=True)
            )
        ]

        def member_of(item: Item) -> GroupRef:
            assert group_size is not None
            key = "\x1f".join([name, str(step), str(call), *item.group_key()])
            return {"id": hashlib.sha256(key.encode()).hexdigest()[:32], "size": group_size}

        scored = await score_items(
            client or async_client(url),
            items,
            options,
            key_prefix=f"trl:{name}:step{step}:{call}",
            member_group=member_of if group_size else None,
        )
        rewards = [s.reward(fallback) for s in scored]
        log_metric = kwargs.get("log_metric")
        if callable(log_metric) and rewards:
            unscored = sum(1 for s in scored if s.fell_back)
            log_metric(f"{name}/unscored_frac", unscored / len(rewards))
        return rewards

    reward.__name__ = name
    reward.__qualname__ = name
    return reward


__all__ = ["RewardFunc", "make_reward_func"]
