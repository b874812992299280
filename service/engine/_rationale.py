"""Read the criteria and the per-response breakdown out of a chain's `rationale`.

Private to `service.engine.parsing`. The released model writes the rationale as one string
(`A. Evaluation Criteria & Weights` then `B. Scoring Breakdown`); structured-output judges write
it as an object. Both become the same `Breakdown`. Nothing here raises on odd input: whatever
cannot be read is simply absent from the result.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

_NUM = r"(\d+(?:\.\d+)?)"
_CRITERION_LINE = re.compile(
    r"^\s*(?:\d+[.)]|[-*\u2022])?\s*\**\s*(?P<name>[A-Za-z][^:\n(]{0,80}?)\s*\**\s*"
    r"(?:\(\s*(?:weight\s*[:=]?\s*)?" + _NUM + r"\s*%\s*\)|[:\-\u2013]\s*" + _NUM + r"\s*%)"
    r"\s*\**\s*[:\-\u2013.]?\s*(?P<desc>.*)$",
    re.IGNORECASE | re.MULTILINE,
)
_SECTION_B = re.compile(r"(?:^|\n)\s*\**\s*B[.):]\s*|Scoring Breakdown", re.IGNORECASE)
_RESPONSE_HEAD = re.compile(r"(?:^|\n)[ \t#*\-]*\**\s*Response[ _]?(\d+)\b", re.IGNORECASE)
_SCORE_LINE = re.compile(
    r"^\s*(?:\d+[.)]|[-*\u2022])?\s*\**\s*(?P<name>[A-Za-z][^:\n]{0,80}?)\s*\**\s*[:\-\u2013]\s*\**\s*"
    + _NUM
    + r"\s*(?:/\s*10)?\**(?P<rest>.*)$",
    re.MULTILINE,
)
_FINAL = re.compile(
    r"Final\s+Score\s*[:=]\s*(?P<expr>[^\n]*?)(?:=\s*\**\s*" + _NUM + r"\s*\**\s*)?(?:\n|$)",
    re.IGNORECASE,
)
_TERM = re.compile(r"\(?\s*" + _NUM + r"\s*[x\u00d7*]\s*" + _NUM + r"\s*(%?)\s*\)?")


@dataclass
class Breakdown:
    criteria: list[tuple[str, float, str]] = field(default_factory=list)  # name, weight, desc
    # response index (0-based) -> criterion name -> (score, justification)
    scores: dict[int, dict[str, tuple[float, str]]] = field(default_factory=dict)
    # response index -> weighted sum recomputed from the "Final Score = ..." terms
    final_terms: dict[int, float] = field(default_factory=dict)
    string_numbers: bool = False


def to_number(value: Any) -> tuple[float | None, bool]:
    """A number from 5.4, "5.4", "35%", "7/10", " 6 "; (None, _) if it is not one.

    The second element says whether the number arrived as a string.
    """
    if isinstance(value, bool):
        return None, False
    if isinstance(value, int | float):
        number = float(value)
        return (number if math.isfinite(number) else None), False
    if isinstance(value, str):
        match = re.fullmatch(r"\s*(-?\d+(?:\.\d+)?)\s*(%|/\s*10)?\s*", value)
        if match:
            return float(match.group(1)), True
    return None, False


def _clean(text: str) -> str:
    return text.strip().strip("*").strip().rstrip(":").strip()


def _weighted_terms(expr: str) -> float | None:
    terms = [(float(s), float(w)) for s, w, _ in _TERM.findall(expr)]
    total = sum(w for _, w in terms)
    if not terms or total <= 0:
        return None
    return sum(s * w for s, w in terms) / total


def parse_text(rationale: str) -> Breakdown:
    out = Breakdown()
    split = _SECTION_B.search(rationale)
    section_a = rationale[: split.start()] if split else rationale
    section_b = rationale[split.start() :] if split else rationale
    for m in _CRITERION_LINE.finditer(section_a):
        weight = m.group(2) or m.group(3)
        name = _clean(m.group("name"))
        if name and weight is not None:
            out.criteria.append((name, float(weight), m.group("desc").strip()))
    heads = list(_RESPONSE_HEAD.finditer(section_b))
    for i, head in enumerate(heads):
        index = int(head.group(1)) - 1
        block_end = heads[i + 1].start() if i + 1 < len(heads) else len(section_b)
        block = section_b[head.end() : block_end]
        final = _FINAL.search(block)
        if final:
            recomputed = _weighted_terms(final.group("expr"))
            if recomputed is not None:
                out.final_terms[index] = recomputed
            block = block[: final.start()]
        for s in _SCORE_LINE.finditer(block):
            name = _clean(s.group("name"))
            justification = s.group("rest").strip().lstrip(".:,;-\u2013 ").strip()
            out.scores.setdefault(index, {})[name] = (float(s.group(2)), justification)
    return out


def parse_object(rationale: dict[str, Any]) -> Breakdown:
    """The structured-output shape: {"criteria": [...], "evaluations": {"response_1": ...}}."""
    out = Breakdown()
    for item in rationale.get("criteria") or []:
        if not isinstance(item, dict):
            continue
        weight, as_string = to_number(item.get("weight"))
        name = item.get("name")
        if isinstance(name, str) and name.strip() and weight is not None:
            out.string_numbers |= as_string
            out.criteria.append((name.strip(), weight, str(item.get("description", "")).strip()))
    evaluations = rationale.get("evaluations") or {}
    if not isinstance(evaluations, dict):
        return out
    for key, evaluation in evaluations.items():
        index = response_index(key)
        if index is None or not isinstance(evaluation, dict):
            continue
        for item in evaluation.get("scores") or []:
            if not isinstance(item, dict):
                continue
            score, as_string = to_number(item.get("score"))
            name = item.get("criterion")
            if isinstance(name, str) and score is not None:
                out.string_numbers |= as_string
                justification = str(item.get("justification", "")).strip()
                out.scores.setdefault(index, {})[name.strip()] = (score, justification)
    return out


def response_index(key: object) -> int | None:
    """`response_2`, `Response 2`, `2` -> 1 (zero-based); anything else -> None."""
    match = re.fullmatch(r"\s*(?:response[ _-]?)?(\d{1,3})\s*", str(key), re.IGNORECASE)
    if not match or int(match.group(1)) < 1:
        return None
    return int(match.group(1)) - 1


def match_criterion(name: str, criteria: list[str]) -> str | None:
    """The criterion a breakdown line refers to: exact, case-insensitive, or prefix match."""
    lowered = name.lower()
    for criterion in criteria:
        if criterion.lower() == lowered:
            return criterion
    for criterion in criteria:
        c = criterion.lower()
        if c.startswith(lowered) or lowered.startswith(c):
            return criterion
    return None
