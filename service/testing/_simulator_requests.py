"""Request validation and error bodies for the simulator, as vLLM's OpenAI server has them.

Private to the simulator. A malformed request must be a 4xx with an OpenAI-style error body
(`{"error": {"message", "type", "param", "code"}}`), because clients treat a 4xx as final and
retry only 429 and 5xx.
"""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

_ROLES = {"system", "user", "assistant", "developer", "tool"}


class SimulatorError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def error_response(status: int, message: str) -> JSONResponse:
    """The error body vLLM's OpenAI server sends."""
    try:
        kind = HTTPStatus(status).phrase.replace(" ", "").replace("-", "")
    except ValueError:
        kind = ""
    kind = kind if kind.endswith("Error") else kind + "Error"
    headers = {"retry-after": "1"} if status in (429, 503) else None
    body = {"error": {"message": message, "type": kind, "param": None, "code": status}}
    return JSONResponse(body, status_code=status, headers=headers)


def count_tokens(text: str) -> int:
    return int(len(text.split()) * 1.3)


async def read_body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError) as error:
        raise SimulatorError(400, f"the request body is not valid JSON: {error}") from error
    if not isinstance(body, dict):
        raise SimulatorError(400, "the request body must be a JSON object")
    return body


def chat_messages(body: dict[str, Any]) -> list[dict[str, str]]:
    """Validated chat messages, text content parts joined into one string per message."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise SimulatorError(400, "`messages` must be a non-empty list")
    out = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in _ROLES:
            raise SimulatorError(400, f"messages[{i}] needs a `role` among {sorted(_ROLES)}")
        content = message.get("content")
        if isinstance(content, list):
            parts = [p.get("text") for p in content if isinstance(p, dict)]
            if len(parts) != len(content) or not all(isinstance(p, str) for p in parts):
                raise SimulatorError(400, f"messages[{i}].content parts must be text parts")
            content = "".join(parts)  # type: ignore[arg-type]
        if not isinstance(content, str):
            raise SimulatorError(400, f"messages[{i}].content must be a string")
        out.append({"role": message["role"], "content": content})
    return out


def int_field(body: dict[str, Any], name: str, default: int | None, low: int, high: int) -> Any:
    value = body.get(name, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise SimulatorError(400, f"`{name}` must be an integer in [{low}, {high}]")
    return value


def number_field(body: dict[str, Any], name: str, default: float) -> float:
    value = body.get(name, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise SimulatorError(400, f"`{name}` must be a non-negative number")
    return float(value)


def structured_dialect(
    body: dict[str, Any], honoured: tuple[str, ...], refusal_status: int = 422
) -> str | None:
    """The structured-output dialect a request asks for, if this server honours it.

    A `response_format` type the server does not know is refused with `refusal_status` and a
    pydantic-style validation message (llama.cpp's server sends it as a 500); an unknown
    top-level field is ignored, so a `structured_outputs` the server does not honour leaves
    the output free.
    """
    fmt = body.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") not in (None, "text"):
        kind = {"json_schema": "response_format", "json_object": "json_object"}.get(
            str(fmt.get("type"))
        )
        if kind is None or kind not in honoured:
            raise SimulatorError(
                refusal_status,
                f"1 validation error: response_format.type {fmt.get('type')!r} is not supported",
            )
        return kind
    guided = body.get("structured_outputs")
    if isinstance(guided, dict) and guided.get("json") is not None:
        return "structured_outputs" if "structured_outputs" in honoured else None
    return None
