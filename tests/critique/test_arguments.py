"""The embedded critic's rule-based reading: claims, targets and polarity, on real-style text."""

from __future__ import annotations

import pytest

from service.backends.embedded.arguments import core, extract, is_verdict_only, segment
from service.backends.embedded.stance import polarity_score, references, tokens


def stances(text: str, choice: int | None = None) -> list[tuple[str | None, str]]:
    return [(a.target, a.polarity) for a in extract(text, choice=choice)]


@pytest.mark.parametrize(
    ("feedback", "choice", "expected"),
    [  # ukp_convarg workers' own words
        (
            "A1 uses examples to explain the argument. A2 has no examples at all, just opinions",
            1,
            [("1", "positive"), ("2", "negative")],
        ),
        (
            "A2 draws a powerful analogy while A1 is accusatory",
            2,
            [("2", "positive"), ("1", "negative")],
        ),
        (
            "A1 states opinion, but does not support its' stance. A2 provides a support "
            "statement for their standpoint.",
            2,
            [("1", "negative"), ("1", "negative"), ("2", "positive")],
        ),
        (
            "While poorly written, A2 makes the good point that no one else is harmed.",
            2,
            [("2", "negative"), ("2", "positive")],
        ),
        (
            "A2 gives more examples of why they picked internet explorer, while A1 only states one.",
            2,
            [("2", "positive"), ("1", "negative")],
        ),
        ("it's sounds more educated and thought out", 1, [("1", "positive")]),
        ("A1 is more convincing", 1, []),  # a bare verdict is no argument
    ],
)
def test_ukp_feedback(feedback: str, choice: int, expected: list[tuple[str, str]]) -> None:
    assert stances(feedback, choice) == expected


def test_assistant_critique_with_pronouns_and_a_verdict() -> None:
    text = (
        "Response 1 is concise and Response 2 is long-winded. It also repeats itself.\n"
        "- The first answer cites a source.\nOverall, Response 1 is better."
    )
    found = extract(text, choice=1)
    assert [(a.target, a.polarity, a.target_from) for a in found] == [
        ("1", "positive", "explicit"),
        ("2", "negative", "explicit"),
        ("2", "negative", "inherited"),  # "It" is the response named before
        ("1", "positive", "explicit"),
    ]
    assert found[2].text == "It also repeats itself"


def test_unnamed_claims_go_by_shared_words_then_by_the_choice() -> None:
    responses = ("Fruit flies breed fast, so we can watch them evolve.", "God made everything.")
    [by_words] = extract("Mentions fruit flies breeding.", responses, choice=2)
    assert (by_words.target, by_words.target_from) == ("1", "overlap")
    [praise, blame] = extract("Well argued. Full of errors.", responses, choice=2)
    assert (praise.target, praise.polarity, praise.target_from) == ("2", "positive", "choice")
    assert (blame.target, blame.polarity, blame.target_from) == ("1", "negative", "choice")
    assert extract("Well argued.", choice=None) == ()  # no name, no choice: no stance


def test_references_and_their_roles() -> None:
    found = references("A1 gives more reasons than A2, unlike response_2 or the latter")
    assert [(r.target, r.subject) for r in found] == [
        ("1", True),
        ("2", False),
        ("2", False),
        ("2", True),
    ]
    assert [r.target for r in references("Both answers; neither response; Answer B; R1")] == [
        "both",
        "both",
        "2",
        "1",
    ]
    assert references("the first step is hard") == []  # "the first" of something else


@pytest.mark.parametrize(
    ("text", "sign"),
    [
        ("not convincing", -1),
        ("lacks a clear structure", -1),
        ("no errors at all", 1),
        ("too short to be useful", -1),
        ("overly verbose", -1),
        ("gives no evidence", -1),
        ("does not state it", -1),
        ("clear and to the point", 1),
        ("off topic", -1),
        ("nothing but opinion", -1),
    ],
)
def test_polarity_with_negation(text: str, sign: int) -> None:
    score = polarity_score(tokens(text))
    assert (score > 0) - (score < 0) == sign


def test_segmentation_and_cores() -> None:
    assert segment("A1 is clear; A2, e.g. here, is vague. But A2 is short") == [
        ["A1 is clear"],
        ["A2, eg here, is vague"],
        ["A2 is short"],
    ]
    assert core("Response 2 is clearer than A1") == "it is clearer than it"
    assert is_verdict_only("I think Response 2 is much better") and not is_verdict_only(
        "Response 2 is better because it cites sources"
    )
