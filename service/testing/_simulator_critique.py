"""The simulator's answers to the critic's prompts: argument extraction and matching.

Private to `service.testing.simulator`. Like `_simulator_chains` it imports nothing from
`service`: the OpenAI-compatible critic's parser is exercised by an independent writer. The
"model" is a few deterministic rules: a critique is cut into sentences and clauses; a clause
names its response ("Response 2", "A1", "the first") or is about the preferred one; a
criticising word makes it negative; bare verdicts are left out. Two arguments are alike by
the share of the shorter one's content words that the other has too.
"""

from __future__ import annotations

import json
import re

_EXTRACT = "# TASK: critique argument extraction"
_MATCH = "# TASK: argument matching"
_CRITIQUE = re.compile(r"\[The Start of Critique\]\n(.*?)\n\[The End of Critique\]", re.DOTALL)
_PREFERRED = re.compile(r"Preferred response: Response ([12])")
_LIST = re.compile(
    r"\[The Start of (Model|Human) Arguments\]\n(.*?)\n?\[The End of \1 Arguments\]", re.DOTALL
)
_ITEM = re.compile(r"^[MH](\d+)\. (.*)$", re.MULTILINE)
_CLAUSES = re.compile(r"[.!?;\n]+\s*|(?<!nothing)\s+(?:but|while|whereas)\s+", re.IGNORECASE)
_NAMED = re.compile(
    r"\b(?:response|answer|argument)[ _]?([12])\b|\bA([12])\b|\bthe (first|second)\b"
    r"|\b(both|neither)\b",
    re.IGNORECASE,
)
_WORD = re.compile(r"[a-z]{4,}")
_CRITICAL = frozenset(
    re.findall(
        r"\S+",
        "not no lacks lack fails poor poorly weak vague rude insults insulting wrong error errors "
        "too only just off never without worse confusing repetitive irrelevant nothing doesn't "
        "isn't long-winded unclear",
    )
)
_VERDICT = re.compile(r"\b(?:better|prefer|preferred|more convincing|final answer|verdict)\b", re.I)
_IGNORED = frozenset(
    re.findall(
        r"\S+",
        "response answer argument first second both neither with that this from have more than "
        "they their them also just only very what which about",
    )
)


def answer(prompt: str) -> str | None:
    """The JSON answer to one of the critic's prompts (all messages joined), else None."""
    if prompt.startswith(_EXTRACT):
        return json.dumps({"arguments": _extract(prompt)})
    if prompt.startswith(_MATCH):
        return json.dumps({"pairs": _match(prompt)})
    return None


def _extract(prompt: str) -> list[dict[str, object]]:
    found = _CRITIQUE.search(prompt)
    preferred = _PREFERRED.search(prompt)
    chosen = preferred.group(1) if preferred else None
    out: list[dict[str, object]] = []
    for clause in _CLAUSES.split(found.group(1) if found else ""):
        clause = clause.strip(" ,")
        words = clause.lower().split()
        if len(words) < 3 or (_VERDICT.search(clause) and len(words) < 6):
            continue
        negative = any(w.strip(",.") in _CRITICAL or w.endswith("n't") for w in words)
        named = _NAMED.search(clause)
        target: str | None
        if named is None:
            target = chosen if not negative or chosen is None else ("2" if chosen == "1" else "1")
        elif named.group(4):
            target = "both"
        else:
            label = named.group(1) or named.group(2) or named.group(3).lower()
            target = "1" if label in ("1", "first") else "2"
        polarity = "negative" if negative else "positive"
        out.append({"text": clause, "target": target, "polarity": polarity})
    return out


def _match(prompt: str) -> list[dict[str, object]]:
    lists = {kind: dict(_ITEM.findall(body)) for kind, body in _LIST.findall(prompt)}
    model, human = lists.get("Model", {}), lists.get("Human", {})
    pairs: list[dict[str, object]] = []
    for i, left in model.items():
        for j, right in human.items():
            a, b = _content(left), _content(right)
            share = len(a & b) / min(len(a), len(b)) if a and b else 0.0
            if share >= 0.25:
                pairs.append(
                    {
                        "model": int(i),
                        "human": int(j),
                        "similarity": round(min(1.0, 0.5 + share), 2),
                    }
                )
    return pairs


def _content(text: str) -> set[str]:
    return {w.rstrip("s") for w in _WORD.findall(text.lower()) if w not in _IGNORED}
