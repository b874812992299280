"""Capacity plan: gateway cores and vLLM GPUs for a target rate of scored rollouts.

    .venv/bin/python -m bench.capacity --rollouts-per-s 64 256 1024 --ind 8 --pro 4 \\
        --group 8 --chain-tokens 700 --decode-tokens-per-s 6000 \\
        [--fanout-json fanout.json | --gateway-cpu-ms 4.5] [--measure-tokens] [--json]

A rollout is one trainer sample to reward; a group of `--group` rollouts (GRPO's group, or one
/v1/score call's candidates) is scored by one call of Ind-N + Pro-M evaluation-chain samples,
each chain reading all the group's candidates. So per second:

    calls       = rollouts / group
    decode      = calls x (N + M) x chain_tokens            output tokens for vLLM to generate
    prefill     = calls x (prompt_ind + M x prompt_pro)     new prompt tokens (the N individual
                  samples share one prompt through n=N; prefix caching keeps shared prefixes)
    GPUs        = ceil((decode / decode_tps + prefill / prefill_tps) / gpu_utilisation)
    cores       = calls x cpu_ms(N + M) / 1000 / cpu_utilisation

`cpu_ms` is the gateway's CPU per score measured by bench/fanout.py (Ind-16,Pro-8: 24 samples),
scaled by sample count; decode and prefill throughputs per GPU are given (measure them on your
GPUs: vLLM's "generation tokens/s" panel at saturation). `--measure-tokens` replaces the chain
and prompt token counts with what the simulator produces for this request shape (its chains are
shorter than P-GenRM-8B's: use it for the prompt side, give --chain-tokens from real traces).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

FANOUT_SAMPLES = 16 + 8  # bench/fanout.py scores Ind-16,Pro-8


@dataclass(frozen=True)
class Inputs:
    ind: int
    pro: int
    group: int
    chain_tokens: float
    prompt_tokens_ind: float
    prompt_tokens_pro: float
    decode_tokens_per_s: float
    prefill_tokens_per_s: float
    gateway_cpu_ms: float  # per score of FANOUT_SAMPLES samples
    gpu_utilisation: float
    cpu_utilisation: float
    cores_per_pod: int


def plan(inputs: Inputs, rollouts_per_s: float) -> dict[str, float]:
    """One row of the table: what `rollouts_per_s` needs under `inputs`."""
    i = inputs
    samples = i.ind + i.pro
    calls = rollouts_per_s / i.group
    decode = calls * samples * i.chain_tokens
    prefill = calls * ((i.prompt_tokens_ind if i.ind else 0) + i.pro * i.prompt_tokens_pro)
    gpu_busy = decode / i.decode_tokens_per_s + prefill / i.prefill_tokens_per_s
    cpu_ms = i.gateway_cpu_ms * samples / FANOUT_SAMPLES
    cores = calls * cpu_ms / 1000 / i.cpu_utilisation
    return {
        "rollouts_per_s": rollouts_per_s,
        "score_calls_per_s": calls,
        "samples_per_s": calls * samples,
        "decode_tokens_per_s": decode,
        "prefill_tokens_per_s": prefill,
        "gpus": max(1, math.ceil(gpu_busy / i.gpu_utilisation)),
        "gateway_cores": max(1, math.ceil(cores)),
        "gateway_pods": max(1, math.ceil(cores / i.cores_per_pod)),
    }


def measure_tokens(ind: int, pro: int, group: int) -> tuple[float, float, float]:
    """(chain tokens per sample, prompt tokens of the individual request, of a neighbour's)
    for one Ind-N,Pro-M score of `group` candidates, as the simulator counts them."""
    from bench.fanout import HISTORY, FixedNeighbours
    from service.backends.openai.backend import OpenAIBackend, OpenAIOptions
    from service.core.inputs import Message, ScoringTask
    from service.engine.scaling import Scaling
    from service.engine.scorer import EngineOptions, ScoringEngine
    from service.testing.simulator_process import Simulator

    task = ScoringTask(
        (Message("user", "How should I plan a weekend trip?"),),
        tuple(f"Candidate {c}: pick a place, book early, pack light. " * 3 for c in range(group)),
    )

    async def run(url: str) -> None:
        backend = OpenAIBackend(OpenAIOptions(urls=(url,), model="pgenrm-simulator"))
        await backend.start()
        engine = ScoringEngine(backend, FixedNeighbours(), EngineOptions(parse_retries=0))
        await engine.score("u", HISTORY, task, Scaling(ind, pro))
        await backend.close()

    with Simulator() as sim:
        asyncio.run(run(sim.url))
        stats = sim.stats()
    log = [e for e in stats["log"] if e.get("n")]
    chain = stats["completion_tokens"] / max(1, stats["choices"])
    by_n = sorted(log, key=lambda e: -int(e["n"]))
    prompt_ind = float(by_n[0]["prompt_tokens"]) if ind and by_n else 0.0
    rest = [float(e["prompt_tokens"]) for e in (by_n[1:] if ind else by_n)]
    prompt_pro = sum(rest) / len(rest) if rest else prompt_ind
    return chain, prompt_ind, prompt_pro


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--rollouts-per-s", type=float, nargs="+", default=[64, 256, 1024])
    p.add_argument("--ind", type=int, default=8, help="Ind-N samples per score")
    p.add_argument("--pro", type=int, default=4, help="Pro-M samples per score")
    p.add_argument("--group", type=int, default=8, help="rollouts (candidates) per score call")
    p.add_argument("--chain-tokens", type=float, default=700, help="output tokens per chain")
    p.add_argument("--prompt-tokens-ind", type=float, default=2500)
    p.add_argument("--prompt-tokens-pro", type=float, default=2500)
    p.add_argument("--measure-tokens", action="store_true", help="count tokens on the simulator")
    p.add_argument(
        "--decode-tokens-per-s", type=float, default=6000, help="output tokens/s one GPU sustains"
    )
    p.add_argument("--prefill-tokens-per-s", type=float, default=40000, help="per GPU")
    p.add_argument("--gateway-cpu-ms", type=float, default=4.5, help="per Ind-16,Pro-8 score")
    p.add_argument("--fanout-json", type=Path, help="bench/fanout.py --json output (last line)")
    p.add_argument("--gpu-utilisation", type=float, default=0.8, help="headroom kept on GPUs")
    p.add_argument("--cpu-utilisation", type=float, default=0.7, help="the HPA's CPU target")
    p.add_argument("--cores-per-pod", type=int, default=2, help="PGENRM_WORKERS per pod")
    p.add_argument("--json", action="store_true", help="print one JSON object last")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    cpu_ms = args.gateway_cpu_ms
    if args.fanout_json is not None:
        last = args.fanout_json.read_text().strip().splitlines()[-1]
        cpu_ms = float(json.loads(last)["cpu_ms_per_score_median"])
    chain, prompt_ind, prompt_pro = (
        measure_tokens(args.ind, args.pro, args.group)
        if args.measure_tokens
        else (args.chain_tokens, args.prompt_tokens_ind, args.prompt_tokens_pro)
    )
    inputs = Inputs(
        ind=args.ind,
        pro=args.pro,
        group=args.group,
        chain_tokens=chain,
        prompt_tokens_ind=prompt_ind,
        prompt_tokens_pro=prompt_pro,
        decode_tokens_per_s=args.decode_tokens_per_s,
        prefill_tokens_per_s=args.prefill_tokens_per_s,
        gateway_cpu_ms=cpu_ms,
        gpu_utilisation=args.gpu_utilisation,
        cpu_utilisation=args.cpu_utilisation,
        cores_per_pod=args.cores_per_pod,
    )
    rows = [plan(inputs, rate) for rate in args.rollouts_per_s]
    print(
        f"Ind-{inputs.ind},Pro-{inputs.pro}, {inputs.group} rollouts per call, "
        f"{inputs.chain_tokens:.0f} chain tokens, {inputs.decode_tokens_per_s:.0f} decode "
        f"tokens/s per GPU, {inputs.gateway_cpu_ms:.2f} ms gateway CPU per Ind-16,Pro-8 score\n"
    )
    print(
        "| rollouts/s | score calls/s | samples/s | decode tok/s | prefill tok/s | vLLM GPUs "
        "| gateway cores | gateway pods |"
    )
    print("|" + " ---: |" * 8)
    for r in rows:
        print(
            f"| {r['rollouts_per_s']:g} | {r['score_calls_per_s']:.1f} | {r['samples_per_s']:.0f} "
            f"| {r['decode_tokens_per_s']:.0f} | {r['prefill_tokens_per_s']:.0f} | {r['gpus']} "
            f"| {r['gateway_cores']} | {r['gateway_pods']} |"
        )
    if args.json:
        result: dict[str, Any] = {"inputs": asdict(inputs), "rows": rows}
        print(json.dumps(result))


if __name__ == "__main__":
    main()
