"""Raw sample text -> `EvaluationChain` or a typed `ParseFailure`; never raises.

A chain cut by the token limit (`finish_reason` "length") is always `truncated`, and a score
outside 1-10 is `score_out_of_range`: a failure with its reason, never a clamped number.
Recovers what the released parser dropped: string scores and `"35%"` weights, weights that do
not sum to 100 (renormalised, flagged), code fences, doubled or missing markers around a complete
JSON object, trailing text. The overall per candidate is recomputed from the breakdown when the
breakdown is complete (a model's arithmetic is often wrong); disagreement with the stated score
is flagged, not hidden.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any, TypeVar

from service.core.chain import (
    CandidateEvaluation,
    Criterion,
    CriterionScore,
    EvaluationChain,
    FailureReason,
    ParseFailure,
    Persona,
    RecoveryFlag,
    SampleOutcome,
)
from service.engine import _rationale
from service.engine._json_extract import Extracted, extract

_T = TypeVar("_T")

# A stated overall may be rounded to one decimal; beyond this it disagrees with the breakdown.
SCORE_TOLERANCE = 0.15
_WEIGHT_TOLERANCE = 0.5
_PERSONA_LINE = re.compile(  # possessive, horizontal-only whitespace: linear on any input
    r"^[ \t]*+(?:[*\-\u2022#>]++[ \t]*+)?(?:\d+[.)][ \t]*+)?\**+[ \t]*+"
    r"(?P<label>Style|Content[ \t]*+(?:&|and)[ \t]*+Structure|(?:Core[ \t]+)?Values)"
    r"(?:[ \t]+Preferences?)?[ \t]*+\**+[ \t]*+[:\-\u2013\u2014][ \t]*+\**+[ \t]*+"
    r"(?:\n[ \t]*+)?(?P<text>\S.*)$",
    re.IGNORECASE | re.MULTILINE,
)


_NO_PERSONA = Persona()


class _Failed(Exception):
    def __init__(self, reason: FailureReason, detail: str) -> None:
        super().__init__(detail)
        self.reason: FailureReason = reason
        self.detail = detail


class ScoredSample:
    """A valid sample: its overall score per candidate, and the full chain on demand.

    Aggregation needs only the overall scores; reading every criterion line of every sample
    was most of the gateway's CPU per score, so the whole chain is parsed only when a trace
    asks for it. Both come from the same rules, so they always agree.
    """

    __slots__ = ("_chain", "_raw", "finish_reason", "overall")

    def __init__(
        self,
        overall: tuple[float, ...],
        raw: str | Callable[[], str],
        finish_reason: str | None = None,
        chain: EvaluationChain | None = None,
    ) -> None:
        self.overall = overall
        self._raw = raw  # or the function that writes it (a backend that scored natively)
        self.finish_reason = finish_reason
        self._chain = chain

    @property
    def raw(self) -> str:
        if not isinstance(self._raw, str):
            self._raw = self._raw()
        return self._raw

    def chain(self) -> EvaluationChain:
        if self._chain is None:
            parsed = parse_chain(self.raw, len(self.overall), self.finish_reason)
            if isinstance(parsed, EvaluationChain):
                self._chain = parsed
            else:  # unreachable by construction; never lose the scores over it
                candidates = tuple(CandidateEvaluation(overall=o) for o in self.overall)
                self._chain = EvaluationChain(candidates=candidates, raw=self.raw)
        return self._chain


def parse_scores(
    text: str, n_candidates: int, finish_reason: str | None = None
) -> ScoredSample | ParseFailure:
    """The overall scores of one sample (the fast path the engine aggregates with)."""
    return _guarded(_scores, text, n_candidates, finish_reason)


def _scores(text: str, k: int, finish_reason: str | None) -> ScoredSample:
    found = extract(text)
    obj = _chain_object(found, finish_reason)
    stated = _stated_scores(obj.get("better_response", obj.get("scores")), k, [])
    rationale = obj.get("rationale")
    finals = _rationale.final_terms(rationale) if isinstance(rationale, str) else {}
    overall = []
    for i in range(k):
        recomputed = _in_range(finals.get(i))
        if recomputed is None and rationale:  # maybe recoverable from the criterion lines
            chain = _parse(text, k, finish_reason)
            return ScoredSample(chain.overall, text, finish_reason, chain)
        value = recomputed if recomputed is not None else stated.get(i)
        if value is None:
            raise _Failed("missing_scores", f"no usable score for response_{i + 1}")
        overall.append(value)
    return ScoredSample(tuple(overall), text, finish_reason)


def _chain_object(found: Extracted, finish_reason: str | None) -> dict[str, Any]:
    if finish_reason == "length":
        # Cut by the token limit: whatever was read from it (a repaired object, scores before
        # the cut) is not the chain the model meant, so it is never used.
        raise _Failed("truncated", "the output stopped at max_tokens (finish_reason=length)")
    if found.obj is None:
        reason: FailureReason = found.failure or "no_json"  # type: ignore[assignment]
        raise _Failed(reason, found.detail)
    return found.obj


def parse_chain(text: str, n_candidates: int, finish_reason: str | None = None) -> SampleOutcome:
    """Parse one sample written for `n_candidates` responses."""
    return _guarded(_parse, text, n_candidates, finish_reason)


def _guarded(
    parse: Callable[[str, int, str | None], _T], text: str, k: int, finish_reason: str | None
) -> _T | ParseFailure:
    """Run a parse; any failure, a parser bug included, is a typed ParseFailure, never raised."""
    try:
        return parse(text, k, finish_reason)
    except _Failed as failure:
        return ParseFailure(reason=failure.reason, detail=failure.detail, raw=text)
    except Exception as error:  # a parser bug must cost one sample, never the request
        return ParseFailure(reason="internal_error", detail=repr(error)[:200], raw=text)


def _parse(text: str, k: int, finish_reason: str | None) -> EvaluationChain:
    found = extract(text)
    obj = _chain_object(found, finish_reason)
    flags: list[RecoveryFlag] = list(found.flags)  # type: ignore[arg-type]
    rationale = obj.get("rationale")
    if isinstance(rationale, str):
        breakdown = _rationale.parse_text(rationale)
    elif isinstance(rationale, dict):
        breakdown = _rationale.parse_object(rationale)
    else:
        breakdown = _rationale.Breakdown()

    criteria = _criteria(breakdown, flags)
    stated = _stated_scores(obj.get("better_response", obj.get("scores")), k, flags)
    names = [c.name for c in criteria]
    candidates: list[CandidateEvaluation] = []
    for i in range(k):
        scores = _criterion_scores(breakdown, i, names)
        recomputed = _in_range(breakdown.final_terms.get(i))
        if recomputed is None:
            recomputed = _weighted(scores, criteria)
        candidates.append(_candidate(i, stated.get(i), recomputed, scores, flags))
    if rationale and not criteria:
        flags.append("breakdown_unparsed")
    if breakdown.string_numbers:
        flags.append("string_scores")
    persona = _persona(found.analysis)
    structured = obj.get("analysis")
    if persona == _NO_PERSONA and isinstance(structured, dict):  # structured-output shape
        persona = Persona(
            style=str(structured.get("style", "")),
            content_structure=str(structured.get("content_structure", "")),
            values=str(structured.get("values", "")),
        )
    if found.analysis and persona == _NO_PERSONA:
        flags.append("persona_missing")
    return EvaluationChain(
        persona=persona,
        criteria=tuple(criteria),
        candidates=tuple(candidates),
        analysis=found.analysis,
        raw=text,
        flags=tuple(dict.fromkeys(flags)),
    )


def _criteria(breakdown: _rationale.Breakdown, flags: list[RecoveryFlag]) -> list[Criterion]:
    seen: dict[str, tuple[float, str]] = {}
    for name, weight, description in breakdown.criteria:
        if 0 <= weight < math.inf and name.lower() not in {n.lower() for n in seen}:
            seen[name] = (weight, description)
    total = sum(w for w, _ in seen.values())
    if not 0 < total < math.inf:
        return []
    # Always exactly 100 (33/33/33 is rounding); only a real deviation is worth a flag.
    if abs(total - 100.0) > _WEIGHT_TOLERANCE:
        flags.append("weights_renormalised")
    scale = 100.0 / total
    return [Criterion(name=n, weight=w * scale, description=d) for n, (w, d) in seen.items()]


def _stated_scores(value: Any, k: int, flags: list[RecoveryFlag]) -> dict[int, float]:
    """The overall the model wrote per response; what is not a number is left to the breakdown.

    `better_response` is sometimes the winner's name ("response_2") or words ("Better"): those
    carry no score, so the breakdown decides, and without one the sample has `missing_scores`.
    """
    if not isinstance(value, dict):
        return {}
    stated: dict[int, float] = {}
    for key, raw in value.items():
        index = _rationale.response_index(key)
        if index is None:
            continue
        if index >= k:
            raise _Failed(
                "candidate_count_mismatch", f"score for `{key}` but only {k} responses were given"
            )
        number, as_string = _rationale.to_number(raw)
        if number is None:
            continue
        if not 1.0 <= number <= 10.0:
            raise _Failed("score_out_of_range", f"score for `{key}` is {number}, outside 1-10")
        if as_string:
            flags.append("string_scores")
        stated[index] = number
    return stated


def _criterion_scores(
    breakdown: _rationale.Breakdown, index: int, names: list[str]
) -> list[CriterionScore]:
    scores: dict[str, CriterionScore] = {}
    for name, (score, justification) in breakdown.scores.get(index, {}).items():
        criterion = _rationale.match_criterion(name, names)
        if criterion and criterion not in scores and 1.0 <= score <= 10.0:
            scores[criterion] = CriterionScore(
                criterion=criterion, score=score, justification=justification
            )
    return [scores[n] for n in names if n in scores]


def _weighted(scores: list[CriterionScore], criteria: list[Criterion]) -> float | None:
    """The weighted overall, only when every criterion was scored."""
    if not criteria or len(scores) != len(criteria):
        return None
    weights = {c.name: c.weight for c in criteria}
    mean = sum(s.score * weights[s.criterion] for s in scores) / sum(weights.values())
    return min(10.0, max(1.0, mean))  # a weighted mean of 1-10 scores, up to float rounding


def _in_range(value: float | None) -> float | None:
    return value if value is not None and 1.0 <= value <= 10.0 else None


def _candidate(
    index: int,
    stated: float | None,
    recomputed: float | None,
    scores: list[CriterionScore],
    flags: list[RecoveryFlag],
) -> CandidateEvaluation:
    if stated is None and recomputed is None:
        raise _Failed("missing_scores", f"no usable score for response_{index + 1}")
    if recomputed is None:
        assert stated is not None
        return CandidateEvaluation(scores=tuple(scores), overall=stated)
    if stated is None:
        flags.append("scores_from_breakdown")
        return CandidateEvaluation(scores=tuple(scores), overall=recomputed)
    if abs(stated - recomputed) > SCORE_TOLERANCE:
        flags.append("stated_score_mismatch")
        return CandidateEvaluation(scores=tuple(scores), overall=recomputed, stated_overall=stated)
    return CandidateEvaluation(scores=tuple(scores), overall=recomputed)


def _persona(analysis: str) -> Persona:
    fields: dict[str, str] = {}
    for match in _PERSONA_LINE.finditer(analysis):
        label = match.group("label").lower()
        key = "style" if label == "style" else "values" if "values" in label else "content"
        fields.setdefault(key, match.group("text").strip().strip("*").strip())
    if not fields:
        return _NO_PERSONA
    return Persona(
        style=fields.get("style", ""),
        content_structure=fields.get("content", ""),
        values=fields.get("values", ""),
    )
