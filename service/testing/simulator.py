"""An OpenAI-compatible simulator of the P-GenRM-8B server, for tests and benchmarks.

    .venv/bin/python -m service.testing.simulator --port 8123 [--latency-s 0.2] [--error-rate 0.1]

Production scores through a vLLM server running P-GenRM-8B; there is no GPU nor weights here,
so this simulator speaks the same HTTP API (`/health`, `/v1/models`, `/v1/chat/completions`)
and writes evaluation chains in the model's format, with scores that follow the simulated
user's history deterministically (see `_simulator_chains`). Around that sit a latency model
(base + per-token costs, n choices in parallel, a `max_concurrency` queue like max-num-seqs),
seeded fault injection (500s, chosen statuses, stalls, malformed or string-scored choices, a
`down` switch) and control endpoints: `GET/POST /sim/config`, `GET /sim/stats`,
`POST /sim/reset`. Everything on the request path is async and cheap.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import hashlib
import json
import random
import time
from collections import deque
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from service.testing._simulator_chains import (
    Evaluator,
    malform,
    parse_prompt,
    render_structured,
)
from service.testing._simulator_chains import render_text as render_free_text
from service.testing._simulator_critique import answer as critique_answer
from service.testing._simulator_requests import (
    SimulatorError,
    chat_messages,
    count_tokens,
    error_response,
    int_field,
    number_field,
    read_body,
    structured_dialect,
)
from service.testing._simulator_settings import FIELDS, Settings, coerce

DEFAULT_MODEL = "pgenrm-simulator"
LOG_SIZE = 10_000


class _Gate:
    """A concurrency limit that can change at run time (an asyncio.Semaphore cannot)."""

    def __init__(self, settings: Settings) -> None:
        self._settings, self._active = settings, 0
        self._changed = asyncio.Condition()

    async def __aenter__(self) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: self._active < self._settings.max_concurrency)
            self._active += 1

    async def __aexit__(self, *_: object) -> None:
        async with self._changed:
            self._active -= 1
            self._changed.notify_all()

    async def poke(self) -> None:
        async with self._changed:
            self._changed.notify_all()


class Simulator:
    def __init__(self, model: str, settings: Settings) -> None:
        self.model, self.settings = model, settings
        self.faults = random.Random(settings.fault_seed)
        self.gate = _Gate(settings)
        self.reset()

    def reset(self) -> None:
        self.requests = self.in_flight = self.max_in_flight = 0
        self.choices = self.prompt_tokens = self.completion_tokens = 0  # totals, past the log
        self.by_status: dict[str, int] = {}
        self.log: deque[dict[str, Any]] = deque(maxlen=LOG_SIZE)
        self.faults.seed(self.settings.fault_seed)

    async def configure(self, changes: dict[str, Any]) -> None:
        unknown = sorted(set(changes) - set(FIELDS))
        if unknown:
            raise SimulatorError(400, f"unknown settings {unknown}; known: {sorted(FIELDS)}")
        try:
            coerced = {k: coerce(k, v) for k, v in changes.items()}
        except ValueError as error:
            raise SimulatorError(400, str(error)) from error
        for key, value in coerced.items():
            setattr(self.settings, key, value)
        if "fault_seed" in coerced:
            self.faults.seed(self.settings.fault_seed)
        await self.gate.poke()  # a raised max_concurrency lets queued requests in

    def stats(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "by_status": dict(self.by_status),
            "in_flight": self.in_flight,
            "max_in_flight": self.max_in_flight,
            "choices": self.choices,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "log": list(self.log),
        }

    async def chat(self, request: Request) -> Response:
        start = time.monotonic()
        self.requests += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        entry: dict[str, Any] = {"n": 0, "structured": False, "prompt_tokens": 0}
        entry.update(completion_tokens=0, fault=None, dialect=None)
        # The x- headers a router reads (session affinity), as the request carried them.
        entry["headers"] = {k: v for k, v in request.headers.items() if k.startswith("x-")}
        status = 499  # what the log says if the request is cancelled (client gone, shutdown)
        try:
            try:
                response = await self._chat(request, entry)
            except SimulatorError as error:
                response = error_response(error.status, error.message)
            except Exception as error:  # a simulator bug: answer like a crashed server would
                response = error_response(500, f"simulator internal error: {error!r}")
            status = response.status_code
            return response
        finally:
            self.in_flight -= 1
            self.by_status[str(status)] = self.by_status.get(str(status), 0) + 1
            end = time.monotonic()
            self.log.append({"start": start, "end": end, "status": status, **entry})
            if status == 200:
                self.choices += int(entry["n"])
                self.prompt_tokens += int(entry["prompt_tokens"])
                self.completion_tokens += int(entry["completion_tokens"])

    async def _chat(self, request: Request, entry: dict[str, Any]) -> Response:
        s = self.settings
        if s.down:
            raise SimulatorError(503, "the simulator is down (configured `down`)")
        body = await read_body(request)
        model = body.get("model")
        if model is not None and model != self.model:
            raise SimulatorError(404, f"The model `{model}` does not exist.")
        messages = chat_messages(body)
        asked = int_field(body, "n", 1, 1, 512)
        n = min(asked, s.max_n) if s.max_n else asked
        int_field(body, "max_tokens", None, 1, 10**7)
        temperature = number_field(body, "temperature", 1.0)
        number_field(body, "top_p", 1.0)
        seed = int_field(body, "seed", None, -(2**63), 2**64)
        dialect = structured_dialect(body, s.dialects, s.refusal_status)
        structured = dialect is not None
        text = "\n\n".join(m["content"] for m in messages)
        entry.update(n=n, asked=asked, structured=structured, dialect=dialect)
        entry["prompt_tokens"] = count_tokens(text)

        # Fault draws: always the same count per request, so a seed replays a run exactly.
        draws = [self.faults.random() for _ in range(3)]
        per_choice = [tuple(self.faults.random() for _ in range(3)) for _ in range(n)]
        if draws[0] < s.error_rate:
            entry["fault"] = "error"
            raise SimulatorError(500, "simulated internal server error (error_rate)")
        if draws[1] < s.status_rate:
            entry["fault"] = f"status_{s.status_code}"
            raise SimulatorError(s.status_code, f"simulated HTTP {s.status_code} (status_rate)")
        if draws[2] < s.timeout_rate:
            entry["fault"] = "timeout"
            await asyncio.sleep(s.timeout_s)

        async with self.gate:
            digest = hashlib.blake2b(
                json.dumps(messages, sort_keys=True).encode(), digest_size=16
            ).hexdigest()
            critique = critique_answer(text)  # the critic's prompts get their own answer
            evaluator = Evaluator(parse_prompt(text)) if critique is None else None
            greedy = temperature == 0.0  # like greedy decoding: every choice the same
            max_tokens = body.get("max_tokens")
            choices, lengths = [], []
            for index, (malformed, kind, stringy) in enumerate(per_choice):
                rng = random.Random(f"{digest}:{seed}:{0 if greedy else index}")
                if evaluator is not None:
                    sample = evaluator.choice(rng, s.noise * min(temperature, 2.0))
                    as_string = stringy < s.string_score_rate
                    render = render_structured if structured else render_free_text
                    content = render(evaluator, sample, string_scores=as_string)
                else:
                    content = critique or ""
                finish = "stop"
                if malformed < s.malformed_rate:
                    kinds = s.malformed_kinds
                    content, finish = malform(kinds[int(kind * len(kinds))], content, rng)
                tokens = count_tokens(content)
                if max_tokens is not None and tokens > max_tokens:
                    content = content[: len(content) * max_tokens // tokens]
                    tokens, finish = max_tokens, "length"
                lengths.append(tokens)
                choices.append(
                    {
                        "index": index,
                        "message": {"role": "assistant", "content": content},
                        "logprobs": None,
                        "finish_reason": finish,
                    }
                )
            delay = s.latency_s + s.per_prompt_token_s * entry["prompt_tokens"]
            delay += s.per_output_token_s * max(lengths)
            if delay > 0:
                await asyncio.sleep(delay)
        completion_tokens = sum(lengths)
        entry["completion_tokens"] = completion_tokens
        return JSONResponse(
            {
                "id": f"chatcmpl-sim-{digest[:12]}-{self.requests}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": self.model,
                "choices": choices,
                "usage": {
                    "prompt_tokens": entry["prompt_tokens"],
                    "completion_tokens": completion_tokens,
                    "total_tokens": entry["prompt_tokens"] + completion_tokens,
                },
            }
        )


def build_app(model: str = DEFAULT_MODEL, settings: Settings | None = None) -> Starlette:
    sim = Simulator(model, settings or Settings())

    async def health(_: Request) -> Response:
        if not sim.settings.health_endpoint:
            return JSONResponse({"detail": "Not Found"}, status_code=404)
        if sim.settings.down:
            return JSONResponse({"status": "down"}, status_code=503)
        return JSONResponse({"status": "ok"})

    async def models(_: Request) -> Response:
        if sim.settings.down:
            return error_response(503, "the simulator is down (configured `down`)")
        if sim.settings.models_behind_chats:  # served between generations, as llama.cpp does
            async with sim.gate:
                pass
        card = {"id": sim.model, "object": "model", "created": 0, "owned_by": "pgenrm-simulator"}
        return JSONResponse({"object": "list", "data": [card]})

    async def config(request: Request) -> Response:
        if request.method == "POST":
            try:
                changes = await read_body(request)
                await sim.configure(changes)
            except SimulatorError as error:
                return error_response(error.status, error.message)
        return JSONResponse(dataclasses.asdict(sim.settings))

    async def stats(_: Request) -> Response:
        return JSONResponse(sim.stats())

    async def reset(_: Request) -> Response:
        sim.reset()
        return JSONResponse({"status": "reset"})

    app = Starlette(
        routes=[
            Route("/health", health),
            Route("/v1/models", models),
            Route("/v1/chat/completions", sim.chat, methods=["POST"]),
            Route("/sim/config", config, methods=["GET", "POST"]),
            Route("/sim/stats", stats),
            Route("/sim/reset", reset, methods=["POST"]),
        ]
    )
    app.state.simulator = sim
    return app


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8123)
    parser.add_argument("--model", default=DEFAULT_MODEL, help="the model name served")
    parser.add_argument("--log-level", default="warning")
    for name, field in FIELDS.items():
        flag, default, help = "--" + name.replace("_", "-"), field.default, field.metadata["help"]
        if isinstance(default, bool):
            parser.add_argument(
                flag, action=argparse.BooleanOptionalAction, default=default, help=help
            )
        elif isinstance(default, tuple):
            parser.add_argument(flag, default=",".join(default), help=help)
        else:
            parser.add_argument(flag, type=type(default), default=default, help=help)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        settings = Settings(**{k: coerce(k, getattr(args, k)) for k in FIELDS})
    except ValueError as error:
        raise SystemExit(f"simulator: {error}") from error
    app = build_app(args.model, settings)
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=False,
        timeout_graceful_shutdown=1,
    )


if __name__ == "__main__":
    main()
