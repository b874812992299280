"""RM-NLHF's arithmetic as pure functions: stance, one-to-one matching, P/R/F1, the reward."""

from __future__ import annotations

import numpy as np
import pytest

from service.engine.critique import (
    FORMAT_ERROR_REWARD,
    Argument,
    Match,
    agreement,
    match_arguments,
    process_reward,
    reward_value,
    same_stance,
)

PRAISE_1 = Argument("uses examples", "1", "positive")
BLAME_2 = Argument("has no examples", "2", "negative")
PRAISE_2 = Argument("uses examples", "2", "positive")
BLAME_1 = Argument("uses examples", "1", "negative")


@pytest.mark.parametrize(
    ("outcome", "format_ok", "f1", "reward"),
    [
        (0, True, 1.0, 0.0),  # wrong choice: no process term, however good the reasons
        (1, True, 0.5, 1.5),  # right and F1 reaches 0.5
        (1, True, 0.8, 1.5),
        (1, True, 0.49, 1.0),  # right, reasons disagree
        (1, True, None, 1.0),  # no human critique: the outcome alone
        (0, True, None, 0.0),
        (1, False, 1.0, -1.0),  # format error, whatever else
        (0, False, None, -1.0),
    ],
)
def test_reward_golden(outcome: int, format_ok: bool, f1: float | None, reward: float) -> None:
    assert reward_value(outcome, format_ok, f1) == reward


def test_process_term_only_for_a_right_outcome_with_a_human_critique() -> None:
    assert process_reward(1, 0.5) == 0.5
    assert process_reward(0, 1.0) == 0.0
    assert process_reward(1, None) == 0.0
    assert FORMAT_ERROR_REWARD == -1.0


def test_stance_needs_same_target_and_same_polarity() -> None:
    assert same_stance(PRAISE_1, PRAISE_1)
    assert not same_stance(PRAISE_1, PRAISE_2)  # same words, the other response
    assert not same_stance(PRAISE_1, BLAME_1)  # same response, criticism against praise
    # the mirror (criticism of 2 as praise of 1) is not the same stance: see critique.py
    assert not same_stance(PRAISE_1, BLAME_2)
    unknown = Argument("uses examples", None, "positive")
    assert not same_stance(unknown, unknown)  # an unknown target matches nothing


def test_similar_meaning_with_another_stance_does_not_match() -> None:
    sim = np.ones((1, 1))
    assert match_arguments([PRAISE_1], [PRAISE_2], sim, 0.4) == ()
    assert match_arguments([PRAISE_1], [BLAME_1], sim, 0.4) == ()
    assert match_arguments([PRAISE_1], [PRAISE_1], sim, 0.4) == (Match(0, 0, 1.0),)
    assert match_arguments([PRAISE_1], [PRAISE_1], np.full((1, 1), 0.3), 0.4) == ()


def test_matching_is_one_to_one_and_prefers_more_matches() -> None:
    model = [PRAISE_1, PRAISE_1]
    human = [PRAISE_1, PRAISE_1]
    # one very similar pair could crowd out two good ones; the count comes first
    sim = np.array([[0.99, 0.6], [0.6, 0.0]])
    found = match_arguments(model, human, sim, 0.5)
    assert [(m.model, m.human) for m in found] == [(0, 1), (1, 0)]
    # two model arguments can never both take the one human argument
    found = match_arguments(model, human[:1], np.array([[0.9], [0.8]]), 0.5)
    assert [(m.model, m.human) for m in found] == [(0, 0)]


def test_precision_recall_f1() -> None:
    matches = (Match(0, 0, 0.9),)
    got = agreement(2, 1, matches)
    assert (got.precision, got.recall, got.f1) == (0.5, 1.0, 0.6667)
    assert agreement(3, 2, ()).f1 == 0.0
    nothing = agreement(0, 2, ())  # the model gave no argument against a human's two
    assert (nothing.precision, nothing.recall, nothing.f1) == (0.0, 0.0, 0.0)
    no_reference = agreement(2, 0, ())  # no human argument: nothing to agree with
    assert (no_reference.precision, no_reference.recall, no_reference.f1) == (None, None, None)
