"""slime: custom reward functions (`--custom-rm-path`) scored by a pgenrm service.

    --custom-rm-path pgenrm_client.slime.rm                     # one sample at a time
    --custom-rm-path pgenrm_client.slime.batched_rm --group-rm  # one call per prompt group

The service URL is `args.pgenrm_url` or env PGENRM_URL. The user id is read from
`sample.metadata[PGENRM_USER_KEY]` (default `user_id`), else from `sample.label`
(PGENRM_USER_FROM=metadata|label|auto, default auto). The prompt is `sample.prompt` (a string or
a list of messages) unless `sample.metadata[PGENRM_PROMPT_KEY]` (default `prompt`) gives it,
which is the way to pass the plain prompt when slime applied a chat template. Rewards are
floats: PGENRM_REWARD_NORMALIZE (`unit`, or `zscore` within each group), and
PGENRM_FALLBACK_REWARD for a sample the service could not score (unset: raise).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from pgenrm_client._adapters import Item, completion_text, option_float, prompt_of, score_items
from pgenrm_client._shared import async_client
from pgenrm_client.errors import NotScoredError
from pgenrm_client.types import ScoreOptions


def _user_of(sample: Any) -> str:
    source = os.environ.get("PGENRM_USER_FROM", "auto")
    key = os.environ.get("PGENRM_USER_KEY", "user_id")
    metadata = getattr(sample, "metadata", None) or {}
    if source in ("metadata", "auto") and metadata.get(key) is not None:
        return str(metadata[key])
    label = getattr(sample, "label", None)
    if source in ("label", "auto") and isinstance(label, str) and label:
        return label
    raise KeyError(
        f"pgenrm needs the sample's user id: sample.metadata[{key!r}] or sample.label "
        f"(PGENRM_USER_FROM={source})"
    )


def _item(sample: Any) -> Item:
    metadata = getattr(sample, "metadata", None) or {}
    prompt = metadata.get(os.environ.get("PGENRM_PROMPT_KEY", "prompt")) or sample.prompt
    return Item(_user_of(sample), prompt_of(prompt), completion_text(sample.response))


def _options() -> ScoreOptions:
    normalize = os.environ.get("PGENRM_REWARD_NORMALIZE", "unit")
    if normalize not in ("unit", "zscore"):
        raise ValueError(f"PGENRM_REWARD_NORMALIZE must be unit or zscore, not {normalize!r}")
    options: ScoreOptions = {"normalize": normalize, "return_traces": "none"}  # type: ignore[typeddict-item]
    fallback = option_float(os.environ.get("PGENRM_FALLBACK_REWARD"))
    if fallback is not None:
        options["fallback"] = fallback
    return options


async def batched_rm(args: Any, samples: Sequence[Any], **kwargs: Any) -> list[float]:
    """One reward per sample, in order; samples of the same (user, prompt) in one call."""
    options = _options()
    items = [_item(sample) for sample in samples]
    client = async_client(getattr(args, "pgenrm_url", None))
    scored = await score_items(client, items, options, key_prefix="slime")
    fallback = options.get("fallback")
    rewards: list[float] = []
    for item, outcome in zip(items, scored, strict=True):
        reward = outcome.reward(fallback)
        if reward is None:
            raise NotScoredError(
                f"pgenrm could not score a response for user {item.user_id!r} "
                f"({outcome.why()}); set PGENRM_FALLBACK_REWARD to train on anyway",
                type="not_scored",
            )
        rewards.append(reward)
    return rewards


async def rm(args: Any, sample: Any, **kwargs: Any) -> float:
    """One sample's reward."""
    [reward] = await batched_rm(args, [sample], **kwargs)
    return reward
