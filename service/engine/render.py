"""Write a chain as P-GenRM text: PART 1 analysis, then `<JSON_START>{...}<JSON_END>`.

Backends that do not run an LLM (the embedded backend, the test simulator) write their chains in
the same format the model was trained on, so a trace always carries real raw text that
`service.engine.parsing` reads like an LLM's. `final_scores` is what that parser reads back from
a written breakdown, for a backend that hands the engine its scores without the text.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from functools import lru_cache

from service.core.chain import CandidateEvaluation, Criterion, Persona
from service.engine._rationale import weighted_mean
from service.engine.prompts import response_key


def fmt(value: float) -> str:
    """Compact decimal: 35.0 -> "35", 7.25 -> "7.2" (one decimal is what models write)."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def rounded_weights(raw: Sequence[float], total: int = 100) -> list[int]:
    """Integer percentages proportional to `raw` that sum exactly to `total` (largest remainder)."""
    mass = sum(raw)
    if mass <= 0:
        base = [total // len(raw)] * len(raw)
        base[0] += total - sum(base)
        return base
    exact = [total * w / mass for w in raw]
    floors = [int(x) for x in exact]
    order = sorted(range(len(raw)), key=lambda i: exact[i] - floors[i], reverse=True)
    for i in order[: total - sum(floors)]:
        floors[i] += 1
    return floors


def render_analysis(persona: Persona, criteria: Sequence[Criterion]) -> str:
    lines = [
        "PART 1: Chain-of-Thought Analysis",
        "",
        "1. User Preference Synthesis",
        f"- Style: {persona.style}",
        f"- Content & Structure: {persona.content_structure}",
        f"- Core Values: {persona.values}",
        "",
        "2. Personalized Scoring Model Derivation",
    ]
    lines += [f"- {c.name}: {c.description}" for c in criteria]
    return "\n".join(lines)


def final_scores(scores: Sequence[Iterable[float]], weights: Sequence[float]) -> tuple[float, ...]:
    """Per candidate, the overall a parser reads back from the "Final Score" line
    `render_rationale` writes for these criterion scores and percent weights (same rounding,
    same arithmetic): `scores[c][i]` is criterion c's score of candidate i. The weights are
    read once for all the candidates, not once per candidate."""
    if not weights:
        raise ValueError("a final score needs at least one positive weight")
    read = [read_weight(w) for w in weights]
    out = []
    for column in zip(*scores, strict=True):
        # round(float(s), 1) is float(fmt(s)): both round the exact binary value half-even
        # (numpy's own round of a numpy float would not).
        terms = [(round(float(s), 1), w) for s, w in zip(column, read, strict=True)]
        value = weighted_mean(terms)
        if value is None:
            raise ValueError("a final score needs at least one positive weight")
        out.append(value)
    return tuple(out)


def _weight_term(percent: float) -> str:
    return f"{percent / 100:.3g}"


@lru_cache(maxsize=1024)
def read_weight(percent: float) -> float:
    """A weight as the parser reads its term back (a rubric's percents are few integers)."""
    return float(_weight_term(percent))


def render_rationale(
    criteria: Sequence[Criterion], candidates: Sequence[CandidateEvaluation]
) -> str:
    lines = ["A. Evaluation Criteria & Weights:"]
    lines += [
        f"{i}. {c.name} ({fmt(c.weight)}%): {c.description}" for i, c in enumerate(criteria, 1)
    ]
    lines += ["", "B. Scoring Breakdown:"]
    for i, candidate in enumerate(candidates, 1):
        lines.append(f"Response {i}:")
        lines += [
            f"- {s.criterion}: {fmt(s.score)}/10. {s.justification}" for s in candidate.scores
        ]
        weights = {c.name: c.weight for c in criteria}
        terms = " + ".join(
            f"({fmt(s.score)} * {_weight_term(weights[s.criterion])})" for s in candidate.scores
        )
        lines.append(f"Response {i} Final Score = {terms} = {candidate.overall:.2f}")
        lines.append("")
    return "\n".join(lines).rstrip()


def render_chain(
    persona: Persona, criteria: Sequence[Criterion], candidates: Sequence[CandidateEvaluation]
) -> str:
    payload = {
        "rationale": render_rationale(criteria, candidates),
        "better_response": {response_key(i): round(c.overall, 2) for i, c in enumerate(candidates)},
    }
    return (
        render_analysis(persona, criteria)
        + "\n\nPART 2: Final Scoring and JSON Output\n<JSON_START>\n"
        + json.dumps(payload, ensure_ascii=False)
        + "\n<JSON_END>"
    )
