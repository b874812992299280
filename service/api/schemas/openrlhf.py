"""Wire models of `/get_reward`: OpenRLHF's remote reward-model contract, exactly.

OpenRLHF (`--reward.remote_url`) posts `{"query": [...], "prompts": [...], "labels": [...]}`,
where a query is the decoded prompt + response (special tokens kept), and reads `rewards`,
`scores` (0..1) and `extra_logs` (name -> list of numbers), each as long as `query`.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class RewardRequest(BaseModel):
    # OpenRLHF may send more keys in later versions; they are ignored rather than refused.
    model_config = ConfigDict(extra="ignore")

    query: list[str] = Field(description="Prompt + response as the trainer decoded it.")
    prompts: list[str] = Field(description="The prompt part of each query.")
    labels: list[str] | None = Field(
        None,
        description='Per sample: a JSON object {"user_id", "group_id"?, "group_size"?, '
        '"prompt"?, "fallback_reward"?, "reward"?: "unit"|"zscore"}, or a plain user id.',
    )


class RewardResponse(BaseModel):
    rewards: list[float]
    scores: list[float] = Field(description="The score mapped to 0..1.")
    extra_logs: dict[str, list[float]]
