"""`/get_reward`: OpenRLHF's remote reward-model contract, served by the same scorer.

OpenRLHF decodes prompt + response with special tokens kept and posts it as `query`, the
prompt alone as `prompts`, and the dataset's label column as `labels`. Here the response is
`query` minus its prompt, with trailing special tokens (EOS, padding) removed; the prompt text
the scorer reads is the last user turn of the chat-templated prompt (ChatML, Llama 3 and
Gemma/Mistral-style templates are recognised; a label may give it plainly as `"prompt"`). A
label is a JSON object naming the user (and optionally the sample's group), or a plain user id.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from typing import Any

from service.api.schemas.openrlhf import RewardRequest, RewardResponse
from service.api.schemas.score import GroupRef, RewardOptions, ScoreRequest, ScoreResponse
from service.api.serving import ScoreService
from service.core.errors import InvalidRequest, ScoringFailed
from service.core.keys import DEFAULT_TENANT

_SPECIAL = r"<\|[^<>|]{1,40}\|>|</s>|<s>|<pad>|<eos>|<bos>|<end_of_turn>|<start_of_turn>|\[/?INST\]"
_TRAILING = re.compile(rf"(?:\s*(?:{_SPECIAL}))+\s*$")
_CHATML = re.compile(r"<\|im_start\|>user\s*\n(.*?)(?:<\|im_end\|>|$)", re.DOTALL)
_LLAMA3 = re.compile(
    r"<\|start_header_id\|>user<\|end_header_id\|>\s*(.*?)(?:<\|eot_id\|>|$)", re.DOTALL
)
_GEMMA = re.compile(r"<start_of_turn>user\s*\n(.*?)(?:<end_of_turn>|$)", re.DOTALL)
_MISTRAL = re.compile(r"\[INST\](.*?)\[/INST\]", re.DOTALL)
_ANY_SPECIAL = re.compile(_SPECIAL)


def response_of(query: str, prompt: str) -> str:
    """The response part of `query`, without the special tokens that close it."""
    if query.startswith(prompt):
        rest = query[len(prompt) :]
    else:
        at = query.rfind(prompt) if prompt else -1
        if at < 0:
            raise ValueError("the query does not contain its prompt")
        rest = query[at + len(prompt) :]
    return _TRAILING.sub("", rest).strip()


def plain_prompt(prompt: str) -> str:
    """The last user turn of a chat-templated prompt (the prompt itself when untemplated)."""
    for pattern in (_CHATML, _LLAMA3, _GEMMA, _MISTRAL):
        turns = pattern.findall(prompt)
        if turns:
            return str(turns[-1]).strip()
    return _ANY_SPECIAL.sub("", prompt).strip()


@dataclass(frozen=True)
class Label:
    user_id: str
    group_id: str | None = None
    group_size: int | None = None
    prompt: str | None = None
    fallback_reward: float | None = None
    reward: str = "unit"
    unknown_user: str = "error"


def parse_label(raw: str | None) -> Label:
    text = (raw or "").strip()
    if not text:
        raise ValueError('a label must name the user: {"user_id": ...} or the user id itself')
    if not text.startswith("{"):
        return Label(user_id=text)
    try:
        data: dict[str, Any] = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"the label is not valid JSON: {error.msg}") from error
    if not isinstance(data.get("user_id"), str) or not data["user_id"]:
        raise ValueError("the label has no `user_id`")
    size = data.get("group_size")
    return Label(
        user_id=data["user_id"],
        group_id=None if data.get("group_id") is None else str(data["group_id"]),
        group_size=None if size is None else int(size),
        prompt=data.get("prompt"),
        fallback_reward=data.get("fallback_reward"),
        reward=str(data.get("reward", "unit")),
        unknown_user=str(data.get("unknown_user", "error")),
    )


class OpenRLHFService:
    def __init__(self, scorer: ScoreService) -> None:
        self.scorer = scorer

    def _request(self, query: str, prompt: str, raw_label: str | None, i: int) -> ScoreRequest:
        try:
            label = parse_label(raw_label)
            response = response_of(query, prompt)
            group = None
            if label.group_id is not None:
                if label.group_size is None:
                    raise ValueError("a label with `group_id` needs `group_size`")
                group = GroupRef(id=label.group_id, size=label.group_size)
            return ScoreRequest.model_validate(
                {
                    "user_id": label.user_id,
                    "prompt": label.prompt or plain_prompt(prompt) or prompt,
                    "candidates": [response],
                    "group": group,
                    "reward": RewardOptions.model_validate(
                        {"normalize": label.reward, "fallback": label.fallback_reward}
                    ),
                    "unknown_user": label.unknown_user,
                    "return_traces": "none",
                }
            )
        except ValueError as error:  # pydantic's ValidationError is a ValueError too
            raise InvalidRequest(f"sample {i}: {error}", field=f"labels[{i}]") from error

    async def get_reward(self, body: RewardRequest, tenant: str = DEFAULT_TENANT) -> RewardResponse:
        n = len(body.query)
        labels = body.labels if body.labels is not None else [""] * n
        if len(body.prompts) != n or len(labels) != n:
            raise InvalidRequest(
                f"`query` ({n}), `prompts` ({len(body.prompts)}) and `labels` ({len(labels)}) "
                "must have the same length",
                field="prompts",
            )
        requests = [
            self._request(q, p, label, i)
            for i, (q, p, label) in enumerate(zip(body.query, body.prompts, labels, strict=True))
        ]
        answers = await asyncio.gather(*(self.scorer.score(r, tenant) for r in requests))
        return _rewards(answers)


def _rewards(answers: list[ScoreResponse]) -> RewardResponse:
    rewards, scores = [], []
    logs: dict[str, list[float]] = {
        "pgenrm_score": [],
        "pgenrm_score_std": [],
        "pgenrm_valid_samples": [],
        "pgenrm_group_arrived": [],
        "pgenrm_fallback": [],
    }
    for i, answer in enumerate(answers):
        result = answer.scores[0]
        if result.reward is None:
            raise ScoringFailed(
                f"sample {i} has no reward ({result.reason}); give the label a "
                "`fallback_reward` to train on anyway",
                field=f"query[{i}]",
            )
        rewards.append(result.reward)
        score = result.score
        # a fallback sample's "score" (OpenRLHF filters on it) is its reward, clipped to 0..1
        unit = min(1.0, max(0.0, result.reward)) if score is None else (score - 1.0) / 9.0
        scores.append(round(unit, 6))
        logs["pgenrm_score"].append(0.0 if score is None else score)
        logs["pgenrm_score_std"].append(result.score_std or 0.0)
        logs["pgenrm_valid_samples"].append(float(result.valid_samples))
        logs["pgenrm_group_arrived"].append(float(answer.group.arrived if answer.group else 1))
        logs["pgenrm_fallback"].append(1.0 if result.fallback else 0.0)
    return RewardResponse(rewards=rewards, scores=scores, extra_logs=logs)
