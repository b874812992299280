"""What one OpenAI-compatible server can do, learnt from how it answers, or set by the operator.

Servers that speak `/v1/chat/completions` differ where it matters to a reward gateway: vLLM has
`/health`, honours `n` and reads `structured_outputs`; llama.cpp's Python server has no
`/health` (404), returns one choice whatever `n` says, takes a schema only as
`response_format: {"type": "json_object", "schema": ...}`, refuses OpenAI's `json_schema` type
(a 500 saying the request failed validation) and names its model by the file it loaded. A
worker's `Capabilities` start as the settings say (None where they say nothing) and are filled
in from the first answers: health from `/health` when it answers, else `/v1/models`; `n` from
the first multi-sample response's choice count; the structured-output dialect from the first
constrained request the server accepts, trying the next dialect when one is rejected. A
detected value never changes afterwards; a set one never does either.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import PurePosixPath, PureWindowsPath
from typing import Literal

HealthSource = Literal["health", "models"]
Dialect = Literal["structured_outputs", "response_format", "json_object"]
# Tried in this order when nothing is set: OpenAI's own field first (vLLM, SGLang and most
# hosted APIs take it), llama.cpp's variant, then vLLM's native field.
DIALECTS: tuple[Dialect, ...] = ("response_format", "json_object", "structured_outputs")
# A constrained request refused with one of these might be the dialect's fault (llama.cpp's
# server answers a `response_format` type it does not know with a 500 "validation error").
REJECTED_STATUSES = frozenset({400, 404, 415, 422, 500, 501})


@dataclass
class Capabilities:
    """One worker's detected (or configured) capabilities; None while still unknown."""

    health: HealthSource | None = None
    n: bool | None = None  # honours `n` > 1
    dialect: Dialect | None = None  # confirmed by an accepted request, or set
    rejected: set[Dialect] = field(default_factory=set)

    def dialects(self, preferred: Dialect | None) -> list[Dialect]:
        """The dialects to try for a constrained request, in order."""
        if self.dialect is not None:
            return [self.dialect]
        first = [preferred] if preferred is not None else []
        order = first + [d for d in DIALECTS if d != preferred]
        return [d for d in order if d not in self.rejected] or order[:1]

    def learn_n(self, asked: int, got: int) -> bool | None:
        """Record whether `n` is honoured from a response to `asked` > 1; returns a change."""
        if self.n is not None or asked <= 1:
            return None
        self.n = got >= asked
        return self.n

    def describe(self) -> dict[str, object]:
        return {
            "health_source": self.health or "unknown",
            "n_supported": self.n,
            "dialect": self.dialect or "unknown",
        }


def model_label(model_id: str) -> str:
    """How a model id is shown (responses, /readyz, metrics): a file path becomes its file name
    without the extension, so no server's filesystem layout leaks. Requests keep the id."""
    windows = "\\" in model_id
    if "/" not in model_id and not windows:
        return model_id
    path = PureWindowsPath(model_id) if windows else PurePosixPath(model_id)
    is_file = path.suffix.lower() in (".gguf", ".bin", ".safetensors", ".ggml", ".pt")
    if not (windows or is_file or model_id.startswith(("/", "./", "../", "~"))):
        return model_id  # a hub name such as Tongyi-ConvAI/P-GenRM-8B
    return path.stem or model_id
