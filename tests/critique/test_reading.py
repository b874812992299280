"""Reading a model's critique: the verdict in free text, P-GenRM text and chain objects."""

from __future__ import annotations

import json

import pytest

from service.core.chain import CandidateEvaluation, Criterion, CriterionScore, EvaluationChain
from service.engine.critique_reading import (
    chain_arguments,
    parse_choice,
    read_critique,
    read_verdict,
)

PGENRM_TEXT = (
    "PART 1: Chain-of-Thought Analysis\n1. User Preference Synthesis\n- Style: direct\n\n"
    "PART 2: Final Scoring and JSON Output\n<JSON_START>\n"
    + json.dumps(
        {
            "rationale": "A. Evaluation Criteria & Weights:\n1. Conciseness (60%): short\n"
            "2. Evidence (40%): reasons\n\nB. Scoring Breakdown:\nResponse 1:\n"
            "- Conciseness: 8/10. Short and to the point\n- Evidence: 4/10. Gives no reasons\n"
            "Response 1 Final Score = (8 * 0.6) + (4 * 0.4) = 6.40\n\nResponse 2:\n"
            "- Conciseness: 3/10. Rambles at length\n- Evidence: 4/10. Gives no reasons\n"
            "Response 2 Final Score = (3 * 0.6) + (4 * 0.4) = 3.40",
            "better_response": {"response_1": 6.4, "response_2": 3.4},
        }
    )
    + "\n<JSON_END>"
)


@pytest.mark.parametrize(
    ("value", "choice"),
    [(1, 1), (2, 2), ("1", 1), ("B", 2), ("a", 1), ("A2", 2), ("response_2", 2), ("Response 1", 1)],
)
def test_choices_as_people_write_them(value: object, choice: int) -> None:
    assert parse_choice(value) == choice


@pytest.mark.parametrize("value", [0, 3, True, "C", "", "both", None, 1.5])
def test_what_is_no_choice(value: object) -> None:
    assert parse_choice(value) is None


@pytest.mark.parametrize(
    ("text", "choice"),
    [
        ("Response 2 gives reasons. Overall, Response 2 is better.", 2),
        ("A1 is more convincing than A2.", 1),
        ("Both are fine, but I prefer Response B.", 2),
        ("Final verdict: [[A]]", 1),
        ("Response 1 is weaker overall.", 2),
        ("Response 1 is better written, but Response 2 is more accurate. Final answer: 2", 2),
        ('{"better_response": "response_1"}', 1),
    ],
)
def test_the_last_stated_verdict_counts(text: str, choice: int) -> None:
    assert read_verdict(text) == choice


def test_free_text_without_a_verdict_is_a_format_error() -> None:
    read = read_critique("Response 1 gives examples and Response 2 does not.")
    assert read.error == "no_choice" and read.choice is None and read.kind == "text"
    assert read_critique("   ").error == "empty_critique"


def test_pgenrm_text_is_read_as_a_chain_with_its_breakdown_as_arguments() -> None:
    read = read_critique(PGENRM_TEXT)
    assert read.kind == "chain" and read.choice == 1 and read.error is None
    assert read.arguments is not None
    # Evidence scored alike (4 and 4) separates nothing: only Conciseness gives arguments
    assert [(a.target, a.polarity, a.text) for a in read.arguments] == [
        ("1", "positive", "Conciseness: Short and to the point"),
        ("2", "negative", "Conciseness: Rambles at length"),
    ]


def test_chain_objects_in_both_shapes() -> None:
    chain = EvaluationChain(
        criteria=(Criterion(name="Clarity", weight=100),),
        candidates=(
            CandidateEvaluation(
                scores=(CriterionScore(criterion="Clarity", score=3, justification="muddled"),),
                overall=3,
            ),
            CandidateEvaluation(
                scores=(CriterionScore(criterion="Clarity", score=8, justification="clear"),),
                overall=8,
            ),
        ),
    )
    for given in (chain, chain.model_dump(mode="json")):
        read = read_critique(given)
        assert read.choice == 2 and read.error is None
        assert read.arguments == chain_arguments(chain)
    pgenrm_json = {"better_response": {"response_1": 7, "response_2": 5}, "rationale": "x"}
    assert read_critique(pgenrm_json).choice == 1


def test_unreadable_chains_are_format_errors() -> None:
    assert read_critique({"verdict": "yes"}).error == "invalid_chain"
    assert read_critique({"candidates": "nope"}).error == "invalid_chain"
    tie = read_critique({"better_response": {"response_1": 6, "response_2": 6}})
    assert tie.error == "tie" and tie.choice is None
    three = read_critique({"better_response": {"response_1": 6, "response_2": 5, "response_3": 4}})
    assert three.error == "invalid_chain"
