"""Read a model's critique: its A/B verdict, and for an evaluation chain its arguments.

A critique arrives as free text ("Response 1 gives examples... Overall Response 1 is better"),
as P-GenRM output (analysis, then `<JSON_START>{"rationale", "better_response"}<JSON_END>`), or
as a chain object (the service's `EvaluationChain`, or the P-GenRM JSON). What cannot be read
is RM-NLHF's format error (reward -1): an empty critique, an object that is no chain, a chain
that scores both responses the same, or text whose verdict is not stated.

A chain's arguments are read from its breakdown, not from its prose: each criterion on which
the two responses differ by half a point or more (`explain.SEPARATION`) gives one argument per
response, praise for the higher-scored and criticism for the lower, in the words of its
justification. A criterion both score alike explains nothing about the verdict.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ValidationError

from service.core.chain import EvaluationChain
from service.engine._json_extract import extract
from service.engine.critique import Argument, Polarity, Target
from service.engine.explain import SEPARATION
from service.engine.parsing import parse_chain

FormatError = Literal["empty_critique", "invalid_chain", "no_choice", "tie"]
Critique = str | EvaluationChain | Mapping[str, Any]

# "Response 2", "response_2", "Answer B", "Argument #1", "A1", "[[B]]": a response named.
_REF = (
    r"(?:(?:response|answer|argument|assistant|candidate|option|output)[ \t_#-]{0,2}"
    r"(?P<n>[12]|[ab]|one|two)|a(?P<a>[12])|r(?P<r>[12]))\b"
)
_BETTER = (
    r"(?:better|best|stronger|superior|preferred|preferable|the winner|winner|more convincing|"
    r"more persuasive|more compelling|more helpful|more effective)"
)
_WORSE = r"(?:worse|worst|weaker|inferior|less convincing|less persuasive|less helpful)"
_VERDICTS: tuple[tuple[re.Pattern[str], bool], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), same)
    for pattern, same in (
        (r"\[\[\s*(?P<n>[12ab])\s*\]\]", True),
        (
            r"(?:final[ \t]+(?:answer|verdict|choice|decision|judge?ment)|verdict|winner|"
            r"better[_ ]response|preferred[ \t]+response|my[ \t]+choice)[\"'*]*[ \t]*"
            rf"(?:is)?[ \t]*[:=\-]?[ \t]*[\"'*]*[ \t]*(?:{_REF}|(?P<bare>[12ab])\b)",
            True,
        ),
        (
            rf"\b{_REF}[ \t]+(?:is|was|seems|appears|looks|comes across as)?[ \t]*"
            rf"(?:clearly|much|far|slightly|definitely|overall|somewhat)?[ \t]*(?:the[ \t]+)?"
            rf"{_BETTER}",
            True,
        ),
        (
            rf"\b{_REF}[ \t]+(?:is|was|seems|appears)?[ \t]*(?:clearly|much|far|slightly)?"
            rf"[ \t]*(?:the[ \t]+)?{_WORSE}",
            False,
        ),
        (
            r"\bI(?:[ \t]+would|'d)?[ \t]+(?:prefer|choose|pick|select|favou?r|go[ \t]+with|"
            rf"side[ \t]+with)[ \t]+{_REF}",
            True,
        ),
        (rf"\b{_REF}[ \t]+wins\b", True),
    )
)
_LETTER = {"1": 1, "2": 2, "a": 1, "b": 2, "one": 1, "two": 2}
_CHOICE_VALUE = re.compile(
    r"\s*(?:(?:response|answer|argument|candidate|option)[ _#-]{0,2}|a|r)?([12ab]|one|two)\s*",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class ReadCritique:
    """What could be read: the verdict (1 or 2), the chain's arguments when it was a chain
    with a breakdown (else the text the critic must read), and the format error if any."""

    kind: Literal["text", "chain"]
    text: str
    choice: int | None
    arguments: tuple[Argument, ...] | None = None
    error: FormatError | None = None
    detail: str = ""


def parse_choice(value: object) -> int | None:
    """A choice as people and models write it: 1, "2", "A", "B", "A1", "response_2" -> 1 or 2."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value in (1, 2) else None
    if isinstance(value, str):
        match = _CHOICE_VALUE.fullmatch(value)
        if match:
            return _LETTER[match.group(1).lower()]
    return None


def read_verdict(text: str) -> int | None:
    """The last verdict stated in free text (a final answer follows the discussion)."""
    found: list[tuple[int, int]] = []
    for pattern, same in _VERDICTS:
        for match in pattern.finditer(text):
            choice = _LETTER[_named(match).lower()]
            found.append((match.start(), choice if same else 3 - choice))
    return max(found)[1] if found else None


def _named(match: re.Match[str]) -> str:
    """The response a verdict names: whichever of the reference's groups matched."""
    return next(
        match.group(g)
        for g in ("n", "a", "r", "bare")
        if g in match.re.groupindex and match.group(g)
    )


def read_critique(critique: Critique) -> ReadCritique:
    """The verdict and arguments of a critique in any of its accepted forms; never raises."""
    if isinstance(critique, EvaluationChain):
        return _from_chain(critique, critique.raw)
    if isinstance(critique, Mapping):
        return _from_object(critique)
    text = critique.strip()
    if not text:
        return ReadCritique(
            "text", "", None, error="empty_critique", detail="the critique is empty"
        )
    parsed = parse_chain(text, 2)
    if isinstance(parsed, EvaluationChain):
        return _from_chain(parsed, text)
    choice = read_verdict(text)
    if choice is None:
        return ReadCritique(
            "text", text, None, error="no_choice", detail="the critique states no verdict"
        )
    return ReadCritique("text", text, choice)


def _from_object(obj: Mapping[str, Any]) -> ReadCritique:
    raw = json.dumps(obj, ensure_ascii=False, default=str)
    if "candidates" in obj:
        try:
            return _from_chain(EvaluationChain.model_validate(dict(obj)), raw)
        except ValidationError as error:
            detail = f"not an evaluation chain: {error.errors()[0]['msg']}"
            return ReadCritique("chain", raw, None, error="invalid_chain", detail=detail)
    parsed = parse_chain(f"<JSON_START>{raw}<JSON_END>", 2)
    if isinstance(parsed, EvaluationChain):
        return _from_chain(parsed, raw)
    detail = f"not an evaluation chain ({parsed.reason}: {parsed.detail})"[:300]
    return ReadCritique("chain", raw, None, error="invalid_chain", detail=detail)


def _from_chain(chain: EvaluationChain, raw: str) -> ReadCritique:
    if len(chain.candidates) != 2:
        detail = f"the chain scores {len(chain.candidates)} responses, not 2"
        return ReadCritique("chain", raw, None, error="invalid_chain", detail=detail)
    first, second = chain.overall
    choice = None if abs(first - second) < 1e-9 else (1 if first > second else 2)
    error: FormatError | None = "tie" if choice is None else None
    detail = "the chain gives both responses the same overall score" if error else ""
    arguments = chain_arguments(chain)
    if arguments:
        return ReadCritique("chain", raw, choice, arguments, error, detail)
    # No breakdown to read: its prose goes to the critic like any free-text critique.
    prose = "\n".join(p for p in (chain.analysis, _rationale_text(raw)) if p)
    return ReadCritique("chain", prose, choice, None, error, detail)


def chain_arguments(chain: EvaluationChain) -> tuple[Argument, ...]:
    """One argument per response on each criterion that separates the two (see the module)."""
    scores = [{s.criterion: s for s in c.scores} for c in chain.candidates]
    out: list[Argument] = []
    for criterion in chain.criteria:
        pair = [row.get(criterion.name) for row in scores]
        if pair[0] is None or pair[1] is None or abs(pair[0].score - pair[1].score) < SEPARATION:
            continue
        higher = 0 if pair[0].score > pair[1].score else 1
        for i, score in enumerate(pair):
            assert score is not None
            target: Target = "1" if i == 0 else "2"
            polarity: Polarity = "positive" if i == higher else "negative"
            said = score.justification.strip().rstrip(".")
            text = f"{criterion.name}: {said}" if said else criterion.name
            out.append(Argument(text, target, polarity, "chain"))
    return tuple(out)


def _rationale_text(raw: str) -> str:
    found = extract(raw)
    rationale = found.obj.get("rationale") if found.obj else None
    return rationale if isinstance(rationale, str) else ""
