"""The simulator's settings: every one a `--flag` and changeable at run time (`/sim/config`).

Private to `service.testing.simulator`. Besides latency and faults, a few settings make the
simulator behave like a server other than vLLM, so the gateway's capability detection is tested
against each difference (`LLAMA_CPP` gathers llama.cpp's server's).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from service.testing._simulator_chains import MALFORMED_KINDS

# The structured-output fields a server may honour: vLLM's `structured_outputs`, OpenAI's
# `response_format` of type `json_schema`, llama.cpp's `json_object` with a `schema` beside it.
DIALECTS = ("structured_outputs", "response_format", "json_object")
_CHOICES = {"malformed_kinds": MALFORMED_KINDS, "dialects": DIALECTS}


def _setting(default: Any, help: str) -> Any:
    return dataclasses.field(default=default, metadata={"help": help})


@dataclasses.dataclass
class Settings:
    """Everything `/sim/config` can change at run time (each is also a `--flag`)."""

    latency_s: float = _setting(0.0, "fixed seconds per request, whatever n is")
    per_prompt_token_s: float = _setting(0.0, "seconds per prompt token (words * 1.3)")
    per_output_token_s: float = _setting(0.0, "seconds per token of the longest choice")
    max_concurrency: int = _setting(256, "requests generating at once; the rest queue")
    noise: float = _setting(0.8, "std-dev of the per-criterion score noise (x temperature)")
    error_rate: float = _setting(0.0, "per request: probability of HTTP 500")
    status_code: int = _setting(429, "the status that --status-rate answers with")
    status_rate: float = _setting(0.0, "per request: probability of HTTP --status-code")
    timeout_rate: float = _setting(0.0, "per request: probability of stalling --timeout-s")
    timeout_s: float = _setting(30.0, "how long a stalled request waits before answering")
    malformed_rate: float = _setting(0.0, "per choice: probability of a broken output")
    malformed_kinds: tuple[str, ...] = _setting(
        MALFORMED_KINDS, "comma-separated breakages to draw from: truncated,prose,empty"
    )
    string_score_rate: float = _setting(0.0, 'per choice: probability of "6.4"-style scores')
    down: bool = _setting(False, "answer 503 on /health, /v1/models and chat completions")
    health_endpoint: bool = _setting(True, "serve /health (false: 404, as llama.cpp's server)")
    max_n: int = _setting(0, "choices per response at most (0: n; 1: ignore n, as llama.cpp)")
    dialects: tuple[str, ...] = _setting(
        DIALECTS,
        "structured-output fields honoured (structured_outputs,response_format,json_object); "
        "another response_format type is refused, an unhonoured structured_outputs ignored",
    )
    models_behind_chats: bool = _setting(
        False, "/v1/models waits for a generation slot (llama.cpp answers it between requests)"
    )
    refusal_status: int = _setting(
        422, "the status refusing a response_format type (llama.cpp: 500, a validation error)"
    )
    fault_seed: int = _setting(0, "seeds the fault draws (a reset or a new seed replays them)")


RATES = {"error_rate", "status_rate", "timeout_rate", "malformed_rate", "string_score_rate"}
FIELDS = {f.name: f for f in dataclasses.fields(Settings)}


def coerce(name: str, value: Any) -> Any:
    """A setting's value from JSON or the command line; ValueError says what is wrong."""
    kind = type(getattr(Settings(), name))
    if kind is tuple:
        items = value.split(",") if isinstance(value, str) else value
        allowed = list(_CHOICES[name])
        if not isinstance(items, list | tuple) or not items:
            raise ValueError(f"{name} must be a non-empty list of {allowed}")
        if any(item not in allowed for item in items):
            raise ValueError(f"{name} entries must be among {allowed}")
        return tuple(items)
    if kind is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be true or false")
        return value
    ok = isinstance(value, int) if kind is int else isinstance(value, int | float)
    if isinstance(value, bool) or not ok:
        raise ValueError(f"{name} must be a {kind.__name__}")
    number = kind(value)
    if name in RATES and not 0.0 <= number <= 1.0:
        raise ValueError(f"{name} must be between 0 and 1")
    if name in ("status_code", "refusal_status") and not 400 <= number <= 599:
        raise ValueError(f"{name} must be an HTTP error status (400-599)")
    if name == "max_concurrency" and number < 1:
        raise ValueError("max_concurrency must be at least 1")
    if number < 0 and name != "fault_seed":
        raise ValueError(f"{name} must not be negative")
    return number


# llama.cpp's OpenAI-compatible server (llama-cpp-python 0.3.36): one request at a time (even
# /v1/models waits for the generation in progress), no /health, one choice whatever n says, a
# schema only as response_format json_object (json_schema is a 500 saying the request failed
# validation; vLLM's field is ignored). Its model id is the GGUF's path: start the simulator
# with such a `model`.
LLAMA_CPP: dict[str, Any] = {
    "max_concurrency": 1,  # one request generates at a time; /v1/models waits its turn
    "models_behind_chats": True,
    "health_endpoint": False,
    "max_n": 1,
    "dialects": ("json_object",),
    "refusal_status": 500,
}
