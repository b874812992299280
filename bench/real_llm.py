"""The gateway against a real LLM: llama.cpp's OpenAI-compatible server running Gemma 3 270M.

    ./scripts/install_real_llm
    .venv/bin/python -m bench.real_llm [--samples 6] [--max-tokens 256] [--repeats 3] [--json]

Starts `python -m llama_cpp.server` from `.venv-llm` on a free loopback port (or uses `--url`)
and measures, one request at a time as that server serves them:
- tokens/s and chain latency: single-sample chat requests written as the gateway writes them
  (the P-GenRM prompt over a two-pair history, prefilled once first: the server keeps it),
  free text and structured (`json_object`, llama.cpp's dialect, with the overall-scores schema,
  or `--schema chain`);
- parse rate: how many of those samples the gateway's parser turns into a chain with valid 1-10
  scores, and the failures by reason;
- the gateway's added wall time per score: an Ind-1 score through `pgenrm serve` (a real
  subprocess, HTTP in and out, structured `scores`) against the same request sent to the
  server directly, greedy (temperature 0), so both generate the same tokens.
Progress goes to stderr; the figures to stdout (`--json`: one JSON object last).
"""

from __future__ import annotations

import argparse
import signal
import statistics
import sys
import time
from collections import Counter
from typing import Any

import httpx

from bench._table import print_figures
from service.backends.openai.backend import OpenAIBackend, OpenAIOptions
from service.backends.openai.schema import chain_schema, constrained, scores_schema
from service.core.chain import ParseFailure
from service.core.inputs import Message, PreferencePair, ScoringTask
from service.engine.backend import SampleGroup
from service.engine.parsing import parse_scores
from service.testing.llama_server import find_real_llm, llama_server
from service.testing.server_process import served

HISTORY = (
    PreferencePair(
        (Message("user", "How do I boil an egg?"),),
        "Boil it for 9 minutes, then cool it in cold water.",
        "Lower the egg into boiling water and cook it for about nine minutes for a firm yolk. "
        "Then move it into cold water, which stops the cooking and eases peeling.",
    ),
    PreferencePair(
        (Message("user", "What's the capital of Australia?"),),
        "Canberra.",
        "The capital of Australia is Canberra, purpose-built as a compromise between Sydney "
        "and Melbourne and the seat of government since 1927.",
    ),
)
TASK = ScoringTask(
    (Message("user", "How long should I steep green tea?"),),
    (
        "About 2 minutes at 80 °C.",
        "Green tea is delicate: use water at 70-80 °C, not boiling, "
        "and steep for one to three minutes depending on the variety. Taste as you go.",
    ),
)


def progress(line: str) -> None:
    print(f"[real_llm] {line}", file=sys.stderr, flush=True)


def body_for(model: str, max_tokens: int, temperature: float, seed: int) -> dict[str, Any]:
    """A chat body exactly as the gateway's OpenAI backend writes it for one Ind sample."""
    options = OpenAIOptions(urls=("http://unused",), model=model, max_tokens=max_tokens)
    body = OpenAIBackend(options).request_body(SampleGroup("ind", "u", HISTORY, TASK, 1, seed))
    return {**body, "temperature": temperature}


def sample_chains(
    client: httpx.Client, url: str, model: str, args: argparse.Namespace, structured: bool
) -> dict[str, Any]:
    latencies, failures, valid, tokens, seconds = [], Counter[str](), 0, 0, 0.0
    for i in range(args.samples):
        body = body_for(model, args.max_tokens, 1.0, seed=i)
        if structured:
            body |= constrained("json_object", "overall_scores", schema_for(args.schema))
        started = time.perf_counter()
        data = client.post(f"{url}/v1/chat/completions", json=body).json()
        elapsed = time.perf_counter() - started
        choice = data["choices"][0]
        text = choice["message"]["content"] or ""
        if structured:
            text = f"<JSON_START>\n{text}\n<JSON_END>"
        outcome = parse_scores(text, 2, choice.get("finish_reason"))
        if isinstance(outcome, ParseFailure):
            failures[outcome.reason] += 1
        else:
            valid += 1
        latencies.append(elapsed)
        written = data["usage"]["completion_tokens"]
        if written:  # a sample that stopped at once says nothing about speed
            tokens, seconds = tokens + written, seconds + elapsed
        mode = "structured" if structured else "free"
        progress(f"{mode} sample {i + 1}/{args.samples}: {elapsed:.1f} s, {written} tokens")
    return {
        "chain_latency_s": statistics.median(latencies),
        "tokens_per_s": tokens / seconds if seconds else 0.0,
        "parse_rate": valid / args.samples,
        "failures": dict(failures),
    }


def schema_for(name: str) -> dict[str, Any]:
    return chain_schema(2) if name == "chain" else scores_schema(2)


def gateway_overhead(
    client: httpx.Client, url: str, model: str, args: argparse.Namespace
) -> dict[str, float]:
    """Ind-1 through `pgenrm serve` vs the same greedy request straight to the server."""
    env = {
        "PGENRM_BACKEND": "openai",
        "PGENRM_OPENAI_URLS": f"{url}/v1",
        "PGENRM_OPENAI_TEMPERATURE": "0",
        "PGENRM_OPENAI_MAX_TOKENS": str(args.overhead_tokens),
        "PGENRM_OPENAI_READ_TIMEOUT_S": "600",
        "PGENRM_SCORE_DEADLINE_S": "600",
        "PGENRM_PARSE_RETRIES": "0",
        "PGENRM_OPENAI_STRUCTURED": "json_object",
        "PGENRM_OPENAI_STRUCTURED_SCHEMA": "scores",
    }
    score = {
        "user_id": "u",
        "history": [
            {"prompt": p.context[0].content, "chosen": p.chosen, "rejected": p.rejected}
            for p in HISTORY
        ],
        "prompt": TASK.context[0].content,
        "candidates": list(TASK.candidates),
        "scaling": {"ind": 1},
        "return_traces": "none",
    }
    direct, through = [], []
    constraint = constrained("json_object", "overall_scores", scores_schema(2))
    with served(env) as gateway:
        for i in range(args.repeats + 1):  # the first of each warms caches and connections
            started = time.perf_counter()
            body = body_for(model, args.overhead_tokens, 0.0, 0) | constraint
            client.post(f"{url}/v1/chat/completions", json=body).raise_for_status()
            direct.append(time.perf_counter() - started)
            started = time.perf_counter()
            answer = client.post(f"{gateway}/v1/score", json=score)
            through.append(time.perf_counter() - started)
            progress(
                f"overhead {i}: direct {direct[-1]:.2f} s, gateway {through[-1]:.2f} s "
                f"(HTTP {answer.status_code})"
            )
    direct_s, gateway_s = statistics.median(direct[1:]), statistics.median(through[1:])
    return {"direct_s": direct_s, "gateway_s": gateway_s, "added_s": gateway_s - direct_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", help="a running llama.cpp server (default: start one)")
    parser.add_argument("--samples", type=int, default=6, help="chains per mode")
    parser.add_argument("--max-tokens", type=int, default=256, help="per chain")
    parser.add_argument(
        "--schema",
        choices=("scores", "chain"),
        default="scores",
        help="structured output: overall scores (PGENRM_OPENAI_STRUCTURED_SCHEMA=scores) or "
        "the whole chain (minutes per sample under llama.cpp's grammar here)",
    )
    parser.add_argument("--overhead-tokens", type=int, default=64, help="per overhead call")
    parser.add_argument("--repeats", type=int, default=3, help="overhead measurements")
    parser.add_argument(
        "--threads",
        type=int,
        help="the server's threads (default: every core; on a busy "
        "machine 1 avoids its threads waiting on each other)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object last")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the servers on the way out
    llm = find_real_llm()
    if args.url is None and llm is None:
        raise SystemExit(".venv-llm is not installed: run ./scripts/install_real_llm")
    with httpx.Client(timeout=600) as client:
        if args.url is not None:
            result = measure(client, args.url.rstrip("/").removesuffix("/v1"), args)
        else:
            assert llm is not None
            with llama_server(llm, threads=args.threads) as url:
                result = measure(client, url, args)
    rows = [
        ("prefill of the chain prompt (s)", result["prefill_s"], ""),
        ("tokens/s, free text", result["free"]["tokens_per_s"], ""),
        ("tokens/s, structured", result["structured"]["tokens_per_s"], ""),
        ("chain latency, free text (s, median)", result["free"]["chain_latency_s"], ""),
        ("chain latency, structured (s, median)", result["structured"]["chain_latency_s"], ""),
        ("parse rate, free text", result["free"]["parse_rate"], ""),
        ("parse rate, structured", result["structured"]["parse_rate"], ">= 0.9"),
        ("score through the gateway (s, median)", result["overhead"]["gateway_s"], ""),
        ("same request to the server (s, median)", result["overhead"]["direct_s"], ""),
        ("gateway's added wall time per score (s)", result["overhead"]["added_s"], ""),
    ]
    print_figures(rows, result, as_json=args.json, digits=3)


def measure(client: httpx.Client, url: str, args: argparse.Namespace) -> dict[str, Any]:
    model = client.get(f"{url}/v1/models").json()["data"][0]["id"]
    progress(f"server {url}, model {model}")
    started = time.perf_counter()  # the prompt's prefill, cached by the server for the rest
    client.post(f"{url}/v1/chat/completions", json=body_for(model, 1, 0.0, 0))
    prefill = time.perf_counter() - started
    progress(f"prefill of the chain prompt: {prefill:.1f} s")
    return {
        "model": model.rsplit("/", 1)[-1],
        "samples": args.samples,
        "max_tokens": args.max_tokens,
        "schema": args.schema,
        "threads": args.threads,
        "prefill_s": prefill,
        "free": sample_chains(client, url, model, args, structured=False),
        "structured": sample_chains(client, url, model, args, structured=True),
        "overhead": gateway_overhead(client, url, model, args),
    }


if __name__ == "__main__":
    main()
