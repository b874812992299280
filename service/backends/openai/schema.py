"""The JSON schema for opt-in structured outputs (generic judge models, not P-GenRM).

P-GenRM was trained on free text + `<JSON_START>` markers, so constrained decoding is off by
default. A generic instruction model judges more reliably when its output is forced into this
shape, which `service.engine.parsing` reads like the released format (rationale as an object).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Schema:
    """A JSON schema a request's output must follow, and its name (OpenAI's dialect wants one)."""

    name: str
    schema: dict[str, Any]


def chain_schema(n_candidates: int) -> dict[str, Any]:
    keys = [f"response_{i + 1}" for i in range(n_candidates)]
    score = {"type": "number", "minimum": 1, "maximum": 10}
    scored = {
        "type": "object",
        "properties": {
            "scores": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "criterion": {"type": "string"},
                        "score": score,
                        "justification": {"type": "string"},
                    },
                    "required": ["criterion", "score", "justification"],
                },
            }
        },
        "required": ["scores"],
    }
    return {
        "type": "object",
        "properties": {
            "analysis": {
                "type": "object",
                "properties": {
                    "style": {"type": "string"},
                    "content_structure": {"type": "string"},
                    "values": {"type": "string"},
                },
                "required": ["style", "content_structure", "values"],
            },
            "rationale": {
                "type": "object",
                "properties": {
                    "criteria": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "name": {"type": "string"},
                                "weight": {"type": "number", "minimum": 0, "maximum": 100},
                                "description": {"type": "string"},
                            },
                            "required": ["name", "weight", "description"],
                        },
                    },
                    "evaluations": {
                        "type": "object",
                        "properties": {k: scored for k in keys},
                        "required": keys,
                    },
                },
                "required": ["criteria", "evaluations"],
            },
            "better_response": {
                "type": "object",
                "properties": {k: score for k in keys},
                "required": keys,
            },
        },
        "required": ["analysis", "rationale", "better_response"],
    }


def constrained(mode: str, name: str, schema: dict[str, Any]) -> dict[str, Any]:
    """The request fields that constrain the output to `schema` in `mode`, a dialect
    (`capabilities.Dialect`): vLLM's `structured_outputs`, OpenAI's `response_format`
    `json_schema`, or llama.cpp's `json_object` with the schema beside it; anything else: none."""
    if mode == "structured_outputs":
        return {"structured_outputs": {"json": schema}}
    if mode == "response_format":
        return {
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": name, "schema": schema},
            }
        }
    if mode == "json_object":
        return {"response_format": {"type": "json_object", "schema": schema}}
    return {}
