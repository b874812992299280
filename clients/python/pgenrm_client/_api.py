"""The API's calls as `Call`s, built once for both clients (which only send them)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import quote

from pgenrm_client._retry import Call
from pgenrm_client.types import (
    AttributeValue,
    HistoryPair,
    ScoreOptions,
    ScoreRequest,
)

if TYPE_CHECKING:
    from typing_extensions import Unpack

__version__ = "0.1.0"
USER_AGENT = f"pgenrm-client/{__version__}"

# Endpoint paths people paste as the "URL" (OpenRLHF's habit): the base is what precedes them.
_ENDPOINTS = ("/get_reward", "/v1/score/batch", "/v1/score")


def base_url(url: str) -> str:
    url = url.strip().rstrip("/")
    for path in _ENDPOINTS:
        if url.endswith(path):
            return url[: -len(path)]
    return url


def default_headers(api_key: str | None) -> dict[str, str]:
    """User agent, and `Authorization: Bearer` with `api_key` (default: env PGENRM_API_KEY)."""
    headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
    key = api_key if api_key is not None else os.environ.get("PGENRM_API_KEY")
    if key:
        headers["Authorization"] = f"Bearer {key}"
    return headers


def new_key(prefix: str | None = None) -> str:
    key = uuid.uuid4().hex
    return f"{prefix}:{key}" if prefix else key


def score_request(
    user_id: str, candidates: Sequence[str], **options: Unpack[ScoreOptions]
) -> ScoreRequest:
    """A `/v1/score` body (also an item for `score_batch`); options left out take the server's
    defaults (e.g. history: the stored one; traces: summary)."""
    if isinstance(candidates, str):
        raise TypeError("`candidates` is a list of strings, not one string")
    body: dict[str, Any] = {"user_id": user_id, "candidates": list(candidates)}
    reward: dict[str, Any] = {}
    for name, value in options.items():
        if value is None:
            continue
        if name == "normalize":
            reward["normalize"] = value
        elif name == "fallback":
            reward["fallback"] = float(value)  # type: ignore[arg-type]
        else:
            body[name] = value
    if reward:
        body["reward"] = reward
    return cast(ScoreRequest, body)


def score(body: ScoreRequest, idempotency_key: str | None) -> Call:
    return Call("POST", "/v1/score", body, idempotency_key or new_key())


def score_batch(items: Sequence[ScoreRequest], idempotency_key: str | None) -> Call:
    return Call("POST", "/v1/score/batch", {"items": list(items)}, idempotency_key or new_key())


def get_reward(
    queries: Sequence[str],
    prompts: Sequence[str],
    labels: Sequence[str] | None,
    idempotency_key: str | None,
) -> Call:
    body: dict[str, Any] = {"query": list(queries), "prompts": list(prompts)}
    if labels is not None:
        body["labels"] = list(labels)
    return Call("POST", "/get_reward", body, idempotency_key or new_key())


def _user_path(user_id: str) -> str:
    if not user_id:
        raise ValueError("user_id must not be empty")
    return "/v1/users/" + quote(user_id, safe="")


def put_user(
    user_id: str,
    history: Sequence[HistoryPair],
    attributes: Mapping[str, AttributeValue] | None,
) -> Call:
    body = {"history": list(history), "attributes": dict(attributes or {})}
    return Call("PUT", _user_path(user_id), body)  # a replace: safe to repeat


def get_user(user_id: str) -> Call:
    return Call("GET", _user_path(user_id))


def patch_user(
    user_id: str,
    append: Sequence[HistoryPair],
    attributes: Mapping[str, AttributeValue | None] | None,
    idempotency_key: str | None = None,
) -> Call:
    body = {"append": list(append), "attributes": dict(attributes or {})}
    # An append run twice would append twice: the key makes the server apply it once.
    return Call("PATCH", _user_path(user_id), body, idempotency_key or new_key())


def delete_user(user_id: str) -> Call:
    return Call("DELETE", _user_path(user_id))


def health() -> Call:
    return Call("GET", "/healthz", retry=False)


def ready() -> Call:
    return Call("GET", "/readyz", retry=False)
