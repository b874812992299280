"""The OpenAI-compatible critic's two prompts and their JSON schemas.

Extraction: one critique in, its key arguments out (`{"arguments": [{"text", "target",
"polarity"}]}`). Matching: two numbered argument lists in, the pairs that make the same point
out (`{"pairs": [{"model", "human", "similarity"}]}`). Each system message opens with its
`# TASK:` line, which is how the test simulator knows which task it is answering. The
matching prompt asks about the point alone: stance is checked by the engine's rule, the same
for every critic.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from service.engine.critic import CritiqueText
from service.engine.critique import Argument

EXTRACT_TASK = "# TASK: critique argument extraction"
MATCH_TASK = "# TASK: argument matching"
CRITIQUE_START, CRITIQUE_END = "[The Start of Critique]", "[The End of Critique]"
PREFERRED = "Preferred response:"
MODEL_START, MODEL_END = "[The Start of Model Arguments]", "[The End of Model Arguments]"
HUMAN_START, HUMAN_END = "[The Start of Human Arguments]", "[The End of Human Arguments]"

_EXTRACT_SYSTEM = f"""{EXTRACT_TASK}
You read a critique that compares two responses to the same user input, and list its key \
arguments: each distinct reason it gives for or against a response, in the order it gives them.

For each argument write:
- "text": the argument as one short sentence, in the critique's own words;
- "target": "1" or "2" (the response it is about), "both", or null when it is about neither;
- "polarity": "positive" (praise) or "negative" (criticism).

A bare verdict ("Response 1 is better") is not an argument. An argument that names no \
response is about the preferred response when it praises, and about the other when it \
criticises. Answer with one JSON object and nothing else:
{{"arguments": [{{"text": "...", "target": "1", "polarity": "positive"}}]}}"""

_MATCH_SYSTEM = f"""{MATCH_TASK}
You compare two lists of arguments about the same two responses: the model's (M1, M2, ...) \
and a human's (H1, H2, ...). For every model argument that makes the same point as a human \
argument, give the pair and how alike they are in meaning, from 0 to 1 (1: the same point \
in other words; 0.5: the same point with a different emphasis). Leave out pairs that make \
different points. Judge the point only: whom an argument praises or criticises is checked \
separately. Answer with one JSON object and nothing else:
{{"pairs": [{{"model": 1, "human": 2, "similarity": 0.9}}]}}"""

ARGUMENTS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "arguments": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "text": {"type": "string"},
                    "target": {"type": ["string", "null"], "enum": ["1", "2", "both", None]},
                    "polarity": {"enum": ["positive", "negative"]},
                },
                "required": ["text", "target", "polarity"],
            },
        }
    },
    "required": ["arguments"],
}
PAIRS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "pairs": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "model": {"type": "integer", "minimum": 1},
                    "human": {"type": "integer", "minimum": 1},
                    "similarity": {"type": "number", "minimum": 0, "maximum": 1},
                },
                "required": ["model", "human", "similarity"],
            },
        }
    },
    "required": ["pairs"],
}


def extraction_messages(critique: CritiqueText) -> list[dict[str, str]]:
    preferred = f"Response {critique.choice}" if critique.choice in (1, 2) else "unknown"
    blocks = [f"[The Start of User Input]\n{critique.prompt}\n[The End of User Input]"]
    for i, response in enumerate(critique.responses, start=1):
        blocks.append(f"[The Start of Response {i}]\n{response}\n[The End of Response {i}]")
    blocks += [f"{PREFERRED} {preferred}", f"{CRITIQUE_START}\n{critique.text}\n{CRITIQUE_END}"]
    return [
        {"role": "system", "content": _EXTRACT_SYSTEM},
        {"role": "user", "content": "\n\n".join(blocks) + "\n"},
    ]


def matching_messages(model: Sequence[Argument], human: Sequence[Argument]) -> list[dict[str, str]]:
    def listed(prefix: str, arguments: Sequence[Argument]) -> str:
        return "\n".join(f"{prefix}{i}. {a.text}" for i, a in enumerate(arguments, start=1))

    user = (
        f"{MODEL_START}\n{listed('M', model)}\n{MODEL_END}\n\n"
        f"{HUMAN_START}\n{listed('H', human)}\n{HUMAN_END}\n"
    )
    return [{"role": "system", "content": _MATCH_SYSTEM}, {"role": "user", "content": user}]
