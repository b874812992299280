"""veRL: a custom reward function (`compute_score`) scored by a pgenrm service.

veRL (0.9) loads this module (by import, or by file path) and awaits `compute_score` once per
response:

    reward.custom_reward_function.path=pkg://pgenrm_client.verl   # or this file's path
    reward.custom_reward_function.name=compute_score
    +reward.custom_reward_function.reward_kwargs.url=http://pgenrm:8000   # or env PGENRM_URL

veRL hands the function the decoded response only, so the prompt and the user come from the
dataset's `extra_info` column: `extra_info["prompt"]` (a string or a list of messages) and
`extra_info["user_id"]` (other keys: `prompt_key`, `user_key` in reward_kwargs). Other
reward_kwargs: `fallback` (reward for a response the service could not score; default: raise),
`normalize` (`unit`), `scaling` ({"ind": N, "pro": M}), `unknown_user` (`error`|`cold_start`).

The result is `{"score", "pgenrm_score", "pgenrm_score_std", "pgenrm_valid"}`, the same keys
for every response (veRL builds its metric arrays from the first response's keys).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Absolute imports: veRL executes this file outside its package.
from pgenrm_client._adapters import Item, completion_text, option_float, prompt_of, score_items
from pgenrm_client._shared import async_client
from pgenrm_client.errors import NotScoredError
from pgenrm_client.types import ScoreOptions

KEYS = ("score", "pgenrm_score", "pgenrm_score_std", "pgenrm_valid")


def _options(kwargs: Mapping[str, Any]) -> ScoreOptions:
    options: ScoreOptions = {"normalize": kwargs.get("normalize", "unit"), "return_traces": "none"}
    if kwargs.get("scaling") is not None:
        options["scaling"] = dict(kwargs["scaling"])  # type: ignore[typeddict-item]
    if kwargs.get("unknown_user") is not None:
        options["unknown_user"] = kwargs["unknown_user"]
    fallback = option_float(kwargs.get("fallback"))
    if fallback is not None:
        options["fallback"] = fallback
    return options


async def compute_score(
    data_source: Any,
    solution_str: str,
    ground_truth: Any,
    extra_info: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> dict[str, float]:
    """The reward of one response (`solution_str`) for the prompt and user in `extra_info`."""
    info = dict(extra_info or {})
    user_key = str(kwargs.get("user_key", "user_id"))
    prompt_key = str(kwargs.get("prompt_key", "prompt"))
    missing = [k for k in (user_key, prompt_key) if info.get(k) is None]
    if missing:
        raise KeyError(
            f"pgenrm compute_score needs extra_info[{missing[0]!r}] (the dataset's extra_info "
            f"column carries the prompt and the user id); extra_info has {sorted(info)}"
        )
    item = Item(str(info[user_key]), prompt_of(info[prompt_key]), completion_text(solution_str))
    options = _options(kwargs)
    [scored] = await score_items(
        async_client(kwargs.get("url")), [item], options, key_prefix="verl"
    )
    fallback = options.get("fallback")
    reward = scored.reward(fallback)
    if reward is None:
        raise NotScoredError(
            f"pgenrm could not score a response for user {item.user_id!r} ({scored.why()}); set "
            "reward_kwargs.fallback to train on anyway",
            type="not_scored",
        )
    result = scored.result
    if result is None or result["status"] != "ok" or result["score"] is None:
        return {"score": reward, "pgenrm_score": 0.0, "pgenrm_score_std": 0.0, "pgenrm_valid": 0.0}
    return {
        "score": reward,
        "pgenrm_score": float(result["score"]),
        "pgenrm_score_std": float(result["score_std"] or 0.0),
        "pgenrm_valid": 1.0,
    }
