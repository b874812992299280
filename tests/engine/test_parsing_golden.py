"""Golden samples: realistic raw P-GenRM outputs, clean and broken, with their exact outcome.

Each `golden/NN_name.txt` is one sample as an 8B judge writes it; `golden/expected.json` says
what parsing it must give: a typed `ParseFailure` reason, or a chain with these overall scores,
criteria, weights and recovery flags (exactly these flags: a missing flag hides a recovery, an
extra one is a false alarm).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from service.core.chain import (
    CandidateEvaluation,
    Criterion,
    CriterionScore,
    EvaluationChain,
    ParseFailure,
    Persona,
)
from service.engine.parsing import ScoredSample, parse_chain, parse_scores
from service.engine.render import render_chain, rounded_weights

GOLDEN = Path(__file__).parent / "golden"
EXPECTED: dict[str, dict[str, Any]] = json.loads((GOLDEN / "expected.json").read_text())
TOLERANCE = 0.01


def _sample(name: str) -> str:
    return (GOLDEN / name).read_text(encoding="utf-8")


def _parse(name: str) -> EvaluationChain | ParseFailure:
    spec = EXPECTED[name]
    return parse_chain(_sample(name), spec["n_candidates"], spec.get("finish_reason"))


def test_every_fixture_has_an_expectation() -> None:
    files = {p.name for p in GOLDEN.glob("*.txt")}
    assert files == set(EXPECTED)
    assert len(files) >= 20
    failures = {spec["failure"] for spec in EXPECTED.values() if "failure" in spec}
    flags = {flag for spec in EXPECTED.values() for flag in spec.get("flags", [])}
    assert len(failures) + len(flags) >= 8  # broken in many different ways, not one way 8 times


@pytest.mark.parametrize("name", sorted(n for n, s in EXPECTED.items() if "failure" in s))
def test_golden_failure(name: str) -> None:
    outcome = _parse(name)
    assert isinstance(outcome, ParseFailure), f"{name}: expected a failure, got {outcome!r:.300}"
    assert outcome.reason == EXPECTED[name]["failure"], outcome.detail
    assert outcome.raw == _sample(name)


@pytest.mark.parametrize("name", sorted(n for n, s in EXPECTED.items() if "failure" not in s))
def test_golden_chain(name: str) -> None:
    spec = EXPECTED[name]
    outcome = _parse(name)
    assert isinstance(outcome, EvaluationChain), f"{name}: {outcome!r:.300}"
    chain = outcome
    assert chain.raw == _sample(name)

    assert len(chain.candidates) == spec["n_candidates"]
    assert chain.overall == pytest.approx(spec["overall"], abs=TOLERANCE)
    if "stated" in spec:
        stated = [c.stated_overall for c in chain.candidates]
        assert stated == [
            None if s is None else pytest.approx(s, abs=TOLERANCE) for s in spec["stated"]
        ]

    assert [c.name for c in chain.criteria] == [name for name, _ in spec["criteria"]]
    assert [c.weight for c in chain.criteria] == pytest.approx(
        [weight for _, weight in spec["criteria"]], abs=TOLERANCE
    )
    if chain.criteria:
        assert sum(c.weight for c in chain.criteria) == pytest.approx(100, abs=TOLERANCE)

    assert len(set(chain.flags)) == len(chain.flags)
    assert set(chain.flags) == set(spec["flags"])

    # Every golden breakdown that is read at all is complete: one justified score per criterion.
    names = [c.name for c in chain.criteria]
    for candidate in chain.candidates:
        assert [s.criterion for s in candidate.scores] == names
        for score in candidate.scores:
            assert 1 <= score.score <= 10
            assert score.justification
            assert not score.justification.startswith(("/", ".", ":", "-"))

    assert chain.analysis
    if spec["persona"]:
        assert chain.persona.style
        assert chain.persona.content_structure
        assert chain.persona.values
    else:
        assert chain.persona == Persona()


def test_finish_reason_decides_between_truncated_and_no_json() -> None:
    """A sample cut in PART 1 is `truncated` only when the backend says it hit the length cap."""
    text = _sample("26_cut_in_analysis_length.txt")
    outcome = parse_chain(text, 2)
    assert isinstance(outcome, ParseFailure)
    assert outcome.reason == "no_json"
    cut_json = parse_chain(_sample("16_truncated_length.txt"), 2)  # an unclosed object is
    assert isinstance(cut_json, ParseFailure)  # truncated whatever the finish reason
    assert cut_json.reason == "truncated"


def test_a_chain_cut_at_the_token_limit_is_never_used() -> None:
    """Even when what came before the cut reads as a whole chain (a repaired object, scores
    already written), `finish_reason` "length" makes it a `truncated` failure."""
    whole = _sample("24_structured_clean.txt")
    assert isinstance(parse_chain(whole, 2, "stop"), EvaluationChain)
    for outcome in (parse_chain(whole, 2, "length"), parse_scores(whole, 2, "length")):
        assert isinstance(outcome, ParseFailure) and outcome.reason == "truncated"


def test_out_of_range_scores_from_a_real_model_are_typed_failures() -> None:
    """Gemma 3 270M under llama.cpp's json_object schema wrote 0 and 11: valid JSON, no score."""
    text = '<JSON_START>\n{"better_response": {"response_1": 0, "response_2": 11}}\n<JSON_END>'
    for outcome in (parse_chain(text, 2, "stop"), parse_scores(text, 2, "stop")):
        assert isinstance(outcome, ParseFailure) and outcome.reason == "score_out_of_range"


def test_persona_text_is_the_text_after_the_label() -> None:
    chain = _parse("02_clean_three_numbered_persona.txt")
    assert isinstance(chain, EvaluationChain)
    assert chain.persona.style.startswith("Patient, simple, and encouraging")
    assert chain.persona.content_structure.startswith("An intuitive analogy first")
    assert chain.persona.values.startswith("Understanding over completeness")


def test_structured_rationale_keeps_descriptions_and_justifications() -> None:
    chain = _parse("24_structured_clean.txt")
    assert isinstance(chain, EvaluationChain)
    assert chain.criteria[0].description == "Words an 8-year-old knows."
    first = chain.candidates[0].scores[0]
    assert (first.criterion, first.score) == ("Age-Appropriate Language", 9)
    assert first.justification == "Simple words, compares light to a bouncing ball."


# --- round trip through the canonical writer ---------------------------------------------------

_PERSONA = Persona(
    style="Warm and encouraging, second person.",
    content_structure="Numbered steps, short paragraphs.",
    values="Practical usefulness and correctness.",
)
_NAMES = ["Clarity", "Factual Accuracy", "Friendly Tone", "Conciseness", "Use of Examples"]


def _chain_parts(
    raw_weights: list[float], table: list[list[float]]
) -> tuple[list[Criterion], list[CandidateEvaluation]]:
    weights = rounded_weights(raw_weights)
    criteria = [
        Criterion(name=n, weight=w, description=f"What makes {n.lower()} good.")
        for n, w in zip(_NAMES, weights, strict=False)
    ]
    candidates = []
    for row in table:
        scores = tuple(
            CriterionScore(criterion=c.name, score=s, justification=f"Reason for {s}.")
            for c, s in zip(criteria, row, strict=True)
        )
        overall = sum(s.score * c.weight for s, c in zip(scores, criteria, strict=True)) / 100
        candidates.append(CandidateEvaluation(scores=scores, overall=overall))
    return criteria, candidates


@pytest.mark.parametrize(
    ("raw_weights", "table"),
    [
        ([40, 35, 25], [[7, 8, 5], [4, 6, 9]]),
        ([1, 1, 1], [[10, 10, 10], [1, 1, 1], [5.5, 6.5, 7.5]]),
        (
            [0.3, 0.2, 0.2, 0.2, 0.1],
            [[8, 7, 9, 6, 5], [6, 9, 4, 7, 8], [3, 3, 3, 3, 3], [9, 9, 8, 10, 7]],
        ),
        ([1], [[6.5], [7.5]]),
    ],
)
def test_render_round_trip(raw_weights: list[float], table: list[list[float]]) -> None:
    criteria, candidates = _chain_parts(raw_weights, table)
    text = render_chain(_PERSONA, criteria, candidates)
    chain = parse_chain(text, len(candidates))
    assert isinstance(chain, EvaluationChain), chain
    assert chain.flags == ()
    assert chain.persona == _PERSONA
    assert [(c.name, c.description) for c in chain.criteria] == [
        (c.name, c.description) for c in criteria
    ]
    assert [c.weight for c in chain.criteria] == pytest.approx([c.weight for c in criteria])
    for parsed, original in zip(chain.candidates, candidates, strict=True):
        assert [(s.criterion, s.justification) for s in parsed.scores] == [
            (s.criterion, s.justification) for s in original.scores
        ]
        assert [s.score for s in parsed.scores] == pytest.approx([s.score for s in original.scores])
        assert parsed.overall == pytest.approx(original.overall, abs=TOLERANCE)
        assert parsed.stated_overall is None


@pytest.mark.parametrize(
    "name", ["01_clean_two.txt", "03_clean_four.txt", "24_structured_clean.txt"]
)
def test_golden_chain_rerendered_parses_back_the_same(name: str) -> None:
    first = _parse(name)
    assert isinstance(first, EvaluationChain)
    text = render_chain(first.persona, first.criteria, first.candidates)
    second = parse_chain(text, len(first.candidates))
    assert isinstance(second, EvaluationChain)
    assert second.flags == ()
    assert second.persona == first.persona
    assert second.criteria == first.criteria
    assert second.overall == pytest.approx(first.overall, abs=TOLERANCE)
    assert [c.scores for c in second.candidates] == [c.scores for c in first.candidates]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fast_scores_agree_with_the_golden_parse(name: str) -> None:
    k = EXPECTED[name].get("n_candidates", 2)
    finish = EXPECTED[name].get("finish_reason")
    full = parse_chain(_sample(name), k, finish)
    fast = parse_scores(_sample(name), k, finish)
    if isinstance(full, ParseFailure):
        assert isinstance(fast, ParseFailure) and fast.reason == full.reason
    else:
        assert isinstance(fast, ScoredSample) and fast.overall == full.overall
