"""Read the criteria and the per-response breakdown out of a chain's `rationale`.

Private to `service.engine.parsing`. The released model writes the rationale as one string
(`A. Evaluation Criteria & Weights` then `B. Scoring Breakdown`); structured-output judges write
it as an object. Both become the same `Breakdown`. Nothing here raises on odd input: whatever
cannot be read is simply absent from the result.

The patterns use horizontal whitespace and possessive quantifiers: a degenerate sample (thousands
of blank lines, spaces or asterisks) must cost linear time, never a catastrophic backtrack.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any


def _num(name: str) -> str:
    return rf"(?P<{name}>\d++(?:\.\d++)?+)"


def _fraction(name: str) -> str:
    """A weight written as a fraction of 1: 0.35, .4, 1.0."""
    return rf"(?P<{name}>[01]?\.\d++)(?![\d.])"


_SEP = r"[:\-\u2013\u2014]"  # ":", "-", en dash, em dash
_WEIGHT_WORD = r"(?:(?i:weight)[ \t]*+[:=]?[ \t]*+)"
_CRITERION_LINE = re.compile(
    r"^[ \t]*+(?:\d+[.)]|[-*\u2022])?[ \t]*+\**+[ \t]*+(?P<name>[A-Za-z][^:\n(]{0,80}?)"
    r"[ \t]*+\**+[ \t]*+(?:"
    rf"\([ \t]*+{_WEIGHT_WORD}?{_num('pct')}[ \t]*+%[ \t]*+\)"
    rf"|{_SEP}[ \t]*+{_WEIGHT_WORD}?{_num('pct2')}[ \t]*+%"
    rf"|\([ \t]*+{_WEIGHT_WORD}?{_fraction('frac')}[ \t]*+\)"
    rf"|{_SEP}[ \t]*+{_WEIGHT_WORD}{_fraction('frac2')}"
    rf")[ \t]*+\**+[ \t]*+(?:[.]|{_SEP})?[ \t]*+(?P<desc>.*)$",
    re.MULTILINE,
)
# A rationale written as one line: "A. ...: Relevance (40%), Humor (35%), Brevity (25%). B. ..."
_INLINE_CRITERION = re.compile(
    r"(?<![A-Za-z])(?P<name>[A-Z][A-Za-z&/' \-]{0,60}?)"
    rf"[ \t]*+\([ \t]*+{_WEIGHT_WORD}?{_num('pct')}[ \t]*+%[ \t]*+\)"
)
_SECTION_B = re.compile(r"(?:^|\n)[ \t]*+\**+[ \t]*+B[.):]|Scoring Breakdown", re.IGNORECASE)
_RESPONSE_HEAD = re.compile(r"(?:^|\n)[ \t#*\-]*+Response[ _]?(\d+)\b", re.IGNORECASE)
_INLINE_HEAD = re.compile(r"\bResponse[ _]?(\d+)[ \t]*+\**+[ \t]*+:", re.IGNORECASE)
_SCORE_LINE = re.compile(
    r"^[ \t]*+(?:\d+[.)]|[-*\u2022])?[ \t]*+\**+[ \t]*+(?P<name>[A-Za-z][^:\n]{0,80}?)"
    rf"[ \t]*+\**+[ \t]*+{_SEP}[ \t]*+\**+[ \t]*+{_num('score')}[ \t]*+"
    r"(?:/[ \t]*+10(?!\d|\.\d))?\**+(?P<rest>.*)$",
    re.MULTILINE,
)
_INLINE_SCORE = re.compile(
    rf"(?<![A-Za-z])(?P<name>[A-Z][A-Za-z&/' \-]{{0,60}}?)[ \t]*+{_SEP}?[ \t]*+{_num('score')}"
    r"[ \t]*+/[ \t]*+10(?!\d|\.\d)(?:[ \t]*+\((?P<rest>[^)\n]{0,300})\))?"
)
_FINAL = re.compile(
    r"(?:Final|Total|Overall|Weighted)(?:[ \t]+Weighted)?[ \t]+Score[ \t]*+[:=][ \t]*+"
    r"(?P<expr>[^\n]*?)"
    rf"(?:=[ \t]*+\**+[ \t]*+{_num('total')}[ \t]*+\**+[ \t.]*+)?(?:\n|$)",
    re.IGNORECASE,
)
# One "(score * weight)" term; the weight may be 0.35 or 35%, the sum is divided by the weights.
_TERM = re.compile(rf"(?<![\d.]){_num('score')}[ \t]*+[x\u00d7*][ \t]*+{_num('weight')}")
_JUSTIFICATION_STRIP = ".:,;-\u2013\u2014 "


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
        match = re.fullmatch(r"\s*+(-?\d++(?:\.\d++)?+)\s*+(%|/\s*+10)?\s*+", value)
        if match:
            number = float(match.group(1))
            return (number if math.isfinite(number) else None), True
    return None, False


def _clean(text: str) -> str:
    return text.strip().strip("*").strip().rstrip(":").strip()


def _weighted_terms(expr: str) -> float | None:
    return weighted_mean([(float(m["score"]), float(m["weight"])) for m in _TERM.finditer(expr)])


def weighted_mean(terms: list[tuple[float, float]]) -> float | None:
    """(score, weight) terms -> the weighted mean; the one formula for a "Final Score" line."""
    total = sum(w for _, w in terms)
    if not terms or not 0 < total < math.inf:
        return None
    value = sum(s * w for s, w in terms) / total
    return value if math.isfinite(value) else None


def _criteria_lines(section_a: str) -> list[tuple[str, float, str]]:
    found: list[tuple[str, float, str]] = []
    for m in _CRITERION_LINE.finditer(section_a):
        weight = m["pct"] or m["pct2"] or m["frac"] or m["frac2"]
        name = _clean(m["name"])
        if name and weight is not None:
            found.append((name, float(weight), m["desc"].strip()))
    if len(found) < 2:  # criteria run together on one line: "Relevance (40%), Humor (35%)"
        inline = [
            (_clean(m["name"]), float(m["pct"]), "") for m in _INLINE_CRITERION.finditer(section_a)
        ]
        if len(inline) > len(found):
            return inline
    return found


def _block_scores(block: str) -> dict[str, tuple[float, str]]:
    scores: dict[str, tuple[float, str]] = {}
    for s in _SCORE_LINE.finditer(block):
        justification = s["rest"].strip().lstrip(_JUSTIFICATION_STRIP).strip()
        scores[_clean(s["name"])] = (float(s["score"]), justification)
    if not scores:  # one-line breakdown: "Relevance 8/10 (why), Humor 6/10 (why)"
        for s in _INLINE_SCORE.finditer(block):
            scores[_clean(s["name"])] = (float(s["score"]), (s["rest"] or "").strip())
    return scores


def _split(rationale: str) -> tuple[str, str]:
    split = _SECTION_B.search(rationale)
    if split is None:
        return rationale, rationale
    return rationale[: split.start()], rationale[split.start() :]


def _blocks(section_b: str) -> list[tuple[int, str]]:
    """(response index, its text) for each response's part of the scoring breakdown."""
    heads = list(_RESPONSE_HEAD.finditer(section_b)) or list(_INLINE_HEAD.finditer(section_b))
    out = []
    for i, head in enumerate(heads):
        block_end = heads[i + 1].start() if i + 1 < len(heads) else len(section_b)
        out.append((int(head.group(1)) - 1, section_b[head.end() : block_end]))
    return out


def _final(block: str) -> float | None:
    # The last "Final Score" with terms is the total; an earlier one may be a justification's
    # words ("hurts the final score: ..."), so the block is not cut there either (a total line
    # never reads as a criterion score).
    lowered = block.lower()
    if "score" not in lowered:  # cheap test first: most blocks are criterion lines
        return None
    finals = reversed(list(_FINAL.finditer(block)))
    return next((t for t in (_weighted_terms(m["expr"]) for m in finals) if t is not None), None)


def final_terms(rationale: str) -> dict[int, float]:
    """Response index -> weighted sum recomputed from its "Final Score = ..." terms. The cheap
    part of `parse_text`: enough to score a sample without reading every criterion line."""
    out: dict[int, float] = {}
    for index, block in _blocks(_split(rationale)[1]):
        total = _final(block)
        if total is not None:
            out[index] = total
    return out


def parse_text(rationale: str) -> Breakdown:
    out = Breakdown()
    section_a, section_b = _split(rationale)
    out.criteria = _criteria_lines(section_a)
    for index, block in _blocks(section_b):
        total = _final(block)
        if total is not None:
            out.final_terms[index] = total
        for name, scored in _block_scores(block).items():
            out.scores.setdefault(index, {})[name] = scored
    return out


def parse_object(rationale: dict[str, Any]) -> Breakdown:
    """The structured-output shape: {"criteria": [...], "evaluations": {"response_1": ...}}."""
    out = Breakdown()
    criteria = rationale.get("criteria")
    for item in criteria if isinstance(criteria, list) else []:
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
        scores = evaluation.get("scores")
        for item in scores if isinstance(scores, list) else []:
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
    if not lowered:
        return None
    for criterion in criteria:
        if criterion.lower() == lowered:
            return criterion
    for criterion in criteria:
        c = criterion.lower()
        if c.startswith(lowered) or lowered.startswith(c):
            return criterion
    return None
