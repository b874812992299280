"""Run `pgenrm_client.verl.compute_score` through veRL's own reward manager, as veRL 0.9's
reward loop does (`load_reward_manager` -> `NaiveRewardManager.run_single`, one row at a time),
without a GPU, a Ray cluster or a model. Executed by test_verl.py with the veRL environment's
Python (veRL cannot share the main venv):

    python verl_probe.py '{"cases": [{"name", "path", "reward_kwargs", "rows": [...]}]}'

A row is {"user_id", "prompt" (str or messages), "response"}. Prints one JSON line:
{"cases": {name: {"manager", "async", "results": [{"reward_score", "reward_extra_info"}] |
"error": {"type", "message"}}}}.
"""

from __future__ import annotations

import importlib
import json
import sys
from typing import Any


class CharTokenizer:
    """What NaiveRewardManager needs of a tokenizer: `decode` (one token per character)."""

    def decode(self, ids: Any, skip_special_tokens: bool = True) -> str:
        return "".join(chr(int(i)) for i in ids if int(i) != 0)


def batch(rows: list[dict[str, Any]]) -> Any:
    """A DataProto as the rollout leaves it: prompt/response ids, the mask, and the dataset's
    non-tensor columns (`data_source`, `reward_model.ground_truth`, `extra_info`)."""
    np, torch = importlib.import_module("numpy"), importlib.import_module("torch")
    data_proto = importlib.import_module("verl").DataProto
    prompt_len, response_len = 4, max(len(r["response"]) for r in rows) + 1
    n = len(rows)
    prompts = torch.zeros(n, prompt_len, dtype=torch.long)
    responses = torch.zeros(n, response_len, dtype=torch.long)
    mask = torch.zeros(n, prompt_len + response_len, dtype=torch.long)
    for i, row in enumerate(rows):
        prompts[i, -1], mask[i, prompt_len - 1] = ord("p"), 1
        ids = [ord(c) for c in row["response"]]
        responses[i, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        mask[i, prompt_len : prompt_len + len(ids)] = 1
    extra = [
        {"prompt": r["prompt"], "user_id": r["user_id"], "index": i} for i, r in enumerate(rows)
    ]
    return data_proto.from_dict(
        tensors={
            "prompts": prompts,
            "responses": responses,
            "attention_mask": mask,
            "input_ids": torch.cat([prompts, responses], 1),
        },
        non_tensors={
            "data_source": np.array(["pgenrm"] * n, dtype=object),
            "reward_model": np.array([{"ground_truth": "", "style": "model"}] * n, dtype=object),
            "extra_info": np.array(extra, dtype=object),
        },
    )


def run_case(case: dict[str, Any]) -> dict[str, Any]:
    omegaconf = importlib.import_module("omegaconf")
    reward = importlib.import_module("verl.trainer.ppo.reward")
    config = omegaconf.OmegaConf.create(
        {
            "reward": {
                "custom_reward_function": {
                    "path": case["path"],
                    "name": "compute_score",
                    "reward_kwargs": case["reward_kwargs"],
                },
                "reward_manager": {
                    "source": "register",
                    "name": "naive",
                    "module": {"path": None, "name": None},
                },
                "sandbox_fusion": None,
            }
        }
    )
    manager = reward.load_reward_manager(config, CharTokenizer())
    data = batch(case["rows"])
    out: dict[str, Any] = {
        "manager": type(manager).__name__,
        "async": bool(manager.is_async_reward_score),
    }
    try:  # RewardLoopWorker: one run_single per row (data[i:i+1])
        out["results"] = [
            manager.loop.run_until_complete(manager.run_single(data[i : i + 1]))
            for i in range(len(data))
        ]
    except Exception as error:
        out["error"] = {"type": type(error).__name__, "message": str(error)}
    return out


def main() -> None:
    spec = json.loads(sys.argv[1])
    results = {case["name"]: run_case(case) for case in spec["cases"]}
    shared = importlib.import_module("pgenrm_client._shared")
    loop = importlib.import_module("asyncio").get_event_loop()
    loop.run_until_complete(shared.aclose_shared_clients())
    print(json.dumps({"cases": results}, default=float))


if __name__ == "__main__":
    main()
