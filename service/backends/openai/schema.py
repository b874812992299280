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


# A score as an enumeration: servers whose grammars ignore `minimum`/`maximum` (llama.cpp's)
# still cannot write a 0 or an 11.
SCORE: dict[str, Any] = {"type": "integer", "enum": list(range(1, 11))}


def scores_schema(n_candidates: int) -> dict[str, Any]:
    """The overall score per response alone (`PGENRM_OPENAI_STRUCTURED_SCHEMA=scores`): a few
    tokens, for servers where every constrained token is dear (a CPU, a grammar checked over a
    large vocabulary); the trace then has scores without persona or criteria."""
    return {
        "type": "object",
        "properties": {"better_response": _overall(n_candidates)},
        "required": ["better_response"],
    }


def _overall(n_candidates: int) -> dict[str, Any]:
    keys = [f"response_{i + 1}" for i in range(n_candidates)]
    return {"type": "object", "properties": {k: SCORE for k in keys}, "required": keys}


def chain_schema(n_candidates: int) -> dict[str, Any]:
    keys = [f"response_{i + 1}" for i in range(n_candidates)]
    scored = {
        "type": "object",
        "properties": {
            "scores": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "criterion": {"type": "string"},
                        "score": SCORE,
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
            "better_response": _overall(n_candidates),
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
