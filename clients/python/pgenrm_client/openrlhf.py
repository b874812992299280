"""OpenRLHF: a reward-function file for `--reward.remote_url`, scored by a pgenrm service.

    export PGENRM_URL=http://pgenrm:8000
    --reward.remote_url $(python -c 'import pgenrm_client.openrlhf as m; print(m.__file__)')

OpenRLHF loads this file by path and calls `reward_func(queries, prompts, labels)` in a thread,
one sample at a time. It is forwarded to the service's `/get_reward` with retries, a deadline,
an idempotency key and the bearer key (PGENRM_API_KEY). The dataset's label column
(`--data.label_key`) names the user: a plain user id, or a JSON object `{"user_id",
"group_id"?, "group_size"?, "prompt"?, "fallback_reward"?, "reward"?: "unit"|"zscore"}`.
(Pointing `--reward.remote_url` at `http://pgenrm:8000/get_reward` also works, without this
client's retries and deadline.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

# Absolute imports: OpenRLHF executes this file outside its package.
from pgenrm_client._shared import sync_client


def reward_func(
    queries: Sequence[str], prompts: Sequence[str], labels: Sequence[str], **kwargs: Any
) -> dict[str, Any]:
    """`{"rewards": [...], "scores": [...], "extra_logs": {name: [...]}}`, one value per query,
    as plain lists (OpenRLHF turns them into tensors)."""
    client = sync_client(kwargs.get("url"))
    answer = client.get_reward(list(queries), list(prompts), list(labels))
    return {
        "rewards": [float(r) for r in answer["rewards"]],
        "scores": [float(s) for s in answer["scores"]],
        "extra_logs": {k: [float(v) for v in vs] for k, vs in answer["extra_logs"].items()},
    }
